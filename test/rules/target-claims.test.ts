/**
 * The contract table of issue 12: one row per limit a cloud documents for a target kind, each with a
 * configuration or identity that satisfies it and one that breaks it, at config time (check-config, with
 * the path of the setting) and at mint time (the rendered values, with the target and the limit).
 */
import { decodeJwt, decodeProtectedHeader, jwtVerify, createLocalJWKSet } from 'jose';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { ConfigError, parseConfig } from '../../src/config/load.js';
import { generateSigningKeys } from '../../src/credentials/signing-keys.js';
import { TargetTokens } from '../../src/credentials/target-tokens.js';
import { RoleCatalog } from '../../src/domain/role-catalog.js';
import type { Identity } from '../../src/domain/types.js';
import { GatewayError } from '../../src/errors/gateway-error.js';
import { parseTemplate, renderTemplate, TargetProblem } from '../../src/rules/target-claims.js';
import { ACCOUNT_ID } from '../support/common.js';

type Tree = Record<string, unknown>;

function config(targets: Tree[], roleTargets = targets.map((t) => t.name)) {
  return {
    public_url: 'https://sts.example.com',
    account_id: ACCOUNT_ID,
    issuers: [{ id: 'gha', issuer: 'https://token.actions.githubusercontent.com', audiences: ['sts.example.com'] }],
    targets,
    roles: [{ name: 'deployer', audiences: ['api.example.com'], targets: roleTargets }],
    rules: [{ name: 'r0', match: { source: 'gha', claim: 'repository', equals: 'acme/app' }, roles: ['deployer'] }],
  };
}

function load(tree: Tree) {
  const loaded = parseConfig(stringify(tree), {}, process.cwd());
  return { ...loaded, targets: loaded.targets ?? [] };
}

function problemsOf(tree: Tree): string[] {
  try {
    load(tree);
  } catch (err) {
    if (err instanceof ConfigError) return [...err.problems];
    throw err;
  }
  return [];
}

const identity: Identity = {
  source: 'gha',
  subject: 'repo:acme/app:ref:refs/heads/main',
  claims: { repository: 'acme/app', repository_id: '123456', ref: 'refs/heads/main', actor: 'octocat', teams: ['acme/ops', 'acme/dev'], org: 'acme', long: 'x'.repeat(300), bad: 'a;b', empty: '', list: ['a'], nested: { 'a.b': 'dotted' } },
};

async function mintWith(target: Tree, who: Identity = identity) {
  const loaded = load(config([target]));
  const spec = loaded.targets[0]!;
  const keys = await generateSigningKeys(['RS256', 'ES256', 'EdDSA']);
  const tokens = new TargetTokens({ keys: { set: keys }, issuer: loaded.publicUrl, targets: loaded.targets });
  const role = new RoleCatalog(ACCOUNT_ID, loaded.roles).byName('deployer')!;
  const minted = tokens.mint(spec, who, role);
  const { payload, protectedHeader } = await jwtVerify(minted.token, createLocalJWKSet(keys.jwks()), { issuer: 'https://sts.example.com', audience: spec.audience });
  return { spec, minted, payload, header: protectedHeader };
}

async function mintProblem(target: Tree, who: Identity = identity): Promise<string> {
  try {
    await mintWith(target, who);
  } catch (err) {
    if (err instanceof GatewayError) return `${err.code}: ${err.message}`;
    throw err;
  }
  throw new Error('expected the mint to be refused');
}

const aws = (extra: Tree = {}) => ({ name: 'aws-prod', kind: 'aws', subject: 'repo:{claims.repository_id}:ref:{claims.ref}', ...extra });
const tags = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, 'v']));

