/** `stsgate check-config`: report every configuration problem, or run the file's `tests:` cases. */
import { ConfigError, loadConfig } from '../config/load.js';
import type { ConfigTestCase, GatewayConfig } from '../config/types.js';
import type { Identity } from '../domain/types.js';
import { compileRules, formatRuleExplanation, type RuleEngine } from '../rules/index.js';

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

/** Loads `file`; when it has problems, writes a count and one line per problem and returns undefined. */
export async function loadConfigOrReport(file: string, write: (line: string) => void): Promise<GatewayConfig | undefined> {
  try {
    return await loadConfig(file);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    write(`${file}: ${err.problems.length} problem${err.problems.length === 1 ? '' : 's'}`);
    for (const problem of err.problems) write(`  ${problem}`);
    return undefined;
  }
}

/** Validates `file` and runs its `tests:` cases, writing one line per problem or case; returns the exit code (0 ok, 1 otherwise). */
export async function checkConfigCommand(file: string, write: (line: string) => void): Promise<number> {
  const config = await loadConfigOrReport(file, write);
  if (!config) return 1;
  write(`${file}: valid (${summary(config)})`);
  if (config.tests.length === 0) {
    write('no tests: cases to run');
    return 0;
  }
  const engine = compileRules(config);
  let failed = 0;
  config.tests.forEach((test, index) => {
    if (!runCase(engine, test, index, write)) failed++;
  });
  write(`tests: ${config.tests.length - failed} passed, ${failed} failed`);
  return failed === 0 ? 0 : 1;
}
