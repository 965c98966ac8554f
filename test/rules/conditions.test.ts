import { describe, expect, it } from 'vitest';
import type { ClaimOperator, Condition } from '../../src/config/types.js';
import { compileCondition } from '../../src/rules/conditions.js';

function claim(path: string, op: ClaimOperator, value: unknown, ignoreCase = false): Condition {
  return { claim: path, op, value, ignoreCase };
}

function test(condition: Condition, claims: unknown): boolean {
  return compileCondition(condition).test(claims);
}

describe('claim operators', () => {
  it.each<[string, Condition, unknown, boolean]>([
    // equals: strict JSON scalar equality
    ['equals string', claim('repo', 'equals', 'acme/app'), { repo: 'acme/app' }, true],
    ['equals other string', claim('repo', 'equals', 'acme/app'), { repo: 'acme/app2' }, false],
    ['equals "true" is not true', claim('flag', 'equals', true), { flag: 'true' }, false],
    ['equals true is not "true"', claim('flag', 'equals', 'true'), { flag: true }, false],
    ['equals 1 is not "1"', claim('n', 'equals', 1), { n: '1' }, false],
    ['equals "1" is not 1', claim('n', 'equals', '1'), { n: 1 }, false],
    ['equals number', claim('n', 'equals', 1), { n: 1 }, true],
    ['equals null', claim('n', 'equals', null), { n: null }, true],
    ['equals null is not missing', claim('n', 'equals', null), {}, false],
    ['equals 0 is not false', claim('n', 'equals', 0), { n: false }, false],
    ['equals is not element of array', claim('g', 'equals', 'a'), { g: ['a'] }, false],
    ['equals is case sensitive', claim('repo', 'equals', 'Acme/App'), { repo: 'acme/app' }, false],
    ['equals on missing', claim('repo', 'equals', 'x'), {}, false],
    // not_equals: fails closed on missing
    ['not_equals different', claim('ref', 'not_equals', 'refs/heads/main'), { ref: 'refs/heads/dev' }, true],
    ['not_equals same', claim('ref', 'not_equals', 'refs/heads/main'), { ref: 'refs/heads/main' }, false],
    ['not_equals missing fails closed', claim('ref', 'not_equals', 'refs/heads/main'), {}, false],
    ['not_equals other type is different', claim('flag', 'not_equals', true), { flag: 'true' }, true],
    ['not_equals null present', claim('x', 'not_equals', 'a'), { x: null }, true],
    // in
    ['in member', claim('env', 'in', ['prod', 'staging']), { env: 'prod' }, true],
    ['in non-member', claim('env', 'in', ['prod', 'staging']), { env: 'dev' }, false],
    ['in strict types', claim('n', 'in', ['1', '2']), { n: 1 }, false],
    ['in with null member', claim('n', 'in', [null]), { n: null }, true],
    ['in missing', claim('n', 'in', [null]), {}, false],
    ['in array claim is not a member', claim('g', 'in', ['a']), { g: ['a'] }, false],
    // contains: array claims
    ['contains element', claim('groups', 'contains', 'admins'), { groups: ['dev', 'admins'] }, true],
    ['contains absent element', claim('groups', 'contains', 'admins'), { groups: ['dev'] }, false],
    ['contains strict element', claim('ids', 'contains', 1), { ids: ['1'] }, false],
    ['contains on string claim', claim('groups', 'contains', 'adm'), { groups: 'admins' }, false],
    ['contains on missing', claim('groups', 'contains', 'admins'), {}, false],
    ['contains is not substring of element', claim('groups', 'contains', 'adm'), { groups: ['admins'] }, false],
    // starts_with / ends_with
    ['starts_with', claim('ref', 'starts_with', 'refs/tags/'), { ref: 'refs/tags/v1' }, true],
    ['starts_with no', claim('ref', 'starts_with', 'refs/tags/'), { ref: 'refs/heads/v1' }, false],
    ['starts_with needs string', claim('n', 'starts_with', '1'), { n: 12 }, false],
    ['ends_with', claim('email', 'ends_with', '@acme.com'), { email: 'a@acme.com' }, true],
    ['ends_with no', claim('email', 'ends_with', '@acme.com'), { email: 'a@acme.com.evil.io' }, false],
    ['ends_with missing', claim('email', 'ends_with', '@acme.com'), {}, false],
    // glob
    ['glob star', claim('host', 'glob', '*.example.com'), { host: 'api.example.com' }, true],
    ['glob star matches dots too', claim('host', 'glob', '*.example.com'), { host: 'a.b.example.com' }, true],
    ['glob star is not a prefix trick', claim('host', 'glob', '*.example.com'), { host: 'evil-example.com' }, false],
    ['glob anchored at end', claim('host', 'glob', '*.example.com'), { host: 'example.com.evil.io' }, false],
    ['glob needs the dot', claim('host', 'glob', '*.example.com'), { host: 'example.com' }, false],
    ['glob empty run', claim('ref', 'glob', 'refs/tags/v*'), { ref: 'refs/tags/v' }, true],
    ['glob question mark', claim('ref', 'glob', 'v?.0'), { ref: 'v1.0' }, true],
    ['glob question mark is one char', claim('ref', 'glob', 'v?.0'), { ref: 'v10.0' }, false],
    ['glob question mark is one code point', claim('x', 'glob', 'a?b'), { x: 'a😀b' }, true],
    ['glob regex metacharacters are literal', claim('x', 'glob', 'a.b+(c)'), { x: 'a.b+(c)' }, true],
    ['glob dot is literal', claim('x', 'glob', 'a.b'), { x: 'axb' }, false],
    ['glob two stars', claim('x', 'glob', 'repo:acme/*:ref:refs/heads/*'), { x: 'repo:acme/app:ref:refs/heads/main' }, true],
    ['glob two stars no', claim('x', 'glob', 'repo:acme/*:ref:refs/heads/*'), { x: 'repo:evil/app:ref:refs/heads/main' }, false],
    ['glob star spans newlines', claim('x', 'glob', 'a*b'), { x: 'a\nb' }, true],
    ['glob without wildcards is equality', claim('x', 'glob', 'abc'), { x: 'abcd' }, false],
    ['glob needs string', claim('x', 'glob', '*'), { x: 1 }, false],
    ['glob missing', claim('x', 'glob', '*'), {}, false],
    // matches: full-match RE2
    ['matches full', claim('ref', 'matches', 'refs/tags/v[0-9]+'), { ref: 'refs/tags/v12' }, true],
    ['matches is anchored at end', claim('ref', 'matches', 'refs/tags/v[0-9]+'), { ref: 'refs/tags/v12-evil' }, false],
    ['matches is anchored at start', claim('repo', 'matches', 'acme/.*'), { repo: 'evil/acme/x' }, false],
    ['matches alternation anchored as a whole', claim('x', 'matches', 'a|ab'), { x: 'ab' }, true],
    ['matches alternation no suffix', claim('x', 'matches', 'a|b'), { x: 'ac' }, false],
    ['matches needs string', claim('x', 'matches', '.*'), { x: null }, false],
    ['matches missing', claim('x', 'matches', '.*'), {}, false],
    // exists
    ['exists true present', claim('x', 'exists', true), { x: 'v' }, true],
    ['exists true null is present', claim('x', 'exists', true), { x: null }, true],
    ['exists true missing', claim('x', 'exists', true), {}, false],
    ['exists false missing', claim('x', 'exists', false), {}, true],
    ['exists false present', claim('x', 'exists', false), { x: false }, false],
  ])('%s', (_name, condition, claims, expected) => {
    expect(test(condition, claims)).toBe(expected);
  });
});