describe('config time: each limit with a setting that keeps it and one that breaks it', () => {
  // [limit, a target within it, a target breaking it, the problem the breaking one gets]
  const rows: [string, Tree, Tree, string][] = [
    ['aws: at most 50 principal tags', aws({ aws: { principal_tags: tags(50) } }), aws({ aws: { principal_tags: tags(51) } }), 'targets[0].aws.principal_tags: 51 principal tags, AWS allows at most 50'],
    ['aws: tag key at most 128 characters', aws({ aws: { principal_tags: { ['k'.repeat(128)]: 'v' } } }), aws({ aws: { principal_tags: { ['k'.repeat(129)]: 'v' } } }), 'is 129 characters, AWS allows 1..128'],
    ['aws: tag key in AWS\'s character set', aws({ aws: { principal_tags: { 'team:name/x=y+z-@_.': 'v', 'équipe 1': 'v' } } }), aws({ aws: { principal_tags: { 'repo;name': 'v' } } }), 'has a character AWS refuses'],
    ['aws: tag key not aws:', aws({ aws: { principal_tags: { awsx: 'v' } } }), aws({ aws: { principal_tags: { 'AWS:x': 'v' } } }), 'starts with aws:, which AWS reserves'],
    ['aws: tag keys distinct ignoring case', aws({ aws: { principal_tags: { Repo: 'v', ref: 'v' } } }), aws({ aws: { principal_tags: { Repo: 'v', repo: 'v' } } }), 'AWS compares tag keys ignoring case'],
    ['aws: a literal tag value at most 256 characters', aws({ aws: { principal_tags: { env: 'p'.repeat(256) } } }), aws({ aws: { principal_tags: { env: 'p'.repeat(257) } } }), 'targets[0].aws.principal_tags.env: tag env is 257 characters, AWS allows at most 256'],
    ['aws: transitive keys are principal tag keys', aws({ aws: { principal_tags: { repo: '{claims.repository}' }, transitive_tag_keys: ['repo'] } }), aws({ aws: { principal_tags: { repo: '{claims.repository}' }, transitive_tag_keys: ['ref'] } }), 'transitive tag key "ref" is not one of the principal tags'],
    ['aws: a literal source_identity is 2..64 of [\\w+=,.@-]', aws({ aws: { source_identity: 'ci-bot' } }), aws({ aws: { source_identity: 'ci bot' } }), 'targets[0].aws.source_identity: source_identity "ci bot" is not 2..64 characters'],
    ['aws: RS256 or ES256', aws({ algorithm: 'ES256' }), aws({ algorithm: 'EdDSA' }), 'targets[0].algorithm: found EdDSA, expected one of RS256, ES256'],
    ['aws: lifetime at most 12 hours', aws({ lifetime_seconds: 43_200 }), aws({ lifetime_seconds: 43_201 }), 'targets[0].lifetime_seconds: found 43201, expected 60..43200 for a aws target'],
    ['all: lifetime at least 60 s', aws({ lifetime_seconds: 60 }), aws({ lifetime_seconds: 59 }), 'expected 60..43200'],
    ['aws: a literal sub at most 255 characters', aws({ subject: 's'.repeat(255) }), aws({ subject: 's'.repeat(256) }), 'sub is 256 characters, stsgate allows at most 255'],
    ['gcp: lifetime under 48 hours', { name: 'g', kind: 'gcp', audience: 'https://iam.googleapis.com/x', lifetime_seconds: 172_799 }, { name: 'g', kind: 'gcp', audience: 'https://iam.googleapis.com/x', lifetime_seconds: 172_800 }, 'GCP refuses tokens that live 48 hours or more'],
    ['gcp: a literal sub at most 127 bytes', { name: 'g', kind: 'gcp', audience: 'a', subject: 'é'.repeat(63) }, { name: 'g', kind: 'gcp', audience: 'a', subject: 'é'.repeat(64) }, 'sub is 128 bytes, GCP google.subject allows at most 127'],
    ['gcp: an audience or a provider', { name: 'g', kind: 'gcp', gcp: { provider: 'projects/123/locations/global/workloadIdentityPools/pool-1/providers/prov-1' } }, { name: 'g', kind: 'gcp' }, 'targets[0].audience: missing, expected the audience the gcp side checks (or gcp.provider'],
    ['gcp: the provider is a resource name', { name: 'g', kind: 'gcp', gcp: { provider: 'projects/123/locations/global/workloadIdentityPools/pool-1/providers/prov-1' } }, { name: 'g', kind: 'gcp', gcp: { provider: 'pool-1/prov-1' } }, 'expected projects/<number>/locations/global/workloadIdentityPools/<pool>/providers/<provider>'],
    ['azure: audience api://AzureADTokenExchange only', { name: 'az', kind: 'azure', audience: 'api://AzureADTokenExchange' }, { name: 'az', kind: 'azure', audience: 'api://other' }, 'expected api://AzureADTokenExchange (the only audience azure accepts)'],
    ['azure: RS256 only', { name: 'az', kind: 'azure', algorithm: 'RS256' }, { name: 'az', kind: 'azure', algorithm: 'ES256' }, 'targets[0].algorithm: found ES256, expected one of RS256'],
    ['azure: a literal sub at most 600 characters', { name: 'az', kind: 'azure', subject: 's'.repeat(600) }, { name: 'az', kind: 'azure', subject: 's'.repeat(601) }, 'sub is 601 characters, Azure federated credentials allows at most 600'],
    ['kubernetes: an audience', { name: 'k', kind: 'kubernetes', audience: 'kubernetes' }, { name: 'k', kind: 'kubernetes' }, 'targets[0].audience: missing'],
    ['kubernetes: RS256 or ES256', { name: 'k', kind: 'kubernetes', audience: 'k8s', algorithm: 'RS256' }, { name: 'k', kind: 'kubernetes', audience: 'k8s', algorithm: 'EdDSA' }, 'expected one of RS256, ES256'],
    ['vault: an audience', { name: 'v', kind: 'vault', audience: 'vault' }, { name: 'v', kind: 'vault' }, 'targets[0].audience: missing'],
    ['jwt: extra claims never reserved names', { name: 'j', kind: 'jwt', audience: 'x', claims: { repo: '{claims.repository}' } }, { name: 'j', kind: 'jwt', audience: 'x', claims: { sub: 'x' } }, 'targets[0].claims.sub: found the claim name "sub", which stsgate sets itself'],
    ['a section only on its kind', { name: 'j', kind: 'jwt', audience: 'x' }, { name: 'j', kind: 'jwt', audience: 'x', aws: {} }, 'targets[0].aws: found a aws section on a jwt target'],
    ['templates well formed', aws({ subject: 'a{{b}}c:{claims.nested.a\\.b}' }), aws({ subject: 'a{claims.x' }), 'an unclosed "{" at offset 1'],
    ['placeholders are subject, source, role or claims.*', aws({ subject: '{source}/{subject}/{role}' }), aws({ subject: '{user}' }), '{user}: expected subject, source, role or claims.<claim path>'],
    ['names are lowercase URL-safe', aws({ name: 'aws_prod-1' }), aws({ name: 'AWS Prod' }), 'targets[0].name: found "AWS Prod", expected 1-64 lowercase letters'],
  ];

  it.each(rows)('%s', (_limit, good, bad, problem) => {
    expect(problemsOf(config([good]))).toEqual([]);
    const problems = problemsOf(config([bad]));
    expect(problems.some((p) => p.includes(problem)), problems.join('\n')).toBe(true);
  });

  it('cross-references: a role names an unknown target; a target named like a role; a target audience a role has; stsgate trusting itself', () => {
    expect(problemsOf(config([aws()], ['aws-prod', 'nope']))).toEqual(['roles[0].targets[1]: unknown target "nope"; known targets: aws-prod']);
    expect(problemsOf(config([aws({ name: 'deployer' })], ['deployer']))).toEqual(['targets[0].name: found "deployer", also a role\'s name, expected a name no role has (an RFC 8693 audience names a role or a target)']);
    expect(problemsOf(config([{ name: 'v', kind: 'vault', audience: 'api.example.com' }]))).toEqual([
      'targets[0].audience: found "api.example.com", also an audience of stsgate\'s access tokens (roles[0].audiences[0]), expected an audience only target tokens carry',
    ]);
    // The kind's default audience counts too: an access token for sts.amazonaws.com would open AWS.
    const awsAudienceRole = { ...config([aws()]), roles: [{ name: 'deployer', audiences: ['sts.amazonaws.com'], targets: ['aws-prod'] }] };
    expect(problemsOf(awsAudienceRole)).toEqual([
      'targets[0].kind: found the default audience "sts.amazonaws.com", also an audience of stsgate\'s access tokens (roles[0].audiences[0]), expected an audience only target tokens carry',
    ]);
    const self = { ...config([aws()]), issuers: [{ id: 'me', issuer: 'https://sts.example.com', audiences: ['x'] }], rules: [] };
    expect(problemsOf(self)).toEqual(["issuers[0].issuer: found stsgate's own public_url, expected another issuer (stsgate would accept its own target tokens as subject tokens)"]);
  });

  it('defaults per kind: audience, lifetime, algorithm, subject', () => {
    const loaded = load(config([aws(), { name: 'az', kind: 'azure' }, { name: 'g', kind: 'gcp', gcp: { provider: 'projects/1/locations/global/workloadIdentityPools/pool-1/providers/prov-1' } }, { name: 'v', kind: 'vault', audience: 'vault', algorithm: 'EdDSA' }]));
    expect(loaded.targets.map((t) => [t.name, t.audience, t.lifetimeSeconds, t.algorithm, t.subject.text])).toEqual([
      ['aws-prod', 'sts.amazonaws.com', 900, 'ES256', 'repo:{claims.repository_id}:ref:{claims.ref}'],
      ['az', 'api://AzureADTokenExchange', 900, 'RS256', '{source}:{subject}'],
      ['g', 'https://iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/pool-1/providers/prov-1', 3600, 'ES256', '{source}:{subject}'],
      ['v', 'vault', 900, 'EdDSA', '{source}:{subject}'],
    ]);
  });
});

