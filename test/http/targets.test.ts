/**
 * Target tokens end to end (issue 12): RFC 8693 with a workload's JWT or an stsgate access token as the
 * subject, and `/v1/targets` with a browser session, against a running gateway on the real Redis; each
 * token verified by jose against the gateway's published JWKS; the refusals, with nothing stored.
 */
import { createRemoteJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify } from 'jose';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GatewayConfig, RoleConfig } from '../../src/config/types.js';
import { parseConfig } from '../../src/config/load.js';
import { TOKEN_EXCHANGE_GRANT, TOKEN_TYPE } from '../../src/http/oauth.js';
import { loginAs } from '../support/browser-login.js';
import { TestBrowser } from '../support/browser.js';
import { postForm } from '../support/common.js';
import { issuerFor, REDIS_URL, redisStoreConfig, standardRoles, startTestGateway, type TestGateway } from '../support/gateway.js';
import { startLoginEnvironment, type LoginEnvironment } from '../support/login-environment.js';
import { TestIssuer } from '../support/test-issuer.js';

const MAIN = { repository: 'acme/app', repository_id: 4242, ref: 'refs/heads/main', actor: 'octocat' };

/** The targets of this file, from YAML as an operator writes them (the loader builds the runtime shape). */
function targetsConfig(): NonNullable<GatewayConfig['targets']> {
  const yaml = `
public_url: https://sts.example.com
account_id: "123456789012"
targets:
  - name: aws-prod
    kind: aws
    subject: "repo:{claims.repository_id}:ref:{claims.ref}"
    aws:
      principal_tags: { repo: "{claims.repository}", actor: "{claims.actor}" }
      transitive_tag_keys: [repo]
      source_identity: "{claims.actor}"
  - name: azure-app
    kind: azure
    subject: "repo:{claims.repository}:ref:{claims.ref}"
  - name: gcp-pool
    kind: gcp
    gcp: { provider: projects/123456/locations/global/workloadIdentityPools/ci-pool/providers/stsgate }
  - name: vault
    kind: vault
    audience: https://vault.example.com
    claims: { repository: "{claims.repository}" }
  - name: kube
    kind: kubernetes
    audience: kubernetes
    kubernetes: { username: "gh:{claims.login}", groups_from: claims.teams }
  - name: any-jwt
    kind: jwt
    audience: https://api.partner.example
  - name: unreachable
    kind: jwt
    audience: https://nobody.example
`;
  return parseConfig(yaml, {}, process.cwd()).targets ?? [];
}

function rolesWithTargets(): RoleConfig[] {
  return standardRoles().map((role) =>
    role.name === 'deployer' ? { ...role, targets: ['aws-prod', 'azure-app', 'gcp-pool', 'vault', 'any-jwt'] } : role.name === 'reader' ? { ...role, targets: ['kube'] } : role,
  );
}

