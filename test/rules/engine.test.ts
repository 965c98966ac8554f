import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ClaimCondition, ClaimOperator, Condition, RuleConfig } from '../../src/config/types.js';
import type { Identity } from '../../src/domain/types.js';
import { compileCondition } from '../../src/rules/conditions.js';
import { compileRules, formatExplanation } from '../../src/rules/index.js';

const roles = ['deployer', 'reader', 'admin'].map((name) => ({ name }));

function eq(path: string, value: unknown, ignoreCase = false): ClaimCondition {
  return { claim: path, op: 'equals', value, ignoreCase };
}

function identity(source: string, claims: Record<string, unknown>): Identity {
  return { source, subject: typeof claims.sub === 'string' ? claims.sub : 'someone', claims };
}

const rules: RuleConfig[] = [
  { name: 'main deploys', match: { source: 'gha', conditions: [eq('repository', 'acme/app'), eq('ref', 'refs/heads/main')] }, roles: ['deployer', 'reader'] },
  { name: 'any acme repo reads', match: { source: 'gha', conditions: [{ claim: 'repository', op: 'glob', value: 'acme/*', ignoreCase: false }] }, roles: ['reader'] },
  { name: 'admins anywhere', match: { conditions: [{ claim: 'groups', op: 'contains', value: 'admins', ignoreCase: false }] }, roles: ['admin', 'reader'] },
  { name: 'k8s reader', match: { source: 'k8s', conditions: [eq('sub', 'system:serviceaccount:ci:runner')] }, roles: ['reader'] },
];

describe('evaluate', () => {
  const engine = compileRules({ rules, roles });

  it.each<[string, Identity, string[], string[]]>([
    ['main branch', identity('gha', { repository: 'acme/app', ref: 'refs/heads/main' }), ['deployer', 'reader'], ['main deploys', 'any acme repo reads']],
    ['other branch', identity('gha', { repository: 'acme/app', ref: 'refs/heads/dev' }), ['reader'], ['any acme repo reads']],
    ['other source with same claims', identity('k8s', { repository: 'acme/app', ref: 'refs/heads/main' }), [], []],
    ['source-less rule applies everywhere', identity('k8s', { groups: ['admins'] }), ['admin', 'reader'], ['admins anywhere']],
    ['dedupe in first-seen order', identity('gha', { repository: 'acme/app', ref: 'refs/heads/main', groups: ['admins'] }), ['deployer', 'reader', 'admin'], ['main deploys', 'any acme repo reads', 'admins anywhere']],
    ['sub lives in claims', identity('k8s', { sub: 'system:serviceaccount:ci:runner' }), ['reader'], ['k8s reader']],
    ['nothing', identity('gha', {}), [], []],
  ])('%s', (_name, id, expectedRoles, expectedRules) => {
    const result = engine.evaluate(id);
    expect(result.roles).toEqual(expectedRoles);
    expect(result.matched.map((m) => m.rule)).toEqual(expectedRules);
  });

  it('reports rule indexes and roles of matches', () => {
    expect(engine.evaluate(identity('gha', { repository: 'acme/x' })).matched).toEqual([{ rule: 'any acme repo reads', index: 1, roles: ['reader'] }]);
  });

  it('compares source exactly', () => {
    expect(engine.evaluate(identity('GHA', { repository: 'acme/app', ref: 'refs/heads/main' })).roles).toEqual([]);
    expect(engine.evaluate(identity('gha ', { repository: 'acme/app', ref: 'refs/heads/main' })).roles).toEqual([]);
  });

  it('does not treat a claim named like a source as the source', () => {
    expect(engine.evaluate(identity('evil', { source: 'gha', repository: 'acme/app', ref: 'refs/heads/main' })).roles).toEqual([]);
  });

  it('refuses rules naming unknown roles', () => {
    expect(() => compileRules({ rules: [{ name: 'r', match: { conditions: [] }, roles: ['nope'] }], roles })).toThrow(/unknown role "nope"/);
  });
});