describe('mint time: the rendered values meet each limit or nothing is signed', () => {
  it('aws: the tags claim in AWS\'s shape (each value a list of one string), transitive keys, source identity, typ JWT, kid', async () => {
    const { payload, header } = await mintWith(
      aws({ aws: { principal_tags: { repo: '{claims.repository}', actor: '{claims.actor}' }, transitive_tag_keys: ['repo'], source_identity: '{claims.actor}' } }),
    );
    expect(header).toMatchObject({ typ: 'JWT', alg: 'ES256' });
    expect(typeof header.kid).toBe('string');
    expect(payload).toMatchObject({
      sub: 'repo:123456:ref:refs/heads/main',
      aud: 'sts.amazonaws.com',
      'https://aws.amazon.com/tags': { principal_tags: { repo: ['acme/app'], actor: ['octocat'] }, transitive_tag_keys: ['repo'] },
      'https://aws.amazon.com/source_identity': 'octocat',
    });
    expect(Object.keys(payload).sort()).toEqual(['aud', 'exp', 'https://aws.amazon.com/source_identity', 'https://aws.amazon.com/tags', 'iat', 'iss', 'jti', 'nbf', 'sub']);
    expect(payload.exp! - payload.iat!).toBe(900);
  });

  // [limit, a target, an identity within it, an identity breaking it, the refusal]
  const rows: [string, Tree, Identity, Identity, string][] = [
    ['aws: a rendered tag value at most 256 characters', aws({ aws: { principal_tags: { v: '{claims.value}' } } }), withClaim('value', 'x'.repeat(256)), withClaim('value', 'x'.repeat(257)), 'ValidationError: target aws-prod: tag v is 257 characters, AWS allows at most 256'],
    ['aws: a rendered tag value in AWS\'s character set', aws({ aws: { principal_tags: { v: '{claims.value}' } } }), withClaim('value', 'acme/app:main=ok+1@x'), withClaim('value', 'acme;rm'), 'ValidationError: target aws-prod: tag v has a character AWS refuses'],
    ['aws: a rendered source identity within AWS\'s set', aws({ aws: { source_identity: '{claims.value}' } }), withClaim('value', 'octo.cat@x'), withClaim('value', 'octo cat'), 'ValidationError: target aws-prod: source_identity "octo cat" is not 2..64 characters'],
    ['aws: the token at most 20,000 characters', aws({ claims: { a: '{claims.value}' } }), withClaim('value', 'x'.repeat(10_000)), withClaim('value', 'x'.repeat(16_000)), 'characters, AWS takes at most 20000'],
    ['sub at most 255 characters (aws)', aws({ subject: '{claims.value}' }), withClaim('value', 's'.repeat(255)), withClaim('value', 's'.repeat(256)), 'ValidationError: target aws-prod: sub is 256 characters, stsgate allows at most 255'],
    ['gcp: sub at most 127 bytes', { name: 'g', kind: 'gcp', audience: 'a', subject: '{claims.value}' }, withClaim('value', 'é'.repeat(63)), withClaim('value', 'é'.repeat(64)), 'ValidationError: target g: sub is 128 bytes, GCP google.subject allows at most 127'],
    ['azure: sub at most 600 characters', { name: 'az', kind: 'azure', subject: '{claims.value}' }, withClaim('value', 's'.repeat(600)), withClaim('value', 's'.repeat(601)), 'ValidationError: target az: sub is 601 characters, Azure federated credentials allows at most 600'],
    ['kubernetes: a username 1..255 characters', { name: 'k', kind: 'kubernetes', audience: 'k8s', kubernetes: { username: '{claims.value}' } }, withClaim('value', 'u'.repeat(255)), withClaim('value', 'u'.repeat(256)), 'ValidationError: target k: username is 256 characters, expected 1..255'],
    ['kubernetes: groups_from a string or list of strings', { name: 'k', kind: 'kubernetes', audience: 'k8s', kubernetes: { groups_from: 'claims.value' } }, withClaim('value', ['a', 'b']), withClaim('value', [1, 2]), 'ValidationError: target k: kubernetes.groups_from: claims.value is not a string or a list of strings'],
    ['kubernetes: at most 100 groups', { name: 'k', kind: 'kubernetes', audience: 'k8s', kubernetes: { groups_from: 'claims.value' } }, withClaim('value', Array.from({ length: 100 }, (_, i) => `g${i}`)), withClaim('value', Array.from({ length: 101 }, (_, i) => `g${i}`)), 'ValidationError: target k: 101 groups, at most 100'],
    ['a placeholder present for this identity', aws({ subject: '{claims.value}' }), withClaim('value', 'x'), withClaim('other', 'x'), 'ValidationError: target aws-prod: subject: {claims.value} is missing for this identity'],
    ['a placeholder never empty', aws({ subject: 'repo:{claims.value}' }), withClaim('value', 'x'), withClaim('value', ''), 'ValidationError: target aws-prod: subject: {claims.value} is empty for this identity'],
    ['a placeholder a scalar', { name: 'j', kind: 'jwt', audience: 'x', claims: { c: '{claims.value}' } }, withClaim('value', 42), withClaim('value', { a: 1 }), 'ValidationError: target j: claims.c: {claims.value} is not a string, number or boolean for this identity'],
  ];

  it.each(rows)('%s', async (_limit, target, good, bad, refusal) => {
    await expect(mintWith(target, good)).resolves.toBeDefined();
    expect(await mintProblem(target, bad)).toContain(refusal);
  });

  it('kubernetes: username and groups (templates and a claim, deduplicated); azure: RS256 and its audience', async () => {
    const kube = await mintWith({ name: 'k', kind: 'kubernetes', audience: 'k8s', kubernetes: { username: 'gh:{claims.actor}', groups: ['{claims.org}', 'acme/ops'], groups_from: 'claims.teams' } });
    expect(kube.payload).toMatchObject({ username: 'gh:octocat', groups: ['acme', 'acme/ops', 'acme/dev'], aud: 'k8s' });
    expect(kube.header.alg).toBe('ES256');
    const azure = await mintWith({ name: 'az', kind: 'azure', subject: 'repo:{claims.repository}' });
    expect(azure.header.alg).toBe('RS256');
    expect(azure.payload).toMatchObject({ aud: 'api://AzureADTokenExchange', sub: 'repo:acme/app' });
  });

  it('lifetime: the target\'s, never past the role\'s maximum nor the session it came from', async () => {
    const loaded = load(config([aws({ lifetime_seconds: 7200 })]));
    const keys = await generateSigningKeys(['ES256']);
    const tokens = new TargetTokens({ keys: { set: keys }, issuer: loaded.publicUrl, targets: loaded.targets, now: () => 1_700_000_000_000 });
    const role = new RoleCatalog(ACCOUNT_ID, loaded.roles).byName('deployer')!;
    expect(role.maxSessionSeconds).toBe(3600);
    const byRole = tokens.mint(loaded.targets[0]!, identity, role);
    expect(decodeJwt(byRole.token).exp! - 1_700_000_000).toBe(3600);
    const bySession = tokens.mint(loaded.targets[0]!, identity, role, 1_700_000_000 + 120);
    expect(decodeJwt(bySession.token).exp).toBe(1_700_000_120);
    expect(() => tokens.mint(loaded.targets[0]!, identity, role, 1_700_000_000)).toThrow(GatewayError);
    expect(decodeProtectedHeader(bySession.token).typ).toBe('JWT');
  });
});

