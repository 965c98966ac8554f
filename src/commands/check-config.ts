/** `stsgate check-config`: report every configuration problem, or run the file's `tests:` cases. */
import { ConfigError, loadConfig } from '../config/load.js';
import type { ConfigTestCase, GatewayConfig } from '../config/types.js';
import type { Identity } from '../domain/types.js';
import { ProblemList } from '../config/problems.js';
import { compileRules, formatRuleExplanation, type RuleEngine } from '../rules/index.js';
import { loadGatewayInputs } from './gateway-inputs.js';

/** The identity a test case describes; `subject` defaults to the `sub` claim, as issuers do. */
export function testIdentity(test: ConfigTestCase): Identity {
  const { source, subject, claims } = test.identity;
  const sub = Object.hasOwn(claims, 'sub') ? claims.sub : undefined;
  return { source, subject: subject ?? (typeof sub === 'string' ? sub : ''), claims };
}

const list = (roles: readonly string[]) => (roles.length === 0 ? '(none)' : `[${roles.join(', ')}]`);

/** Runs one case; returns whether it passed, writing PASS/FAIL and, on failure, the rules involved. */
function runCase(engine: RuleEngine, test: ConfigTestCase, index: number, write: (line: string) => void): boolean {
  const identity = testIdentity(test);
  const { roles } = engine.evaluate(identity);
  const expected = [...new Set(test.expectRoles)];
  const missing = expected.filter((r) => !roles.includes(r));
  const unexpected = roles.filter((r) => !expected.includes(r));
  const label = `tests[${index}]${test.name ? ` ${JSON.stringify(test.name)}` : ''}`;
  if (missing.length === 0 && unexpected.length === 0) {
    write(`PASS ${label}: ${identity.source} -> ${list(roles)}`);
    return true;
  }
  write(`FAIL ${label}: ${identity.source}: expected ${list(expected)}, got ${list(roles)}`);
  const explanation = engine.explain(identity);
  if (missing.length > 0) {
    write(`  missing ${list(missing)}; rules that grant them did not match:`);
    const granting = explanation.rules.filter((r) => !r.matched && r.roles.some((role) => missing.includes(role)));
    if (granting.length === 0) write('    (no rule grants them)');
    for (const rule of granting) for (const line of formatRuleExplanation(rule, true)) write(`    ${line}`);
  }
  if (unexpected.length > 0) {
    write(`  unexpected ${list(unexpected)}, granted by:`);
    for (const rule of explanation.rules.filter((r) => r.matched && r.roles.some((role) => unexpected.includes(role)))) {
      write(`    rule ${rule.index} ${JSON.stringify(rule.rule)}`);
    }
  }
  return false;
}