describe('claim paths', () => {
  it.each<[string, string, unknown, boolean]>([
    ['nested', 'org.team', { org: { team: 'x' } }, true],
    ['array index', 'groups.1', { groups: ['a', 'x'] }, true],
    ['array index out of range', 'groups.2', { groups: ['a', 'x'] }, false],
    ['non-canonical index', 'groups.01', { groups: ['a', 'x'] }, false],
    ['through a string', 'repo.length', { repo: 'x' }, false],
    ['escaped dot', 'https://acme\\.com/role', { 'https://acme.com/role': 'x' }, true],
    ['escaped dot is not a path', 'https://acme\\.com/role', { 'https://acme': { 'com/role': 'x' } }, false],
    ['unescaped dot is a path', 'a.b', { 'a.b': 'x' }, false],
  ])('%s', (_name, path, claims, expected) => {
    expect(test(claim(path, 'equals', 'x'), claims)).toBe(expected);
  });

  it.each<[string, string]>([
    ['__proto__', '__proto__'],
    ['constructor', 'constructor'],
    ['toString', 'toString'],
    ['hasOwnProperty', 'hasOwnProperty'],
    ['constructor.name', 'constructor.name'],
    ['__proto__.polluted', '__proto__.polluted'],
    ['array length', 'groups.length'],
  ])('%s is only an own name: absent on an ordinary object', (_name, path) => {
    const claims = { groups: ['a'] };
    expect(test(claim(path, 'exists', true), claims)).toBe(false);
    expect(test(claim(path, 'exists', false), claims)).toBe(true);
    expect(test(claim(path, 'not_equals', 'zzz'), claims)).toBe(false);
    expect(test(claim(path, 'equals', 'Object'), claims)).toBe(false);
  });

  it('matches __proto__ and constructor when the token carries them as own claims', () => {
    const claims = JSON.parse('{"__proto__": "admin", "constructor": {"name": "x"}}') as unknown;
    expect(test(claim('__proto__', 'equals', 'admin'), claims)).toBe(true);
    expect(test(claim('constructor.name', 'equals', 'x'), claims)).toBe(true);
  });

  it('does not see inherited properties', () => {
    const claims = Object.create({ role: 'admin' }) as object;
    expect(test(claim('role', 'equals', 'admin'), claims)).toBe(false);
  });

  it('works on null-prototype claims', () => {
    const claims = Object.assign(Object.create(null) as object, { a: 'x' });
    expect(test(claim('a', 'equals', 'x'), claims)).toBe(true);
  });
});