describe('grant', () => {
  const engine = compileRules({ rules, roles });
  it.each<[string, Identity, string, string | undefined]>([
    ['first rule granting the role', identity('gha', { repository: 'acme/app', ref: 'refs/heads/main', groups: ['admins'] }), 'reader', 'main deploys'],
    ['later rule when the first does not match', identity('gha', { repository: 'acme/app', ref: 'refs/heads/dev' }), 'reader', 'any acme repo reads'],
    ['role no matching rule grants', identity('gha', { repository: 'acme/app', ref: 'refs/heads/dev' }), 'deployer', undefined],
    ['unknown role', identity('gha', { repository: 'acme/app', ref: 'refs/heads/main' }), 'root', undefined],
  ])('%s', (_name, id, role, expected) => {
    expect(engine.grant(id, role)).toEqual(expected === undefined ? undefined : { rule: expected });
  });
});

describe('explain', () => {
  const engine = compileRules({
    rules: [
      ...rules,
      {
        name: 'nested',
        match: {
          source: 'gha',
          conditions: [
            { any: [eq('env', 'prod'), { claim: 'env', op: 'in', value: ['staging'], ignoreCase: true }] },
            { not: { claim: 'actor', op: 'exists', value: true, ignoreCase: false } },
          ],
        },
        roles: ['admin'],
      },
    ],
    roles,
  });

  it('says what each failing condition expected and found', () => {
    const explanation = engine.explain(identity('gha', { repository: 'acme/app', ref: 'refs/heads/dev', actor: 'bob', env: true }));
    expect(explanation.rules.map((r) => r.matched)).toEqual([false, true, false, false, false]);
    expect(explanation.roles).toEqual(['reader']);
    const first = explanation.rules[0]!;
    expect(first.conditions[1]).toEqual({
      kind: 'claim',
      passed: false,
      claim: 'ref',
      op: 'equals',
      expected: 'refs/heads/main',
      ignoreCase: false,
      found: { missing: false, type: 'string', value: 'refs/heads/dev' },
    });
    expect(formatExplanation(explanation)).toBe(
      [
        'identity: source "gha", subject "someone"',
        'rule 0 "main deploys": no match',
        '    ok   source equals "gha": found "gha"',
        '    ok   repository equals "acme/app": found string "acme/app"',
        '    FAIL ref equals "refs/heads/main": found string "refs/heads/dev"',
        'rule 1 "any acme repo reads": MATCHED, grants reader',
        '    ok   source equals "gha": found "gha"',
        '    ok   repository glob "acme/*": found string "acme/app"',
        'rule 2 "admins anywhere": no match',
        '    FAIL groups contains "admins": found missing',
        'rule 3 "k8s reader": no match',
        '    FAIL source equals "k8s": found "gha"',
        '    FAIL sub equals "system:serviceaccount:ci:runner": found missing',
        'rule 4 "nested": no match',
        '    ok   source equals "gha": found "gha"',
        '    FAIL any of (no condition held):',
        '        FAIL env equals "prod": found boolean true',
        '        FAIL env in ["staging"], ignoring case: found boolean true',
        '    FAIL not (the condition held):',
        '        ok   actor exists true: found string "bob"',
        'roles: reader',
      ].join('\n'),
    );
  });

  it('says so when no rule matched', () => {
    expect(formatExplanation(engine.explain(identity('x', {})))).toMatch(/roles: none \(no rule matched\)$/);
  });

  it('agrees with evaluate', () => {
    const id = identity('gha', { repository: 'acme/app', ref: 'refs/heads/main', groups: ['admins'], env: 'STAGING' });
    expect(engine.explain(id).roles).toEqual(engine.evaluate(id).roles);
  });
});