describe('templates', () => {
  const render = (text: string, who: Identity = identity) => renderTemplate(parseTemplate(text) as never, { identity: who, role: 'deployer' }, 'where');
  it('renders subject, source, role, claims (escaped dots, numbers, booleans) and literal braces', () => {
    expect(render('{source}:{subject}:{role}')).toBe('gha:repo:acme/app:ref:refs/heads/main:deployer');
    expect(render('{{x}}-{claims.nested.a\\.b}-{claims.repository_id}')).toBe('{x}-dotted-123456');
    expect(render('{claims.flag}', withClaim('flag', true))).toBe('true');
  });
  it('refuses a list, null, and the prototype chain', () => {
    expect(() => render('{claims.list}')).toThrow(TargetProblem);
    expect(() => render('{claims.value}', withClaim('value', null))).toThrow('is null for this identity');
    expect(() => render('{claims.constructor}')).toThrow('is missing');
  });
  it('parse errors name the fault', () => {
    expect(parseTemplate('a}')).toEqual({ error: 'a lone "}" at offset 1 (write "}}" for a literal brace)' });
    expect(parseTemplate('{claims.}')).toEqual({ error: '{claims.}: an empty claim path' });
    expect((parseTemplate('plain') as unknown as { parts: unknown[] }).parts).toEqual([{ literal: 'plain' }]);
  });
});

function withClaim(name: string, value: unknown): Identity {
  return { ...identity, claims: { ...identity.claims, [name]: value } };
}

