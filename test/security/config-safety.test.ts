/**
 * Rule sets that are valid but dangerous are refused at load time (`check-config`, `serve`) with their
 * path and the reason: a public multi-tenant issuer (GitHub Actions, Google, GitLab.com) or a public
 * login provider trusted without pinning whose identities are meant, patterns that match every value,
 * emails trusted without `email_verified: true`. Controls: the pinned forms people should write pass,
 * and so does the example configuration.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { checkConfigCommand } from '../../src/commands/check-config.js';
import { ConfigError, loadConfig, parseConfig } from '../../src/config/load.js';
import { ACCOUNT_ID } from '../support/common.js';

type Tree = Record<string, unknown>;

const GITHUB = 'https://token.actions.githubusercontent.com';
const GOOGLE = 'https://accounts.google.com';
const GITLAB = 'https://gitlab.com';
const dir = mkdtempSync(join(tmpdir(), 'stsgate-safety-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A file with one issuer `src` at `issuerUrl`, roles deployer and reader, and the given rules. */
function file(issuerUrl: string, ...matches: Tree[]): Tree {
  return {
    public_url: 'https://sts.example.com',
    account_id: ACCOUNT_ID,
    issuers: [{ id: 'src', issuer: issuerUrl, audiences: ['sts.example.com'] }],
    roles: [{ name: 'deployer' }, { name: 'reader' }],
    rules: matches.map((match, i) => ({ name: `r${i}`, match, roles: ['deployer'] })),
  };
}

function problemsOf(tree: Tree): string[] {
  try {
    parseConfig(stringify(tree), {}, dir);
  } catch (err) {
    if (err instanceof ConfigError) return [...err.problems];
    throw err;
  }
  return [];
}

const GH_TRUST = `trusts the public issuer src (GitHub Actions, ${GITHUB})`;
const GH_UNPINNED = `${GH_TRUST} without pinning repository, repository_id, repository_owner, repository_owner_id, sub: anyone there can mint a token that matches it, expected one of those claims compared exactly`;
const GOOGLE_UNPINNED = `trusts the public issuer src (Google, ${GOOGLE}) without pinning sub, email, hd, azp (or email ending in @domain): anyone there can mint a token that matches it, expected one of those claims compared exactly`;
const GITLAB_UNPINNED = `trusts the public issuer src (GitLab.com, ${GITLAB}) without pinning project_id, project_path, namespace_id, namespace_path, sub: anyone there can mint a token that matches it, expected one of those claims compared exactly`;
const UNVERIFIED = 'trusts the email claim without { claim: email_verified, equals: true } beside it: an unverified address proves nothing about who holds it, expected both';
const everything = (op: string, value: string, claim: string) =>
  `${op} ${JSON.stringify(value)} on ${claim} matches every value, so it pins nothing, expected a pattern with a literal part (or exists: true if presence is all that is meant)`;

