/**
 * Hostile claim values against the rules, end to end: validly signed tokens whose claims try to satisfy a
 * rule they should not (wrong JSON types, unverified emails, case and Unicode look-alikes, prefix and
 * suffix tricks against globs and patterns, the same `sub` from another issuer, claims reachable only
 * through a prototype), and ReDoS-shaped values that must be refused fast. Each row runs under both
 * protocols; controls show every rule does grant its real claims.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClaimOperator, Condition, RoleConfig, RuleConfig } from '../../src/config/types.js';
import { issuerFor } from '../support/gateway.js';
import { TestIssuer } from '../support/test-issuer.js';
import { expectRefused, oauthFor, postOAuth, postSts, signRaw, startSecurityGateway, type SecurityGateway } from './harness.js';
import { ACCOUNT_ID } from '../support/common.js';

let ci: TestIssuer;
let other: TestIssuer;
let google: TestIssuer;
let g: SecurityGateway;

const c = (claim: string, op: ClaimOperator, value: unknown, ignoreCase = false): Condition => ({ claim, op, value, ignoreCase });
const role = (name: string): RoleConfig => ({ name, scopes: ['x'], audiences: ['api.example.com'], maxSessionSeconds: 3600, canAssume: [], sessionTags: {} });
const rule = (name: string, source: string, conditions: Condition[]): RuleConfig => ({ name, match: { source, conditions }, roles: [name] });

const RULES: RuleConfig[] = [
  rule('staff', 'google', [c('email', 'ends_with', '@acme.com'), c('email_verified', 'equals', true)]),
  rule('kestrel', 'google', [c('email', 'ends_with', '@kestrel.io', true), c('email_verified', 'equals', true)]),
  rule('acme-ci', 'ci', [c('repository', 'glob', 'acme/*')]),
  rule('release', 'ci', [c('ref', 'matches', 'refs/tags/v[0-9]+\\.[0-9]+\\.[0-9]+')]),
  rule('pinned', 'ci', [c('repository_id', 'equals', 123)]),
  rule('group-admin', 'ci', [c('groups', 'contains', 'admins')]),
  rule('admin', 'ci', [c('is_admin', 'equals', true)]),
  rule('deployer', 'ci', [c('sub', 'equals', 'repo:acme/app:ref:refs/heads/main')]),
  rule('acme-subjects', 'ci', [c('sub', 'starts_with', 'repo:acme/')]),
  rule('redos', 'ci', [c('workflow', 'matches', '(a+)+b')]),
  rule('globby', 'ci', [c('job', 'glob', 'a*a*a*a*a*a*a*a*b')]),
  rule('tenant', 'ci', [c('tid', 'in', ['acme', 'acme-eu'])]),
];

beforeAll(async () => {
  [ci, other, google] = await Promise.all([TestIssuer.start(), TestIssuer.start(), TestIssuer.start()]);
  g = await startSecurityGateway({
    issuers: [issuerFor(ci, 'ci'), issuerFor(other, 'other'), issuerFor(google, 'google')],
    roles: RULES.map((r) => role(r.name)),
    rules: RULES,
  });
});
afterAll(async () => {
  await g?.close();
  await Promise.all([ci?.close(), other?.close(), google?.close()]);
});

type IssuerName = 'ci' | 'other' | 'google';
const issuer = (name: IssuerName) => ({ ci, other, google })[name];

interface Row {
  name: string;
  role: string;
  issuer?: IssuerName;
  claims: Record<string, unknown>;
  /** Raw JSON to splice into the payload (for names JSON.stringify cannot write, like __proto__). */
  rawMembers?: string;
  /** The whole exchange must be answered within this many ms (ReDoS rows). */
  withinMs?: number;
}

const VERIFIED = { email_verified: true };
const A = 'a'.repeat(12_000);

