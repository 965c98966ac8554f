/**
 * Independent validators accept every kind of target token stsgate mints (issue 12), each finding the
 * keys by discovery on its own: openid-client (discovery, then jose against the discovered jwks_uri), and
 * Python's PyJWT from Debian with its own JWKS client. RS256 and ES256 targets side by side from one keys
 * file. Also the discovery contract (the members an ID-token issuer must publish) and `stsgate oidc export`.
 */
import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLocalJWKSet, createRemoteJWKSet, jwtVerify } from 'jose';
import * as client from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { parseConfig } from '../../src/config/load.js';
import { TOKEN_EXCHANGE_GRANT, TOKEN_TYPE } from '../../src/http/oauth.js';
import { ACCOUNT_ID, postForm } from '../support/common.js';
import { runCliToEnd } from '../support/cli-process.js';
import { issuerFor, standardRoles, startTestGateway, type TestGateway } from '../support/gateway.js';
import { reservePublicUrl } from '../support/browser-login.js';
import { TestIssuer } from '../support/test-issuer.js';

const PYTHON = '/usr/bin/python3';
const SCRIPT = join(import.meta.dirname, 'pyjwt_verify.py');
const pyjwt = spawnSync(PYTHON, ['-c', 'import jwt'], { encoding: 'utf8' }).status === 0;
if (!pyjwt) console.warn(`skipping the PyJWT validator: ${PYTHON} cannot import jwt (apt-get install python3-jwt; .ci/run does)`);

const JOB = { repository: 'acme/app', repository_id: 4242, ref: 'refs/heads/main', actor: 'octocat', teams: ['acme/ops'] };

/** Each kind, its audience, the algorithm its verifier takes, and claims its token must carry. */
const KINDS: [target: string, audience: string, alg: string, claims: Record<string, unknown>][] = [
  ['aws', 'sts.amazonaws.com', 'RS256', { 'https://aws.amazon.com/tags': { principal_tags: { repo: ['acme/app'] }, transitive_tag_keys: ['repo'] }, sub: 'repo:4242:ref:refs/heads/main' }],
  ['gcp', 'https://iam.googleapis.com/projects/1234/locations/global/workloadIdentityPools/ci-pool/providers/stsgate', 'ES256', { sub: 'repo:4242' }],
  ['azure', 'api://AzureADTokenExchange', 'RS256', { sub: 'repo:acme/app:ref:refs/heads/main' }],
  ['vault', 'https://vault.example.com', 'ES256', { repository: 'acme/app' }],
  ['kubernetes', 'kubernetes', 'ES256', { username: 'ci:octocat', groups: ['acme/ops'] }],
  ['jwt', 'https://api.partner.example', 'ES256', { sub: 'ci:repo:acme/app:ref:refs/heads/main' }],
];

const TARGETS_YAML = {
  targets: [
    { name: 'aws', kind: 'aws', algorithm: 'RS256', subject: 'repo:{claims.repository_id}:ref:{claims.ref}', aws: { principal_tags: { repo: '{claims.repository}' }, transitive_tag_keys: ['repo'] } },
    { name: 'gcp', kind: 'gcp', subject: 'repo:{claims.repository_id}', gcp: { provider: 'projects/1234/locations/global/workloadIdentityPools/ci-pool/providers/stsgate' } },
    { name: 'azure', kind: 'azure', subject: 'repo:{claims.repository}:ref:{claims.ref}' },
    { name: 'vault', kind: 'vault', audience: 'https://vault.example.com', claims: { repository: '{claims.repository}' } },
    { name: 'kubernetes', kind: 'kubernetes', audience: 'kubernetes', kubernetes: { username: 'ci:{claims.actor}', groups_from: 'claims.teams' } },
    { name: 'jwt', kind: 'jwt', audience: 'https://api.partner.example' },
  ],
};

let issuer: TestIssuer;
let gateway: TestGateway;
const dir = mkdtempSync(join(tmpdir(), 'stsgate-validators-'));

