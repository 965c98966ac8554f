/**
 * `stsgate explain`: which rules match an identity, and for those that do not, which conditions failed
 * and why; then which targets it may get and the exact claims each token would carry.
 */
import { readFile } from 'node:fs/promises';
import { parse } from 'yaml';
import type { Identity } from '../domain/types.js';
import { describeValue } from '../config/problems.js';
import { clientClaims } from '../op/claims.js';
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

/** Where `explain` reads the identity: an identity document, or a JWT whose claims stand for one. */
export interface ExplainOptions {
  configFile: string;
  /** `--identity FILE`: an identity document `{ source, subject?, claims }`, JSON or YAML; `-` reads standard input. */
  identity?: string;
  /** `--token FILE`: a compact JWT whose claims are the identity, decoded WITHOUT verifying it; `-` reads standard input. */
  token?: string;
  /** Standard input (default `process.stdin`). */
  stdin?: AsyncIterable<string | Buffer>;
}

type Read<T> = { problems: string[] } | T;
const STDIN = '-';

/** How a problem names the input: its path, or `standard input`. */
function inputName(file: string): string {
  return file === STDIN ? 'standard input' : file;
}

async function readInput(file: string, what: string, stdin: AsyncIterable<string | Buffer>): Promise<Read<{ text: string }>> {
  if (file !== STDIN) {
    try {
      return { text: await readFile(file, 'utf8') };
    } catch (err) {
      return { problems: [`cannot read the ${what} file (${(err as NodeJS.ErrnoException).code ?? String(err)})`] };
    }
  }
  const chunks: Buffer[] = [];
  for await (const chunk of stdin) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  return { text: Buffer.concat(chunks).toString('utf8') };
}

async function readIdentity(identityFile: string, stdin: AsyncIterable<string | Buffer>): Promise<Read<{ identity: Identity }>> {
  const read = await readInput(identityFile, 'identity', stdin);
  if ('problems' in read) return read;
  let value: unknown;
  try {
    // YAML 1.2 is a superset of JSON, so one parser reads both forms.
    value = parse(read.text, { uniqueKeys: true, maxAliasCount: 100 });
  } catch (err) {
    return { problems: [`${err instanceof Error ? err.message.split('\n')[0] : String(err)}, expected JSON or YAML`] };
  }
  return parseIdentity(value);
}

/**
 * A compact JWT's claims, decoded without any verification (RFC 7519 §7.2 steps 1-6 only: no signature,
 * no expiry, no audience). Problems never quote the token: it may be a live credential.
 */
export function decodeUnverifiedClaims(token: string): Read<{ claims: Record<string, unknown> }> {
  const text = token.trim();
  if (text === '') return { problems: ['found nothing, expected a JWT (header.payload.signature)'] };
  const parts = text.split('.');
  if (parts.length === 5) return { problems: ['found an encrypted token (JWE, five parts), expected a signed JWT: its claims cannot be read without the key'] };
  if (parts.length !== 3) return { problems: [`found ${parts.length} part${parts.length === 1 ? '' : 's'} separated by ".", expected a JWT of three (header.payload.signature)`] };
  const payload = parts[1]!;
  if (!/^[A-Za-z0-9_-]+$/.test(payload)) return { problems: ['the payload (second part) is not base64url, expected a JWT'] };
  let claims: unknown;
  try {
    claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
  } catch {
    return { problems: ['the payload (second part) is not JSON, expected a JWT\'s claims'] };
  }
  if (!isMapping(claims)) return { problems: [`the payload holds ${describeValue(claims)}, expected a mapping of claims`] };
  return { claims };
}

/** The identity a token's claims stand for: its `iss` as the id of the configured issuer that has it (else the URL itself), its `sub` as subject. */
async function readTokenIdentity(
  tokenFile: string,
  issuers: readonly { id: string; issuer: string; audiences: readonly string[] }[],
  stdin: AsyncIterable<string | Buffer>,
): Promise<Read<{ identity: Identity; notes: string[] }>> {
  const read = await readInput(tokenFile, 'token', stdin);
  if ('problems' in read) return read;
  const decoded = decodeUnverifiedClaims(read.text);
  if ('problems' in decoded) return decoded;
  const { iss, aud } = decoded.claims;
  if (typeof iss !== 'string' || iss === '') return { problems: [`iss: found ${describeValue(iss)}, expected the issuer URL (the source is found by it)`] };
  const audiences = typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud : [];
  const trusted = issuers.filter((i) => i.issuer === iss);
  const issuer = trusted.find((i) => i.audiences.some((a) => audiences.includes(a))) ?? trusted[0];
  const parsed = parseIdentity({ source: issuer?.id ?? iss, claims: decoded.claims });
  if ('problems' in parsed) return parsed;
  return {
    identity: parsed.identity,
    notes: [
      'note: the token was decoded, not verified: its signature, expiry and audience were not checked; the gateway checks them before any rule sees its claims',
      issuer ? `note: iss ${JSON.stringify(iss)} is issuer ${JSON.stringify(issuer.id)}` : `note: iss ${JSON.stringify(iss)} is no configured issuer's; it is used as the source as it is`,
    ],
  };
}

/** Explains, rule by rule, how an identity (a document, or a token's claims) fares against the config; returns the exit code (0 explained, 1 on problems, 2 on a usage error). */
export async function explainCommand(options: ExplainOptions, write: (line: string) => void): Promise<number> {
  if ((options.identity === undefined) === (options.token === undefined)) {
    write('explain: give one of --identity FILE or --token FILE (- reads standard input)');
    return 2;
  }
  const config = await loadConfigOrReport(options.configFile, write);
  if (!config) return 1;
  const stdin = options.stdin ?? process.stdin;
  const input = (options.identity ?? options.token)!;
  const read: Read<{ identity: Identity; notes?: string[] }> = options.token !== undefined ? await readTokenIdentity(options.token, config.issuers, stdin) : await readIdentity(input, stdin);
  if ('problems' in read) {
    write(`${inputName(input)}: ${read.problems.length} problem${read.problems.length === 1 ? '' : 's'}`);
    for (const problem of read.problems) write(`  ${problem}`);
    return 1;
  }
  const { identity } = read;
  for (const note of read.notes ?? []) write(note);
  const sources = [...config.issuers.map((i) => i.id), ...config.providers.map((p) => String(p.id))];
  if (!sources.includes(identity.source)) write(`note: source ${JSON.stringify(identity.source)} is not a configured issuer or provider (${sources.join(', ') || 'none'})`);
  const explanation = compileRules(config).explain(identity);
  for (const line of formatExplanation(explanation).split('\n')) write(line);
  const roles = explanation.roles.flatMap((name) => config.roles.filter((role) => role.name === name)).map((role) => ({ name: role.name, targets: role.targets ?? [] }));
  for (const line of explainTargets(config.targets ?? [], roles, identity, config.publicUrl)) write(line);
  // What each OpenID Provider client would receive after this identity signed in (its scopes permitting).
  for (const client of config.clients ?? []) write(`client ${JSON.stringify(client.id)} would receive: ${JSON.stringify(clientClaims(client, identity, explanation.roles))}`);
  return 0;
}
