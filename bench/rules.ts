/**
 * Rule engine benchmark: µs per evaluation for 10, 1,000 and 10,000 rules (`npm run bench:rules`; also
 * part of `npm run bench`).
 * Rule sets look like real ones: most rules pin a repository and a ref (indexed), plus a handful of
 * glob/regex rules that cannot be indexed and are checked on every evaluation.
 */
import { pathToFileURL } from 'node:url';
import type { RuleConfig } from '../src/config/types.js';
import type { Identity } from '../src/domain/types.js';
import { compileRules } from '../src/rules/index.js';

const UNINDEXED = 5;

function ruleSet(size: number): RuleConfig[] {
  const rules: RuleConfig[] = [];
  for (let i = 0; i < size; i++) {
    if (i < UNINDEXED) {
      rules.push({
        name: `pattern ${i}`,
        match: {
          source: 'github-actions',
          conditions: [
            { claim: 'repository', op: 'glob', value: `team-${i}/*`, ignoreCase: false },
            { claim: 'ref', op: 'matches', value: 'refs/tags/v[0-9]+\\.[0-9]+\\.[0-9]+', ignoreCase: false },
          ],
        },
        roles: ['reader'],
      });
      continue;
    }
    rules.push({
      name: `repo ${i}`,
      match: {
        source: i % 2 === 0 ? 'github-actions' : 'k8s',
        conditions: [
          { claim: 'repository', op: 'equals', value: `acme/repo-${i}`, ignoreCase: false },
          { claim: 'ref', op: 'equals', value: 'refs/heads/main', ignoreCase: false },
        ],
      },
      roles: i % 3 === 0 ? ['deployer', 'reader'] : ['reader'],
    });
  }
  return rules;
}

/** The rule-set sizes the issue asks about. */
export const RULE_SET_SIZES = [10, 1_000, 10_000] as const;

/** Compiles `size` rules and times evaluations against a rotating set of identities. */
export function measureRules(size: number): { perEvaluationUs: number; compileMs: number } {
  const rules = ruleSet(size);
  const started = performance.now();
  const engine = compileRules({ rules, roles: [{ name: 'deployer' }, { name: 'reader' }] });
  const compileMs = performance.now() - started;
  const identities: Identity[] = Array.from({ length: 64 }, (_, k) => ({
    source: 'github-actions',
    subject: `repo:acme/repo-${k}`,
    claims: { repository: `acme/repo-${(k * 157) % size}`, ref: k % 4 === 0 ? 'refs/tags/v1.2.3' : 'refs/heads/main', sub: `repo:acme/repo-${k}` },
  }));
  let sink = 0;
  for (let i = 0; i < 20_000; i++) sink += engine.evaluate(identities[i % identities.length]!).roles.length; // warm-up
  const iterations = 200_000;
  const t0 = performance.now();
  for (let i = 0; i < iterations; i++) sink += engine.evaluate(identities[i % identities.length]!).roles.length;
  const elapsed = performance.now() - t0;
  if (sink < 0) console.log(sink);
  return { perEvaluationUs: (elapsed * 1_000) / iterations, compileMs };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  for (const size of RULE_SET_SIZES) {
    const { perEvaluationUs, compileMs } = measureRules(size);
    console.log(`${String(size).padStart(6)} rules: ${perEvaluationUs.toFixed(2).padStart(6)} µs/evaluation (compiled in ${compileMs.toFixed(1)} ms)`);
  }
}