describe('indexed evaluation equals a naive scan', () => {
  const scalars: unknown[] = ['a', 'A', 'b', 'а', '1', 1, 0, true, 'true', false, null];
  const scalar = fc.constantFrom(...scalars);
  const path = fc.constantFrom('repo', 'ref', 'org.team', 'groups', 'tags.0');
  const source = fc.constantFrom('s1', 's2', 's3');
  const ops: ClaimOperator[] = ['equals', 'not_equals', 'in', 'contains', 'starts_with', 'ends_with', 'glob', 'exists'];

  const claimCondition: fc.Arbitrary<ClaimCondition> = fc
    .record({ claim: path, op: fc.constantFrom(...ops), ignoreCase: fc.boolean(), scalar, list: fc.array(scalar, { minLength: 1, maxLength: 3 }), text: fc.constantFrom('a', 'A', '*', 'a*', '?', '') })
    .map(({ claim, op, ignoreCase, scalar: s, list, text }) => {
      const value = op === 'in' ? list : op === 'exists' ? typeof s === 'boolean' ? s : true : ['starts_with', 'ends_with', 'glob'].includes(op) ? text : s;
      return { claim, op, value, ignoreCase };
    });
  const condition: fc.Arbitrary<Condition> = fc.oneof(
    { weight: 4, arbitrary: claimCondition },
    { weight: 1, arbitrary: fc.array(claimCondition, { minLength: 1, maxLength: 2 }).map((any) => ({ any })) },
    { weight: 1, arbitrary: claimCondition.map((not) => ({ not })) },
  );
  const rule: fc.Arbitrary<RuleConfig> = fc.record({
    name: fc.string({ maxLength: 4 }),
    match: fc.record({ source: fc.option(source, { nil: undefined }), conditions: fc.array(condition, { maxLength: 3 }) }),
    roles: fc.subarray(['deployer', 'reader', 'admin'], { minLength: 1 }),
  });
  const claimValue = fc.oneof(scalar, fc.array(scalar, { maxLength: 3 }));
  const claims = fc.record(
    { repo: claimValue, ref: claimValue, org: fc.record({ team: claimValue }, { requiredKeys: [] }), groups: claimValue, tags: fc.array(scalar, { maxLength: 2 }) },
    { requiredKeys: [] },
  );
  const id = fc.record({ source, subject: fc.constant('x'), claims });

  function naive(ruleSet: RuleConfig[], who: Identity) {
    const compiled = ruleSet.map((r) => ({ r, conditions: r.match.conditions.map(compileCondition) }));
    const matched = compiled.filter(({ r, conditions }) => (r.match.source === undefined || r.match.source === who.source) && conditions.every((c) => c.test(who.claims)));
    const granted: string[] = [];
    for (const { r } of matched) for (const role of r.roles) if (!granted.includes(role)) granted.push(role);
    return { roles: granted, matched: matched.map(({ r }) => ruleSet.indexOf(r)), firstFor: (role: string) => matched.find(({ r }) => r.roles.includes(role))?.r.name };
  }

  it('on randomized rule sets', () => {
    fc.assert(
      fc.property(fc.array(rule, { maxLength: 30 }), fc.array(id, { minLength: 1, maxLength: 5 }), (ruleSet, identities) => {
        const engine = compileRules({ rules: ruleSet, roles });
        for (const who of identities) {
          const expected = naive(ruleSet, who);
          const actual = engine.evaluate(who);
          expect(actual.roles).toEqual(expected.roles);
          expect(actual.matched.map((m) => m.index)).toEqual(expected.matched);
          expect(engine.explain(who).rules.filter((r) => r.matched).map((r) => r.index)).toEqual(expected.matched);
          for (const role of ['deployer', 'reader', 'admin']) expect(engine.grant(who, role)?.rule).toEqual(expected.firstFor(role));
        }
      }),
      { numRuns: 500 },
    );
  });
});

describe('scale', () => {
  it('evaluates 10,000 indexed rules quickly', () => {
    const many: RuleConfig[] = Array.from({ length: 10_000 }, (_, i) => ({
      name: `r${i}`,
      match: { source: 'gha', conditions: [eq('repository', `acme/repo-${i}`), eq('ref', 'refs/heads/main')] },
      roles: ['deployer'],
    }));
    const engine = compileRules({ rules: many, roles });
    const who = identity('gha', { repository: 'acme/repo-9999', ref: 'refs/heads/main' });
    expect(engine.evaluate(who).matched.map((m) => m.rule)).toEqual(['r9999']);
    const started = performance.now();
    for (let i = 0; i < 1_000; i++) engine.evaluate(who);
    // Generous bound for slow CI; bench/rules.ts measures the real figure.
    expect((performance.now() - started) / 1_000).toBeLessThan(0.5);
  });
});