const hostile: Row[] = [
  // Unverified or oddly verified emails.
  { name: 'email_verified the string "true"', role: 'staff', issuer: 'google', claims: { email: 'eve@acme.com', email_verified: 'true' } },
  { name: 'email_verified missing', role: 'staff', issuer: 'google', claims: { email: 'eve@acme.com' } },
  { name: 'email_verified 1', role: 'staff', issuer: 'google', claims: { email: 'eve@acme.com', email_verified: 1 } },
  { name: 'email_verified false', role: 'staff', issuer: 'google', claims: { email: 'eve@acme.com', email_verified: false } },
  { name: 'email_verified [true]', role: 'staff', issuer: 'google', claims: { email: 'eve@acme.com', email_verified: [true] } },
  // Domains: case, look-alikes, suffix tricks.
  { name: 'domain in upper case (rule is case-sensitive)', role: 'staff', issuer: 'google', claims: { email: 'eve@ACME.COM', ...VERIFIED } },
  { name: 'domain as a prefix of another domain', role: 'staff', issuer: 'google', claims: { email: 'eve@acme.com.evil.io', ...VERIFIED } },
  { name: 'Cyrillic а in the domain', role: 'staff', issuer: 'google', claims: { email: 'eve@\u0430cme.com', ...VERIFIED } },
  { name: 'fullwidth letters in the domain', role: 'staff', issuer: 'google', claims: { email: 'eve@\uff41\uff43\uff4d\uff45.com', ...VERIFIED } },
  { name: 'domain followed by a NUL', role: 'staff', issuer: 'google', claims: { email: 'eve@acme.com\u0000', ...VERIFIED } },
  { name: 'domain followed by a newline', role: 'staff', issuer: 'google', claims: { email: 'eve@acme.com\n', ...VERIFIED } },
  { name: 'email as a list', role: 'staff', issuer: 'google', claims: { email: ['eve@acme.com'], ...VERIFIED } },
  { name: 'email as an object', role: 'staff', issuer: 'google', claims: { email: { endsWith: '@acme.com' }, ...VERIFIED } },
  { name: 'ignore_case: KELVIN SIGN posing as k', role: 'kestrel', issuer: 'google', claims: { email: 'eve@\u212Aestrel.io', ...VERIFIED } },
  { name: 'ignore_case: dotless ı posing as i', role: 'kestrel', issuer: 'google', claims: { email: 'eve@kestrel.\u0131o', ...VERIFIED } },
  { name: 'ignore_case: Cyrillic е posing as e', role: 'kestrel', issuer: 'google', claims: { email: 'eve@k\u0435strel.io', ...VERIFIED } },
  // Glob acme/* : prefix and suffix tricks.
  { name: 'glob: owner with a suffix (acme-evil/app)', role: 'acme-ci', claims: { repository: 'acme-evil/app' } },
  { name: 'glob: owner nested under another (evil/acme/app)', role: 'acme-ci', claims: { repository: 'evil/acme/app' } },
  { name: 'glob: owner in another case', role: 'acme-ci', claims: { repository: 'ACME/app' } },
  { name: 'glob: owner without the slash', role: 'acme-ci', claims: { repository: 'acme' } },
  { name: 'glob: a leading space', role: 'acme-ci', claims: { repository: ' acme/app' } },
  { name: 'glob: DIVISION SLASH instead of /', role: 'acme-ci', claims: { repository: 'acme\u2215app' } },
  { name: 'glob: repository as a list', role: 'acme-ci', claims: { repository: ['acme/app'] } },
  { name: 'glob: repository null', role: 'acme-ci', claims: { repository: null } },
  // Full-match patterns.
  { name: 'matches: a suffix after the version', role: 'release', claims: { ref: 'refs/tags/v1.2.3-evil' } },
  { name: 'matches: a prefix before refs/', role: 'release', claims: { ref: 'xrefs/tags/v1.2.3' } },
  { name: 'matches: a trailing newline', role: 'release', claims: { ref: 'refs/tags/v1.2.3\n' } },
  { name: 'matches: Arabic-Indic digits', role: 'release', claims: { ref: 'refs/tags/v\u0661.\u0662.\u0663' } },
  // Strict types.
  { name: 'repository_id "123" where the rule says 123', role: 'pinned', claims: { repository_id: '123' } },
  { name: 'repository_id [123]', role: 'pinned', claims: { repository_id: [123] } },
  { name: 'repository_id true', role: 'pinned', claims: { repository_id: true } },
  { name: 'groups the string "admins"', role: 'group-admin', claims: { groups: 'admins' } },
  { name: 'groups nested [["admins"]]', role: 'group-admin', claims: { groups: [['admins']] } },
  { name: 'groups an object {0: "admins"}', role: 'group-admin', claims: { groups: { 0: 'admins', length: 1 } } },
  { name: 'groups ["Admins"]', role: 'group-admin', claims: { groups: ['Admins'] } },
  { name: 'groups ["admins "]', role: 'group-admin', claims: { groups: ['admins '] } },
  { name: 'is_admin the string "true"', role: 'admin', claims: { is_admin: 'true' } },
  { name: 'is_admin 1', role: 'admin', claims: { is_admin: 1 } },
  { name: 'tid "ACME" against in [acme, acme-eu]', role: 'tenant', claims: { tid: 'ACME' } },
  { name: 'tid ["acme"] against in', role: 'tenant', claims: { tid: ['acme'] } },
  // Names meant to confuse a JavaScript object.
  { name: 'is_admin only under __proto__', role: 'admin', claims: {}, rawMembers: '"__proto__":{"is_admin":true}' },
  { name: 'is_admin only under constructor.prototype', role: 'admin', claims: { constructor: { prototype: { is_admin: true } } } },
  { name: 'groups only under __proto__', role: 'group-admin', claims: {}, rawMembers: '"__proto__":{"groups":["admins"]}' },
  // Subjects: prefixes, and the same subject from another issuer.
  { name: 'sub with an owner suffix (repo:acme-evil/...)', role: 'acme-subjects', claims: { sub: 'repo:acme-evil/app:ref:refs/heads/main' } },
  { name: 'sub in another case', role: 'deployer', claims: { sub: 'Repo:acme/app:ref:refs/heads/main' } },
  { name: 'sub with a trailing space', role: 'deployer', claims: { sub: 'repo:acme/app:ref:refs/heads/main ' } },
  { name: 'the same sub from another trusted issuer', role: 'deployer', issuer: 'other', claims: { sub: 'repo:acme/app:ref:refs/heads/main' } },
  { name: 'the same email from another trusted issuer', role: 'staff', issuer: 'ci', claims: { email: 'eve@acme.com', ...VERIFIED } },
  // ReDoS-shaped values: refused, and fast (RE2 and the glob compiler are linear-time).
  // A backtracking engine takes minutes on these; the bound leaves room for a loaded machine.
  { name: 'ReDoS: (a+)+b against 12000 a and a c', role: 'redos', claims: { workflow: `${A}c` }, withinMs: 2_000 },
  { name: 'ReDoS: a*a*a*a*a*a*a*a*b against 12000 a and a c', role: 'globby', claims: { job: `${A}c` }, withinMs: 2_000 },
];