const refused: [string, Tree, string[]][] = [
  ['a GitHub Actions rule with no conditions', file(GITHUB, { source: 'src' }), [`rules[0]: rule "r0" ${GH_TRUST} with no conditions: every identity it vouches for would get role deployer, expected conditions that pin whose identities are meant`]],
  ['a GitHub Actions rule on the branch only', file(GITHUB, { source: 'src', claim: 'ref', equals: 'refs/heads/main' }), [`rules[0]: rule "r0" ${GH_UNPINNED}`]],
  ['a GitHub Actions rule on the environment only', file(GITHUB, { source: 'src', all: [{ claim: 'environment', equals: 'production' }, { claim: 'ref_type', equals: 'branch' }] }), [`rules[0]: rule "r0" ${GH_UNPINNED}`]],
  ['repository starts_with an owner without the slash (acme matches acme-evil/x)', file(GITHUB, { source: 'src', claim: 'repository', starts_with: 'acme' }), [`rules[0]: rule "r0" ${GH_UNPINNED}`]],
  ['repository glob */*', file(GITHUB, { source: 'src', claim: 'repository', glob: '*/*' }), [`rules[0]: rule "r0" ${GH_UNPINNED}`]],
  ['repository glob a*/x (wildcard inside the owner)', file(GITHUB, { source: 'src', claim: 'repository', glob: 'a*/x' }), [`rules[0]: rule "r0" ${GH_UNPINNED}`]],
  ['sub glob repo:*', file(GITHUB, { source: 'src', claim: 'sub', glob: 'repo:*' }), [`rules[0]: rule "r0" ${GH_UNPINNED}`]],
  ['sub starts_with repo:acme (no slash)', file(GITHUB, { source: 'src', claim: 'sub', starts_with: 'repo:acme' }), [`rules[0]: rule "r0" ${GH_UNPINNED}`]],
  ['repository glob that is only *', file(GITHUB, { source: 'src', claim: 'repository', glob: '*' }), [`rules[0]: rule "r0" ${GH_UNPINNED}`, `rules[0]: rule "r0": ${everything('glob', '*', 'repository')}`]],
  ['sub matches .*', file(GITHUB, { source: 'src', claim: 'sub', matches: '.*' }), [`rules[0]: rule "r0" ${GH_UNPINNED}`, `rules[0]: rule "r0": ${everything('matches', '.*', 'sub')}`]],
  ['a pin in one branch of any, not the other', file(GITHUB, { source: 'src', any: [{ claim: 'repository', equals: 'acme/app' }, { claim: 'ref', equals: 'refs/heads/main' }] }), [`rules[0]: rule "r0" ${GH_UNPINNED}`]],
  ['the repository only under not', file(GITHUB, { source: 'src', not: { claim: 'repository', equals: 'evil/app' } }), [`rules[0]: rule "r0" ${GH_UNPINNED}`]],
  ['repository not_equals', file(GITHUB, { source: 'src', claim: 'repository', not_equals: 'evil/app' }), [`rules[0]: rule "r0" ${GH_UNPINNED}`]],
  ['repository exists', file(GITHUB, { source: 'src', claim: 'repository', exists: true }), [`rules[0]: rule "r0" ${GH_UNPINNED}`]],
  [
    'a rule without a source while GitHub Actions is trusted',
    file(GITHUB, { claim: 'environment', equals: 'production' }),
    [`rules[0]: rule "r0" has no source, so it also applies to the public issuer src (GitHub Actions, ${GITHUB}) without pinning repository, repository_id, repository_owner, repository_owner_id, sub: anyone there can mint a token that matches it, expected one of those claims compared exactly`],
  ],
  ['a Google rule with no conditions', file(GOOGLE, { source: 'src' }), [`rules[0]: rule "r0" trusts the public issuer src (Google, ${GOOGLE}) with no conditions: every identity it vouches for would get role deployer, expected conditions that pin whose identities are meant`]],
  ['a Google rule on email_verified only', file(GOOGLE, { source: 'src', claim: 'email_verified', equals: true }), [`rules[0]: rule "r0" ${GOOGLE_UNPINNED}`]],
  ['a Google rule on a domain without email_verified', file(GOOGLE, { source: 'src', claim: 'email', ends_with: '@acme.com' }), [`rules[0]: rule "r0" ${UNVERIFIED}`]],
  ['a Google rule with email_verified the string "true"', file(GOOGLE, { source: 'src', all: [{ claim: 'email', equals: 'ann@acme.com' }, { claim: 'email_verified', equals: 'true' }] }), [`rules[0]: rule "r0" ${UNVERIFIED}`]],
  ['an email rule on a private issuer without email_verified', file('https://idp.example.com', { source: 'src', claim: 'email', in: ['ann@acme.com', 'bob@acme.com'] }), [`rules[0]: rule "r0" ${UNVERIFIED}`]],
  [
    'email in an any branch that does not require email_verified',
    file('https://idp.example.com', { source: 'src', any: [{ all: [{ claim: 'email', equals: 'a@acme.com' }, { claim: 'email_verified', equals: true }] }, { claim: 'email', glob: '*@acme.com' }] }),
    [`rules[0]: rule "r0" ${UNVERIFIED}`],
  ],
  ['a GitLab.com rule with a group prefix lacking the slash', file(GITLAB, { source: 'src', claim: 'project_path', starts_with: 'acme' }), [`rules[0]: rule "r0" ${GITLAB_UNPINNED}`]],
  ['a GitLab.com rule on the ref only', file(GITLAB, { source: 'src', claim: 'ref', equals: 'main' }), [`rules[0]: rule "r0" ${GITLAB_UNPINNED}`]],
  ['glob ** on any claim of a private issuer', file('https://idp.example.com', { source: 'src', claim: 'team', glob: '**' }), [`rules[0]: rule "r0": ${everything('glob', '**', 'team')}`]],
  ['matches (?s).+ on a private issuer', file('https://idp.example.com', { source: 'src', claim: 'team', matches: '(?s).+' }), [`rules[0]: rule "r0": ${everything('matches', '(?s).+', 'team')}`]],
  [
    'a public login provider rule with no conditions',
    { ...file('https://idp.example.com', { source: 'src', claim: 'team', equals: 'x' }), providers: [{ id: 'gh', use: 'github', client_id: 'c', client_secret: 's' }], rules: [{ name: 'anyone', match: { source: 'gh' }, roles: ['reader'] }] },
    ['rules[0]: rule "anyone" trusts the login provider gh (github: anyone with an account can sign in) with no conditions: every identity it vouches for would get role reader, expected conditions that pin whose identities are meant'],
  ],
  ['an issuer with an empty audience list', { ...file('https://idp.example.com', { source: 'src', claim: 'team', equals: 'x' }), issuers: [{ id: 'src', issuer: 'https://idp.example.com', audiences: [] }] }, ['issuers[0].audiences: found an empty list, expected at least 1 item']],
];