describe('target tokens over RFC 8693', () => {
  let issuer: TestIssuer;
  let gateway: TestGateway;
  let redis: Redis;
  let prefix: string;

  beforeAll(async () => {
    issuer = await TestIssuer.start();
    const store = redisStoreConfig();
    prefix = (store as { prefix: string }).prefix;
    gateway = await startTestGateway({
      issuers: [issuerFor(issuer)],
      store,
      roles: rolesWithTargets(),
      keyAlgorithms: ['RS256', 'ES256'],
      config: { targets: targetsConfig() },
    });
    redis = new Redis(REDIS_URL);
  });
  afterAll(async () => {
    await gateway?.close();
    await issuer?.close();
    await redis?.quit();
  });

  async function exchange(form: Record<string, string>) {
    const res = await postForm(`${gateway.url}/oauth2/token`, { grant_type: TOKEN_EXCHANGE_GRANT, ...form });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  }
  const forTarget = async (audience: string, claims: Record<string, unknown> = MAIN, requested: string = TOKEN_TYPE.idToken) =>
    exchange({ subject_token: await issuer.mint(claims), subject_token_type: TOKEN_TYPE.jwt, requested_token_type: requested, audience });
  const jwks = () => createRemoteJWKSet(new URL(`${gateway.url}/.well-known/jwks.json`));
  const storedKeys = async () => (await redis.keys(`${prefix}*`)).filter((key) => !key.includes(':rate:') && !key.includes('ratelimit')).sort();

  it('a workload JWT becomes an aws target token: AWS claim shapes, typ JWT, verified by the JWKS, nothing stored', async () => {
    const before = await storedKeys();
    const { status, body } = await forTarget('aws-prod');
    expect(status).toBe(200);
    expect(body).toMatchObject({ issued_token_type: TOKEN_TYPE.idToken, token_type: 'N_A' });
    expect(body.expires_in).toBeGreaterThan(880);
    expect(Object.keys(body).sort()).toEqual(['access_token', 'expires_in', 'issued_token_type', 'token_type']);
    const { payload, protectedHeader } = await jwtVerify(body.access_token as string, jwks(), { issuer: gateway.config.publicUrl, audience: 'sts.amazonaws.com', typ: 'JWT' });
    expect(protectedHeader.alg).toBe('ES256');
    expect(payload).toMatchObject({
      sub: 'repo:4242:ref:refs/heads/main',
      'https://aws.amazon.com/tags': { principal_tags: { repo: ['acme/app'], actor: ['octocat'] }, transitive_tag_keys: ['repo'] },
      'https://aws.amazon.com/source_identity': 'octocat',
    });
    expect(payload.exp! - payload.iat!).toBe(900);
    // Nothing a cloud could not check is in it: no role, no session id.
    expect(payload.role).toBeUndefined();
    expect(payload.sid).toBeUndefined();
    expect(await storedKeys()).toEqual(before);
  });

  it('each kind: its audience, its algorithm (Azure RS256 from the same keys file), its claims', async () => {
    const expectations: [string, string, string, Record<string, unknown>][] = [
      ['azure-app', 'api://AzureADTokenExchange', 'RS256', { sub: 'repo:acme/app:ref:refs/heads/main' }],
      ['gcp-pool', 'https://iam.googleapis.com/projects/123456/locations/global/workloadIdentityPools/ci-pool/providers/stsgate', 'ES256', { sub: 'ci:repo:acme/app:ref:refs/heads/main' }],
      ['vault', 'https://vault.example.com', 'ES256', { repository: 'acme/app' }],
      ['any-jwt', 'https://api.partner.example', 'ES256', {}],
    ];
    for (const [target, audience, alg, claims] of expectations) {
      const { status, body } = await forTarget(target, MAIN, TOKEN_TYPE.jwt);
      expect(status, target).toBe(200);
      expect(body.issued_token_type).toBe(TOKEN_TYPE.jwt);
      const { payload, protectedHeader } = await jwtVerify(body.access_token as string, jwks(), { issuer: gateway.config.publicUrl, audience });
      expect(protectedHeader.alg, target).toBe(alg);
      expect(payload, target).toMatchObject(claims);
    }
    const gcp = decodeJwt((await forTarget('gcp-pool')).body.access_token as string);
    expect(gcp.exp! - gcp.iat!).toBe(3600);
  });

  it('from an stsgate access token: its role must list the target; it ends with the session', async () => {
    const session = await exchange({ subject_token: await issuer.mint(MAIN), subject_token_type: TOKEN_TYPE.jwt, audience: 'deployer', duration_seconds: '900' });
    expect(session.status).toBe(200);
    const accessToken = session.body.access_token as string;
    const { status, body } = await exchange({ subject_token: accessToken, subject_token_type: TOKEN_TYPE.accessToken, requested_token_type: TOKEN_TYPE.idToken, audience: 'aws-prod' });
    expect(status).toBe(200);
    const claims = decodeJwt(body.access_token as string);
    expect(claims.sub).toBe('repo:4242:ref:refs/heads/main');
    expect(claims.exp).toBeLessThanOrEqual(decodeJwt(accessToken).exp!);
    // reader (by chaining) does not list aws-prod.
    const reader = await exchange({ subject_token: accessToken, subject_token_type: TOKEN_TYPE.accessToken, audience: 'reader' });
    const refused = await exchange({ subject_token: reader.body.access_token as string, subject_token_type: TOKEN_TYPE.accessToken, requested_token_type: TOKEN_TYPE.idToken, audience: 'aws-prod' });
    expect(refused).toMatchObject({ status: 400, body: { error: 'invalid_target' } });
  });

  it('a target token is never an access token: introspection says inactive, the exchange refuses it, /sts refuses it', async () => {
    const target = (await forTarget('any-jwt')).body.access_token as string;
    const introspected = await postForm(`${gateway.url}/oauth2/introspect`, { token: target });
    expect(await introspected.json()).toEqual({ active: false });
    const asSubject = await exchange({ subject_token: target, subject_token_type: TOKEN_TYPE.accessToken, audience: 'deployer' });
    expect(asSubject.status).toBe(400);
    expect(asSubject.body.error).toBe('invalid_request');
    // Nor is it a web-identity token here: stsgate does not trust itself as an issuer.
    const asWebIdentity = await exchange({ subject_token: target, subject_token_type: TOKEN_TYPE.jwt, audience: 'deployer' });
    expect(asWebIdentity.status).toBe(400);
    expect(decodeProtectedHeader(target).typ).toBe('JWT');
  });

  it('an access token is never a target token: its audiences are the role\'s, which no target has', async () => {
    const session = await exchange({ subject_token: await issuer.mint(MAIN), subject_token_type: TOKEN_TYPE.jwt, audience: 'deployer' });
    await expect(jwtVerify(session.body.access_token as string, jwks(), { issuer: gateway.config.publicUrl, audience: 'sts.amazonaws.com' })).rejects.toThrow(/aud/);
  });

  it('refusals: not granted and unknown get the same invalid_target; limits name the target; one audit line each; nothing stored', async () => {
    const before = await storedKeys();
    const notGranted = await forTarget('unreachable');
    const unknown = await forTarget('no-such-target');
    const roleAsTarget = await forTarget('deployer');
    for (const refused of [notGranted, unknown, roleAsTarget]) expect(refused.status).toBe(400);
    expect(notGranted.body.error).toBe('invalid_target');
    expect(unknown.body.error).toBe('invalid_target');
    expect(roleAsTarget.body.error).toBe('invalid_target');
    expect(notGranted.body.error_description).toBe('Not authorized to get a token for target "unreachable".');
    expect(unknown.body.error_description).toBe('Not authorized to get a token for target "no-such-target".');
    // A workload whose claims break AWS's limits at request time.
    const badTag = await forTarget('aws-prod', { ...MAIN, actor: 'octo;cat' });
    expect(badTag).toMatchObject({ status: 400, body: { error: 'invalid_request' } });
    expect(badTag.body.error_description).toContain('target aws-prod: tag actor has a character AWS refuses');
    const longTag = await forTarget('aws-prod', { ...MAIN, actor: 'o'.repeat(300) });
    expect(longTag.body.error_description).toContain('target aws-prod: tag actor is 300 characters, AWS allows at most 256');
    const missing = await forTarget('aws-prod', { repository: 'acme/app', ref: 'refs/heads/main', actor: 'octocat' });
    expect(missing.body.error_description).toContain('target aws-prod: subject: {claims.repository_id} is missing for this identity');
    // Parameters of stsgate's own sessions do not apply.
    const withScope = await exchange({ subject_token: await issuer.mint(MAIN), subject_token_type: TOKEN_TYPE.jwt, requested_token_type: TOKEN_TYPE.idToken, audience: 'aws-prod', scope: 'x' });
    expect(withScope).toMatchObject({ status: 400, body: { error: 'invalid_request' } });
    const noAudience = await exchange({ subject_token: await issuer.mint(MAIN), subject_token_type: TOKEN_TYPE.jwt, requested_token_type: TOKEN_TYPE.idToken });
    expect(noAudience).toMatchObject({ status: 400, body: { error: 'invalid_target' } });
    expect(await storedKeys()).toEqual(before);

    const lines = gateway.logs().filter((line) => line.action === 'TargetToken' && line.event === 'denied');
    expect(lines.map((line) => [line.target, line.code])).toEqual(
      expect.arrayContaining([
        ['unreachable', 'AccessDenied'],
        ['no-such-target', 'AccessDenied'],
        ['aws-prod', 'ValidationError'],
      ]),
    );
    // No token in any log line.
    const token = await issuer.mint(MAIN);
    await forTarget('aws-prod');
    expect(gateway.logs().some((line) => JSON.stringify(line).includes(token.split('.')[2]!))).toBe(false);
  });

  it('metrics count target tokens by configured target (unknown names as unknown)', async () => {
    const text = await (await fetch(`${gateway.adminUrl}/metrics`)).text();
    expect(text).toMatch(/stsgate_target_tokens_total\{target="aws-prod",kind="aws",outcome="issued"\} [1-9]/);
    expect(text).toMatch(/stsgate_target_tokens_total\{target="unknown",kind="unknown",outcome="AccessDenied"\} [1-9]/);
    expect(text).not.toContain('no-such-target');
  });
});