beforeAll(async () => {
  issuer = await TestIssuer.start();
  const { port, publicUrl } = await reservePublicUrl();
  const targets = parseConfig(stringify({ public_url: publicUrl, account_id: ACCOUNT_ID, dev: { allow_insecure_http: true }, ...TARGETS_YAML }), {}, process.cwd()).targets!;
  gateway = await startTestGateway({
    issuers: [issuerFor(issuer)],
    port,
    keyAlgorithms: ['RS256', 'ES256'],
    roles: standardRoles().map((role) => (role.name === 'deployer' ? { ...role, targets: KINDS.map(([name]) => name) } : role)),
    config: { publicUrl, targets },
  });
});
afterAll(async () => {
  await gateway?.close();
  await issuer?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function targetToken(target: string): Promise<string> {
  const res = await postForm(`${gateway.url}/oauth2/token`, { grant_type: TOKEN_EXCHANGE_GRANT, subject_token: await issuer.mint(JOB), subject_token_type: TOKEN_TYPE.jwt, requested_token_type: TOKEN_TYPE.idToken, audience: target });
  const body = (await res.json()) as Record<string, string>;
  expect(res.status, JSON.stringify(body)).toBe(200);
  return body.access_token!;
}

describe('independent validators find the keys by discovery and accept every kind', () => {
  it.each(KINDS)('openid-client discovery + jose: %s', async (target, audience, alg, claims) => {
    const configuration = await client.discovery(new URL(gateway.config.publicUrl), 'any-relying-party', undefined, undefined, { execute: [client.allowInsecureRequests] });
    const metadata = configuration.serverMetadata();
    expect(metadata.issuer).toBe(gateway.config.publicUrl);
    const { payload, protectedHeader } = await jwtVerify(await targetToken(target), createRemoteJWKSet(new URL(metadata.jwks_uri!)), { issuer: metadata.issuer, audience, algorithms: metadata.id_token_signing_alg_values_supported });
    expect(protectedHeader).toMatchObject({ alg, typ: 'JWT' });
    expect(payload).toMatchObject(claims);
  });

  it.skipIf(!pyjwt).each(KINDS)('PyJWT with its own JWKS client: %s', async (target, audience, alg, claims) => {
    const { code, stdout, stderr } = await pyjwtVerify(audience, await targetToken(target));
    expect(code, stderr).toBe(0);
    const verified = JSON.parse(stdout) as { header: Record<string, unknown>; claims: Record<string, unknown> };
    expect(verified.header).toMatchObject({ alg, typ: 'JWT' });
    expect(verified.claims).toMatchObject(claims);
  });

  it.skipIf(!pyjwt)('PyJWT refuses a token for another audience and a tampered one', async () => {
    const token = await targetToken('vault');
    expect((await pyjwtVerify('sts.amazonaws.com', token)).stderr).toContain('InvalidAudienceError');
    const [header, payload, signature] = token.split('.');
    const tampered = `${header}.${Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(payload!, 'base64url').toString()), repository: 'acme/evil' })).toString('base64url')}.${signature}`;
    expect((await pyjwtVerify('https://vault.example.com', tampered)).stderr).toContain('InvalidSignatureError');
  });
});

/** Runs the PyJWT script (asynchronously: the gateway it fetches from runs in this process). */
async function pyjwtVerify(audience: string, token: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = execFile(PYTHON, [SCRIPT, gateway.config.publicUrl, gateway.url, audience], { timeout: 30_000 });
  child.stdin!.end(token);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  return { code, stdout, stderr };
}

describe('discovery: what an ID-token issuer must publish', () => {
  it('has every member OpenID Connect Discovery requires of it, well typed; the JWKS only public signing keys', async () => {
    const discovery = (await (await fetch(`${gateway.url}/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
    const rows: [member: string, check: (value: unknown) => boolean][] = [
      ['issuer', (v) => v === gateway.config.publicUrl],
      ['jwks_uri', (v) => v === `${gateway.config.publicUrl}/.well-known/jwks.json`],
      ['response_types_supported', (v) => Array.isArray(v) && v.includes('id_token')],
      ['subject_types_supported', (v) => Array.isArray(v) && v.includes('public')],
      ['id_token_signing_alg_values_supported', (v) => Array.isArray(v) && v.includes('RS256') && v.includes('ES256') && !v.includes('none')],
      ['scopes_supported', (v) => Array.isArray(v) && v.includes('openid') && v.includes('deploy:write')],
      ['claims_supported', (v) => Array.isArray(v) && ['sub', 'iss', 'aud', 'https://aws.amazon.com/tags', 'username', 'groups', 'repository'].every((c) => v.includes(c))],
    ];
    for (const [member, check] of rows) expect(check(discovery[member]), `${member}: ${JSON.stringify(discovery[member])}`).toBe(true);
    const jwks = (await (await fetch(`${gateway.url}/.well-known/jwks.json`)).json()) as { keys: Record<string, unknown>[] };
    expect(jwks.keys.length).toBeLessThanOrEqual(100);
    for (const key of jwks.keys) {
      expect(key).toMatchObject({ use: 'sig' });
      expect(typeof key.kid).toBe('string');
      expect(['RS256', 'ES256']).toContain(key.alg);
      for (const secret of ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k']) expect(key).not.toHaveProperty(secret);
    }
  });

  it('stsgate oidc export writes what the gateway serves, and a minted token verifies against the exported JWKS', async () => {
    const configFile = join(dir, 'gateway.yaml');
    await writeFile(
      configFile,
      stringify({
        public_url: gateway.config.publicUrl,
        account_id: ACCOUNT_ID,
        dev: { allow_insecure_http: true },
        signing: { algorithm: 'ES256', keys_file: gateway.config.signing.keysFile },
        roles: [{ name: 'deployer', scopes: ['deploy:write', 'logs:read'], audiences: ['api.example.com'], targets: KINDS.map(([name]) => name), session_tags: { repo: 'claims.repository' } }, { name: 'reader', scopes: ['logs:read'], audiences: ['api.example.com', 'logs.example.com'] }, { name: 'admin', scopes: ['admin'], audiences: ['admin.example.com'] }],
        ...TARGETS_YAML,
      }),
    );
    const out = join(dir, 'site');
    const result = await runCliToEnd(['oidc', 'export', '--config', configFile, '--out', out]);
    expect(result.code, result.stderr).toBe(0);
    const exported = (name: string) => JSON.parse(readFileSync(join(out, '.well-known', name), 'utf8')) as Record<string, unknown>;
    expect(exported('openid-configuration')).toEqual(await (await fetch(`${gateway.url}/.well-known/openid-configuration`)).json());
    expect(exported('jwks.json')).toEqual(await (await fetch(`${gateway.url}/.well-known/jwks.json`)).json());
    expect(readFileSync(join(out, '.well-known', 'jwks.json'), 'utf8')).not.toMatch(/"(d|p|q|dp|dq|qi)"\s*:/);
    const { payload } = await jwtVerify(await targetToken('azure'), createLocalJWKSet(exported('jwks.json') as never), { issuer: gateway.config.publicUrl, audience: 'api://AzureADTokenExchange' });
    expect(payload.sub).toBe('repo:acme/app:ref:refs/heads/main');
  });
});
