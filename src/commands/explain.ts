/**
 * `stsgate explain`: which rules match an identity, and for those that do not, which conditions failed
 * and why; then which targets it may get and the exact claims each token would carry.
 */
import { readFile } from 'node:fs/promises';
import { parse } from 'yaml';
import type { Identity } from '../domain/types.js';
import { describeValue } from '../config/problems.js';
import { compileRules, formatExplanation } from '../rules/index.js';
import { explainTargets } from '../rules/target-claims.js';
import { loadConfigOrReport } from './check-config.js';

const IDENTITY_KEYS = ['source', 'subject', 'claims'];

function isMapping(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** Checks an identity document `{ source, subject?, claims }`; returns the identity or its problems. */
export function parseIdentity(value: unknown): { identity: Identity } | { problems: string[] } {
  if (!isMapping(value)) return { problems: [`(top level): found ${describeValue(value)}, expected a mapping { source, subject?, claims }`] };
  const problems: string[] = [];
  for (const key of Object.keys(value)) if (!IDENTITY_KEYS.includes(key)) problems.push(`${key}: unknown key; allowed keys: ${IDENTITY_KEYS.join(', ')}`);
  const { source, subject, claims } = value;
  if (typeof source !== 'string' || source.length === 0) problems.push(`source: found ${describeValue(source)}, expected an issuer or provider id`);
  if (subject !== undefined && typeof subject !== 'string') problems.push(`subject: found ${describeValue(subject)}, expected a string`);
  if (claims !== undefined && !isMapping(claims)) problems.push(`claims: found ${describeValue(claims)}, expected a mapping of claims`);
  if (problems.length > 0) return { problems };
  const claimMap = (claims ?? {}) as Record<string, unknown>;
  const sub = Object.hasOwn(claimMap, 'sub') ? claimMap.sub : undefined;
  return { identity: { source: source as string, subject: (subject as string | undefined) ?? (typeof sub === 'string' ? sub : ''), claims: claimMap } };
}

async function readIdentity(identityFile: string): Promise<{ identity: Identity } | { problems: string[] }> {
  let text: string;
  try {
    text = await readFile(identityFile, 'utf8');
  } catch (err) {
    return { problems: [`cannot read the identity file (${(err as NodeJS.ErrnoException).code ?? String(err)})`] };
  }
  let value: unknown;
  try {
    // YAML 1.2 is a superset of JSON, so one parser reads both forms.
    value = parse(text, { uniqueKeys: true, maxAliasCount: 100 });
  } catch (err) {
    return { problems: [`${err instanceof Error ? err.message.split('\n')[0] : String(err)}, expected JSON or YAML`] };
  }
  return parseIdentity(value);
}

/** Explains, rule by rule, how the identity in `identityFile` fares against `configFile`; returns the exit code (0 explained, 1 on problems). */
export async function explainCommand(configFile: string, identityFile: string, write: (line: string) => void): Promise<number> {
  const config = await loadConfigOrReport(configFile, write);
  if (!config) return 1;
  const read = await readIdentity(identityFile);
  if ('problems' in read) {
    write(`${identityFile}: ${read.problems.length} problem${read.problems.length === 1 ? '' : 's'}`);
    for (const problem of read.problems) write(`  ${problem}`);
    return 1;
  }
  const { identity } = read;
  const sources = [...config.issuers.map((i) => i.id), ...config.providers.map((p) => String(p.id))];
  if (!sources.includes(identity.source)) write(`note: source ${JSON.stringify(identity.source)} is not a configured issuer or provider (${sources.join(', ') || 'none'})`);
  const explanation = compileRules(config).explain(identity);
  for (const line of formatExplanation(explanation).split('\n')) write(line);
  const roles = explanation.roles.flatMap((name) => config.roles.filter((role) => role.name === name)).map((role) => ({ name: role.name, targets: role.targets ?? [] }));
  for (const line of explainTargets(config.targets ?? [], roles, identity, config.publicUrl)) write(line);
  return 0;
}