const controls: Row[] = [
  { name: 'staff', role: 'staff', issuer: 'google', claims: { email: 'ann@acme.com', ...VERIFIED } },
  { name: 'kestrel, in upper case', role: 'kestrel', issuer: 'google', claims: { email: 'ann@KESTREL.IO', ...VERIFIED } },
  { name: 'acme-ci', role: 'acme-ci', claims: { repository: 'acme/app' } },
  { name: 'release', role: 'release', claims: { ref: 'refs/tags/v10.2.3' } },
  { name: 'pinned', role: 'pinned', claims: { repository_id: 123 } },
  { name: 'group-admin', role: 'group-admin', claims: { groups: ['dev', 'admins'] } },
  { name: 'admin', role: 'admin', claims: { is_admin: true } },
  { name: 'deployer', role: 'deployer', claims: { sub: 'repo:acme/app:ref:refs/heads/main' } },
  { name: 'acme-subjects', role: 'acme-subjects', claims: { sub: 'repo:acme/lib:ref:refs/heads/x' } },
  { name: 'redos (a short match)', role: 'redos', claims: { workflow: 'aaab' } },
  { name: 'globby', role: 'globby', claims: { job: 'aaaaaaaab' } },
  { name: 'tenant', role: 'tenant', claims: { tid: 'acme-eu' } },
];

async function tokenFor(row: Row): Promise<string> {
  const idp = issuer(row.issuer ?? 'ci');
  if (row.rawMembers === undefined) return idp.mint(row.claims);
  const now = Math.floor(Date.now() / 1000);
  const payload = JSON.stringify({ iss: idp.url, sub: 'repo:acme/app:ref:refs/heads/main', aud: 'sts.example.com', iat: now, exp: now + 300, ...row.claims }).replace(/}$/, `,${row.rawMembers}}`);
  const key = idp.key({ alg: 'RS256' });
  return signRaw(JSON.stringify({ alg: 'RS256', kid: key.kid, typ: 'JWT' }), payload, key.privateKey);
}

const roleArn = (name: string) => `arn:aws:iam::${ACCOUNT_ID}:role/${name}`;

describe.each([
  ['AWS STS', 'aws'],
  ['OAuth token exchange', 'oauth'],
] as const)('hostile claims: %s', (_label, protocol) => {
  it.each(hostile.map((r) => [r.name, r] as const))('%s', async (_name, row) => {
    const token = await tokenFor(row);
    const expected = protocol === 'aws' ? ([403, 'AccessDenied'] as const) : oauthFor('AccessDenied');
    const started = performance.now();
    await expectRefused(g, protocol, expected, () =>
      protocol === 'aws' ? postSts(g.url, { WebIdentityToken: token, RoleArn: roleArn(row.role) }) : postOAuth(g.url, { subject_token: token, audience: row.role }),
    );
    if (row.withinMs !== undefined) expect(performance.now() - started).toBeLessThan(row.withinMs);
  });
});

describe('controls: every rule grants its real claims', () => {
  it.each(controls.map((r) => [r.name, r] as const))('%s', async (_name, row) => {
    const res = await postSts(g.url, { WebIdentityToken: await tokenFor(row), RoleArn: roleArn(row.role), RoleSessionName: `ctl-${row.role}` });
    expect(res.status, await res.clone().text()).toBe(200);
  });
});