function summary(config: GatewayConfig): string {
  const count = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`;
  return [count(config.issuers.length, 'issuer'), count(config.providers.length, 'provider'), count(config.roles.length, 'role'), count(config.rules.length, 'rule')].join(', ');
}

/** Where a command writes: one function for everything, or the CLI's stdout (`out`) and stderr (`err`) apart. */
export type CommandOutput = ((line: string) => void) | { out(line: string): void; err(line: string): void };

function streams(output: CommandOutput): { out(line: string): void; err(line: string): void } {
  return typeof output === 'function' ? { out: output, err: output } : output;
}

/** Writes a configuration error as a count and one line per problem, each `path: what is wrong`. */
function reportConfigError(file: string, err: ConfigError, write: (line: string) => void): void {
  write(`${file}: ${err.problems.length} problem${err.problems.length === 1 ? '' : 's'}`);
  for (const problem of err.problems) write(`  ${problem}`);
}

/** Loads `file`; when it has problems, writes a count and one line per problem and returns undefined. */
export async function loadConfigOrReport(file: string, write: (line: string) => void): Promise<GatewayConfig | undefined> {
  try {
    return await loadConfig(file);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    reportConfigError(file, err, write);
    return undefined;
  }
}

/**
 * Why a valid configuration may still grant nothing (printed as warnings; the exit code stays 0): with
 * no issuer or provider no identity is ever verified, and with no rule no role is ever granted.
 */
export function grantWarnings(config: GatewayConfig): string[] {
  const warnings: string[] = [];
  if (config.issuers.length === 0 && config.providers.length === 0) warnings.push('issuers: none (and no providers), so no identity is ever verified and nothing is granted');
  if (config.rules.length === 0) warnings.push('rules: none, so no role is ever granted');
  return warnings;
}

/** How long `--connect` waits for each issuer's discovery document and JWKS (Redis: the store's command timeout). */
export const CONNECT_TIMEOUT_MS = 5_000;

/** The setting a Redis connection is made from: where an operator looks when PING fails. */
function storeSettingPath(kind: 'standalone' | 'sentinel' | 'cluster'): string[] {
  return kind === 'standalone' ? ['store', 'redis', 'url'] : ['store', 'redis', kind];
}

/**
 * `--connect`: reaches what `serve` would reach first: the Redis store (one PING, within the store's
 * command timeout) and every trusted issuer's discovery document and JWKS (within `timeoutMs` each).
 * Adds a problem by setting path for each failure; writes one line per success.
 */
async function connect(config: GatewayConfig, problems: ProblemList, write: (line: string) => void, timeoutMs: number): Promise<void> {
  // Loaded only here: plain check-config (and explain, which shares this module) needs neither ioredis nor fetching.
  const [{ createStore }, { TrustedIssuers }] = await Promise.all([import('../store/index.js'), import('../issuers/index.js')]);
  const reachStore = async () => {
    if (config.store.kind === 'memory') return;
    const store = createStore(config.store, { redis: { connectTimeoutMs: timeoutMs } });
    try {
      await store.ping();
      write(`connect: ${store.description}: PING answered`);
    } catch (err) {
      // Store errors are scrubbed of passwords (store/redis/redis-store.ts).
      problems.add(storeSettingPath(config.store.kind), `${(err as Error).message}, expected a Redis that answers PING`);
    } finally {
      await store.close();
    }
  };
  const reachIssuers = async () => {
    const remote = config.issuers.filter((issuer) => issuer.keys.kind !== 'inline');
    if (remote.length === 0) return;
    const issuers = new TrustedIssuers(remote, { allowInsecureHttp: config.dev.allowInsecureHttp, fetchTimeoutMs: timeoutMs });
    for (const outcome of await issuers.fetchKeys()) {
      const index = config.issuers.findIndex((issuer) => issuer.id === outcome.id);
      const issuer = config.issuers[index]!;
      if (outcome.error === undefined) {
        write(`connect: issuers[${index}] ${issuer.id}: ${outcome.usable} usable key${outcome.usable === 1 ? '' : 's'}`);
      } else if (issuer.keys.kind === 'jwks_uri') {
        problems.add(['issuers', index, 'jwks_uri'], `${outcome.error}, expected a JWKS with a usable key`);
      } else {
        problems.add(['issuers', index, 'issuer'], `${outcome.error}, expected a discovery document and a JWKS with a usable key`);
      }
    }
  };
  await Promise.all([reachStore(), reachIssuers()]);
}

/** What `check-config` does besides loading: `connect` reaches the store and the issuers too. */
export interface CheckConfigOptions {
  connect?: boolean;
  /** How long `connect` waits for each issuer (default CONNECT_TIMEOUT_MS). */
  connectTimeoutMs?: number;
}

/**
 * Loads `file` and everything it names exactly as `serve` does (the keys file too), optionally reaches
 * the store and the issuers, and runs the `tests:` cases. Problems and warnings go to `err`, the verdict
 * and the cases to `out`; returns the exit code (0 valid, 1 otherwise; warnings keep 0).
 */
export async function checkConfigCommand(file: string, output: CommandOutput, options: CheckConfigOptions = {}): Promise<number> {
  const { out, err } = streams(output);
  let config: GatewayConfig;
  try {
    ({ config } = await loadGatewayInputs(file));
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    reportConfigError(file, error, err);
    return 1;
  }
  if (options.connect) {
    const problems = new ProblemList();
    await connect(config, problems, out, options.connectTimeoutMs ?? CONNECT_TIMEOUT_MS);
    if (!problems.empty) {
      reportConfigError(file, new ConfigError(problems.items, file), err);
      return 1;
    }
  }
  for (const warning of grantWarnings(config)) err(`warning: ${warning}`);
  out(`${file}: valid (${summary(config)})`);
  if (config.tests.length === 0) {
    out('no tests: cases to run');
    return 0;
  }
  const engine = compileRules(config);
  let failed = 0;
  config.tests.forEach((test, index) => {
    if (!runCase(engine, test, index, out)) failed++;
  });
  out(`tests: ${config.tests.length - failed} passed, ${failed} failed`);
  return failed === 0 ? 0 : 1;
}