const accepted: [string, Tree][] = [
  ['repository and ref pinned exactly', file(GITHUB, { source: 'src', all: [{ claim: 'repository', equals: 'acme/app' }, { claim: 'ref', equals: 'refs/heads/main' }] })],
  ['repository_id pinned', file(GITHUB, { source: 'src', claim: 'repository_id', equals: 123456 })],
  ['repository in a list', file(GITHUB, { source: 'src', claim: 'repository', in: ['acme/app', 'acme/lib'] })],
  ['the owner pinned, repositories by glob', file(GITHUB, { source: 'src', all: [{ claim: 'repository_owner', equals: 'acme' }, { claim: 'repository', glob: 'acme/*' }] })],
  ['repository glob with a literal owner', file(GITHUB, { source: 'src', claim: 'repository', glob: 'acme/*' })],
  ['sub starts_with repo:<owner>/', file(GITHUB, { source: 'src', claim: 'sub', starts_with: 'repo:acme/' })],
  ['repository case-insensitively', file(GITHUB, { source: 'src', claim: 'repository', equals: 'Acme/App', ignore_case: true })],
  ['a pin in every branch of any', file(GITHUB, { source: 'src', any: [{ claim: 'repository', equals: 'acme/app' }, { claim: 'repository_id', equals: 7 }] })],
  ['a Google Workspace domain with email_verified', file(GOOGLE, { source: 'src', all: [{ claim: 'email', ends_with: '@acme.com' }, { claim: 'email_verified', equals: true }] })],
  ['a Google hosted domain', file(GOOGLE, { source: 'src', claim: 'hd', equals: 'acme.com' })],
  ['a GitLab.com group pinned exactly, projects by prefix', file(GITLAB, { source: 'src', all: [{ claim: 'namespace_path', equals: 'acme' }, { claim: 'project_path', starts_with: 'acme' }] })],
  ['a GitLab.com project prefix ending the group with a slash', file(GITLAB, { source: 'src', claim: 'project_path', starts_with: 'acme/' })],
  ['a private issuer with no conditions (single tenant)', file('https://kubernetes.default.svc', { source: 'src' })],
  ['a private issuer with a literal-bearing pattern', file('https://idp.example.com', { source: 'src', claim: 'ref', matches: 'refs/tags/v[0-9]+' })],
  ['email only under not', file('https://idp.example.com', { source: 'src', all: [{ claim: 'team', equals: 'x' }, { not: { claim: 'email', ends_with: '@evil.io' } }] })],
];

describe('dangerous rule sets are refused with their path and reason', () => {
  it.each(refused)('%s', (_name, tree, expected) => {
    expect(problemsOf(tree)).toEqual(expected);
  });
});

describe('the pinned forms are accepted', () => {
  it.each(accepted)('%s', (_name, tree) => {
    expect(problemsOf(tree)).toEqual([]);
  });

  it('the example configuration loads', async () => {
    await expect(loadConfig(join(import.meta.dirname, '..', '..', 'examples', 'gateway.yaml'))).resolves.toBeDefined();
  });
});

describe('check-config (and serve, which loads the same way)', () => {
  it('exits 1 and prints each problem', async () => {
    const path = join(dir, 'unsafe.yaml');
    writeFileSync(path, stringify(file(GITHUB, { source: 'src', claim: 'ref', equals: 'refs/heads/main' })));
    const lines: string[] = [];
    expect(await checkConfigCommand(path, (line) => lines.push(line))).toBe(1);
    expect(lines).toEqual([`${path}: 1 problem`, `  rules[0]: rule "r0" ${GH_UNPINNED}`]);
  });
});