describe('target tokens for browser and terminal sessions', () => {
  let env: LoginEnvironment;
  beforeAll(async () => {
    env = await startLoginEnvironment({ store: redisStoreConfig(), keyAlgorithms: ['RS256', 'ES256'], gateway: { roles: rolesWithTargets(), targets: targetsConfig() } });
  });
  afterAll(async () => env?.close());

  it('GET /v1/targets lists what the session may get; /v1/targets/<name>/token mints it, ending with the session', async () => {
    const browser = new TestBrowser();
    await loginAs(browser, env.gateway.url, 'github', env.github, 'octocat');
    const list = await browser.get(`${env.gateway.url}/v1/targets`);
    expect(list.status).toBe(200);
    const names = ((await list.json()) as { targets: { name: string }[] }).targets.map((t) => t.name);
    // octocat is deployer (team acme/deployers) and reader (org acme).
    expect(names.sort()).toEqual(['any-jwt', 'aws-prod', 'azure-app', 'gcp-pool', 'kube', 'vault']);

    const res = await browser.get(`${env.gateway.url}/v1/targets/kube/token`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as Record<string, unknown>;
    expect(body).toMatchObject({ target: 'kube', kind: 'kubernetes', token_type: 'N_A' });
    const { payload } = await jwtVerify(body.token as string, createRemoteJWKSet(new URL(`${env.gateway.url}/.well-known/jwks.json`)), { audience: 'kubernetes', issuer: env.publicUrl });
    expect(payload).toMatchObject({ username: 'gh:octocat', groups: ['a-org/x', 'b-org/y', 'acme/deployers'] });
    expect(Date.parse(body.expires_at as string)).toBe(payload.exp! * 1000);

    // The aws target needs claims a GitHub login does not have: refused, naming the target and the claim.
    const aws = await browser.get(`${env.gateway.url}/v1/targets/aws-prod/token`);
    expect(aws.status).toBe(400);
    expect(JSON.stringify(await aws.json())).toContain('target aws-prod: subject: {claims.repository_id} is missing');
  });

  it('the page lists the targets and shows a token only when asked for on the page itself', async () => {
    const browser = new TestBrowser();
    await loginAs(browser, env.gateway.url, 'github', env.github, 'dave'); // reader only: kube
    const page = await (await browser.get(`${env.gateway.url}/`)).text();
    expect(page).toContain('<h2 id="targets-heading">Targets</h2>');
    expect(page).toContain('value="kube"');
    expect(page).not.toContain('value="vault"');
    const minted = () => env.gateway.logs().filter((line) => line.action === 'TargetToken' && line.event === 'issued').length;
    const before = minted();
    // A link from elsewhere (no Fetch Metadata saying same-origin): the choice is preselected, nothing minted.
    const linked = await (await browser.get(`${env.gateway.url}/?target=kube`)).text();
    expect(linked).toContain('value="kube" checked');
    expect(linked).not.toContain('id="target-token"');
    expect(minted()).toBe(before);
    const shown = await (await browser.get(`${env.gateway.url}/?target=kube`, { 'sec-fetch-site': 'same-origin' })).text();
    expect(minted()).toBe(before + 1);
    const token = /<pre id="target-token"[^>]*><code>([^<]+)<\/code>/.exec(shown)?.[1];
    const { payload } = await jwtVerify(token!, createRemoteJWKSet(new URL(`${env.gateway.url}/.well-known/jwks.json`)), { audience: 'kubernetes', issuer: env.publicUrl });
    expect(payload.username).toBe('gh:dave');
  });

  it('refuses without a session (401), and a target not granted or unknown alike (403)', async () => {
    const anonymous = await fetch(`${env.gateway.url}/v1/targets/kube/token`);
    expect(anonymous.status).toBe(401);
    const browser = new TestBrowser();
    await loginAs(browser, env.gateway.url, 'github', env.github, 'dave'); // reader only
    const notGranted = await browser.get(`${env.gateway.url}/v1/targets/vault/token`);
    const unknown = await browser.get(`${env.gateway.url}/v1/targets/nope/token`);
    expect([notGranted.status, unknown.status]).toEqual([403, 403]);
    const [a, b] = [(await notGranted.json()) as Record<string, string>, (await unknown.json()) as Record<string, string>];
    expect(a.code ?? a.error).toBe(b.code ?? b.error);
    expect(await (await browser.get(`${env.gateway.url}/v1/targets/kube/token?lifetime=99999`)).status).toBe(400);
  });
});