describe('ignore_case', () => {
  it.each<[string, Condition, unknown, boolean]>([
    ['equals folds ASCII', claim('repo', 'equals', 'Acme/App', true), { repo: 'ACME/app' }, true],
    ['equals Cyrillic а is not Latin a', claim('repo', 'equals', 'acme/app', true), { repo: 'аcme/app' }, false],
    ['equals Cyrillic А is not Latin A', claim('repo', 'equals', 'ACME', true), { repo: 'АCME' }, false],
    ['equals Kelvin sign is not k', claim('ns', 'equals', 'kube', true), { ns: '\u212Aube' }, false],
    ['equals no Unicode normalization (é composed vs decomposed)', claim('n', 'equals', 'caf\u00e9', true), { n: 'cafe\u0301' }, false],
    ['equals non-ASCII folds', claim('n', 'equals', 'ÉCOLE', true), { n: 'école' }, true],
    ['equals numbers stay strict', claim('n', 'equals', 1, true), { n: '1' }, false],
    ['not_equals folds', claim('ref', 'not_equals', 'MAIN', true), { ref: 'main' }, false],
    ['in folds', claim('env', 'in', ['PROD', 'staging'], true), { env: 'prod' }, true],
    ['in look-alike', claim('env', 'in', ['prod'], true), { env: 'prоd' }, false],
    ['contains folds', claim('groups', 'contains', 'Admins', true), { groups: ['ADMINS'] }, true],
    ['starts_with folds', claim('ref', 'starts_with', 'REFS/', true), { ref: 'refs/x' }, true],
    ['ends_with folds', claim('email', 'ends_with', '@ACME.COM', true), { email: 'a@acme.com' }, true],
    ['ends_with look-alike', claim('email', 'ends_with', '@acme.com', true), { email: 'a@аcme.com' }, false],
    ['glob folds', claim('host', 'glob', '*.EXAMPLE.com', true), { host: 'API.example.COM' }, true],
    ['glob look-alike', claim('host', 'glob', '*.example.com', true), { host: 'api.exаmple.com' }, false],
    ['without ignore_case no folding', claim('repo', 'equals', 'Acme', false), { repo: 'acme' }, false],
  ])('%s', (_name, condition, claims, expected) => {
    expect(test(condition, claims)).toBe(expected);
  });

  it('refuses ignore_case with matches', () => {
    expect(() => compileCondition(claim('x', 'matches', 'a', true))).toThrow(/ignore_case/);
  });
});

describe('combinators', () => {
  const a = claim('a', 'equals', 1);
  const b = claim('b', 'equals', 2);
  it.each<[string, Condition, unknown, boolean]>([
    ['all both', { all: [a, b] }, { a: 1, b: 2 }, true],
    ['all one', { all: [a, b] }, { a: 1, b: 3 }, false],
    ['any one', { any: [a, b] }, { a: 0, b: 2 }, true],
    ['any none', { any: [a, b] }, { a: 0, b: 0 }, false],
    ['not true', { not: a }, { a: 0 }, true],
    ['not false', { not: a }, { a: 1 }, false],
    ['not of missing is true', { not: a }, {}, true],
    ['nested', { all: [{ any: [a, b] }, { not: claim('c', 'exists', true) }] }, { b: 2 }, true],
    ['nested fails', { all: [{ any: [a, b] }, { not: claim('c', 'exists', true) }] }, { b: 2, c: 0 }, false],
  ])('%s', (_name, condition, claims, expected) => {
    expect(test(condition, claims)).toBe(expected);
  });
});

describe('linear time', () => {
  it.each<[string, string, string]>([
    ['nested quantifier', '(a+)+$', `${'a'.repeat(50_000)}!`],
    ['alternation blowup', '(a|a)*b', 'a'.repeat(50_000)],
    ['classic email', '^([a-zA-Z0-9])(([\\-.]|[_]+)?([a-zA-Z0-9]+))*(@){1}[a-z0-9]+[.]{1}(([a-z]{2,3})|([a-z]{2,3}[.]{1}[a-z]{2,3}))$', `${'a'.repeat(30_000)}!`],
  ])('matches %s on hostile input finishes fast', (_name, pattern, input) => {
    const started = performance.now();
    expect(test(claim('x', 'matches', pattern), { x: input })).toBe(false);
    expect(performance.now() - started).toBeLessThan(1_000);
  });

  it('glob with many stars on hostile input finishes fast', () => {
    const started = performance.now();
    expect(test(claim('x', 'glob', '*a*a*a*a*a*a*a*a*a*b'), { x: 'a'.repeat(50_000) })).toBe(false);
    expect(performance.now() - started).toBeLessThan(1_000);
  });
});
