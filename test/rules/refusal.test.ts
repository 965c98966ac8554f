/**
 * The closest rule a refusal's audit line names: the rule that would need the fewest changes to grant the
 * role, preferring the identity's own source, and its failing conditions in `stsgate explain`'s words.
 */
import { describe, expect, it } from 'vitest';
import type { ClaimCondition, RuleConfig } from '../../src/config/types.js';
import type { Identity } from '../../src/domain/types.js';
import { compileRules, formatExplanation, refusalExplanation } from '../../src/rules/index.js';

const eq = (claim: string, value: unknown): ClaimCondition => ({ claim, op: 'equals', value, ignoreCase: false });
const roles = ['deployer', 'reader', 'admin'].map((name) => ({ name }));

const rules: RuleConfig[] = [
  { name: 'k8s deploys', match: { source: 'k8s', conditions: [eq('repository', 'acme/app')] }, roles: ['deployer'] },
  { name: 'main deploys', match: { source: 'gha', conditions: [eq('repository', 'acme/app'), eq('ref', 'refs/heads/main'), eq('env', 'prod')] }, roles: ['deployer'] },
  { name: 'release deploys', match: { source: 'gha', conditions: [eq('repository', 'acme/app'), { any: [eq('ref', 'refs/heads/release'), eq('tag', true)] }] }, roles: ['deployer'] },
  { name: 'acme reads', match: { source: 'gha', conditions: [{ claim: 'repository', op: 'starts_with', value: 'acme/', ignoreCase: false }] }, roles: ['reader'] },
  { name: 'not a bot administers', match: { source: 'gha', conditions: [{ not: eq('actor', 'bot') }] }, roles: ['admin'] },
];
const engine = compileRules({ rules, roles });
const gha = (claims: Record<string, unknown>): Identity => ({ source: 'gha', subject: 's', claims });

describe('refusalExplanation', () => {
  it.each<[string, Identity, string | undefined, { closestRule: string; failing: string[] } | undefined]>([
    [
      'the fewest failing conditions wins (an `any` counts its nearest branch)',
      gha({ repository: 'acme/app', ref: 'refs/heads/dev', env: 'dev' }),
      'deployer',
      { closestRule: 'release deploys', failing: ['FAIL any of (no condition held):', '    FAIL ref equals "refs/heads/release": found string "refs/heads/dev"', '    FAIL tag equals true: found missing'] },
    ],
    [
      'a rule of another source only when none of its own comes close',
      { source: 'k8s', subject: 's', claims: { repository: 'acme/other' } },
      'deployer',
      { closestRule: 'k8s deploys', failing: ['FAIL repository equals "acme/app": found string "acme/other"'] },
    ],
    [
      'ties go to rule order',
      gha({ repository: 'acme/app', ref: 'refs/heads/main', env: 'dev' }),
      'deployer',
      { closestRule: 'main deploys', failing: ['FAIL env equals "prod": found string "dev"'] },
    ],
    ['only rules granting the role asked for', gha({ repository: 'other/x', actor: 'bot' }), 'admin', { closestRule: 'not a bot administers', failing: ['FAIL not (the condition held):', '    ok   actor equals "bot": found string "bot"'] }],
    ['no role known: any rule that did not match', gha({ repository: 'other/x' }), undefined, { closestRule: 'acme reads', failing: ['FAIL repository starts_with "acme/": found string "other/x"'] }],
    ['no rule grants the role at all', gha({}), 'nonexistent', undefined],
  ])('%s', (_name, identity, role, expected) => {
    expect(refusalExplanation(engine.explain(identity), role)).toEqual(expected);
  });

  it('words each failing condition exactly as `stsgate explain` prints it', () => {
    const identity = gha({ repository: 'acme/app', ref: 'refs/heads/main', env: 'dev' });
    const printed = formatExplanation(engine.explain(identity)).split('\n');
    for (const line of refusalExplanation(engine.explain(identity), 'deployer')!.failing) expect(printed).toContain(`    ${line}`);
  });
});
