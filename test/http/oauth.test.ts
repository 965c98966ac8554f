/** RFC 8693 token exchange, RFC 7662 introspection and RFC 7009 revocation, against the real Redis. */
import { decodeJwt, decodeProtectedHeader, createRemoteJWKSet, jwtVerify } from 'jose';
import { describe, expect, it } from 'vitest';
import { TOKEN_EXCHANGE_GRANT, TOKEN_TYPE } from '../../src/http/oauth.js';
import { useIssuerAndGateway } from '../support/gateway.js';
import { postForm } from '../support/common.js';

const MAIN = { repository: 'acme/app', ref: 'refs/heads/main' };

describe('OAuth endpoints', () => {
  const setup = useIssuerAndGateway();

  async function exchange(form: Record<string, string>) {
    const res = await postForm(`${setup.gateway.url}/oauth2/token`, { grant_type: TOKEN_EXCHANGE_GRANT, ...form });
    return { status: res.status, body: (await res.json()) as Record<string, unknown>, headers: res.headers };
  }

  async function idToken(claims: Record<string, unknown> = MAIN) {
    return setup.issuer.mint(claims);
  }

  async function introspect(token: string) {
    const res = await postForm(`${setup.gateway.url}/oauth2/introspect`, { token });
    expect(res.status).toBe(200);
    return (await res.json()) as Record<string, unknown>;
  }

  it('exchanges an external JWT for an access token and AWS keys (RFC 8693 §2.2.1)', async () => {
    const { status, body, headers } = await exchange({ subject_token: await idToken(), subject_token_type: TOKEN_TYPE.jwt, audience: 'deployer' });
    expect(status).toBe(200);
    expect(headers.get('cache-control')).toBe('no-store');
    expect(body).toMatchObject({ issued_token_type: TOKEN_TYPE.accessToken, token_type: 'Bearer', scope: 'deploy:write logs:read', role: 'deployer' });
    expect(body.expires_in).toBeGreaterThan(3500);
    const aws = body.aws_credentials as Record<string, unknown>;
    expect(aws).toMatchObject({ Version: 1 });
    expect(aws.AccessKeyId).toMatch(/^ASIA[A-Z2-7]{16}$/);

    // The access token verifies against the published JWKS, with the documented claims.
    const jwks = createRemoteJWKSet(new URL(`${setup.gateway.url}/.well-known/jwks.json`));
    const { payload, protectedHeader } = await jwtVerify(body.access_token as string, jwks, { issuer: setup.gateway.config.publicUrl, audience: 'api.example.com' });
    expect(protectedHeader).toMatchObject({ alg: 'ES256', typ: 'at+jwt' });
    expect(protectedHeader.kid).toBe(setup.gateway.keys.set.current().kid);
    expect(payload).toMatchObject({ sub: `ci:repo:acme/app:ref:refs/heads/main`, role: 'deployer', scope: 'deploy:write logs:read', idp: 'ci', repo: 'acme/app' });
    expect(payload.sid).toBe((aws.AccessKeyId as string).slice(4));
    for (const claim of ['iat', 'nbf', 'exp', 'jti']) expect(payload[claim]).toBeDefined();
  });

  it('narrows scope on request, never widens it', async () => {
    const narrowed = await exchange({ subject_token: await idToken(), subject_token_type: TOKEN_TYPE.idToken, audience: 'deployer', scope: 'logs:read' });
    expect(narrowed.status).toBe(200);
    expect(narrowed.body.scope).toBe('logs:read');
    expect(decodeJwt(narrowed.body.access_token as string).scope).toBe('logs:read');

    const wider = await exchange({ subject_token: await idToken(), subject_token_type: TOKEN_TYPE.jwt, audience: 'reader', scope: 'logs:read deploy:write' });
    expect(wider.status).toBe(400);
    expect(wider.body.error).toBe('invalid_scope');

    // Narrowing an stsgate access token further: only within what it already has.
    const again = await exchange({ subject_token: narrowed.body.access_token as string, subject_token_type: TOKEN_TYPE.accessToken, scope: 'deploy:write' });
    expect(again.status).toBe(400);
    expect(again.body.error).toBe('invalid_scope');
    const full = await exchange({ subject_token: await idToken(), subject_token_type: TOKEN_TYPE.jwt, audience: 'deployer' });
    const down = await exchange({ subject_token: full.body.access_token as string, subject_token_type: TOKEN_TYPE.accessToken, scope: 'logs:read' });
    expect(down.status).toBe(200);
    expect(down.body.scope).toBe('logs:read');
    expect(down.body.role).toBe('deployer');
  });

  it('chains an stsgate access token to a role in can_assume, and not to others', async () => {
    const full = await exchange({ subject_token: await idToken(), subject_token_type: TOKEN_TYPE.jwt, audience: 'deployer' });
    const chained = await exchange({ subject_token: full.body.access_token as string, subject_token_type: TOKEN_TYPE.accessToken, audience: 'reader' });
    expect(chained.status).toBe(200);
    expect(chained.body.role).toBe('reader');
    const refused = await exchange({ subject_token: full.body.access_token as string, subject_token_type: TOKEN_TYPE.accessToken, audience: 'admin' });
    expect(refused.status).toBe(400);
    expect(refused.body.error).toBe('invalid_target');
  });

  it('introspection reports an active token, then inactive after revocation; revocation holds for the AWS keys too', async () => {
    const { body } = await exchange({ subject_token: await idToken(), subject_token_type: TOKEN_TYPE.jwt, audience: 'deployer', session_name: 'revoke-me' });
    const token = body.access_token as string;
    const active = await introspect(token);
    expect(active).toMatchObject({ active: true, role: 'deployer', scope: 'deploy:write logs:read', sub: 'ci:repo:acme/app:ref:refs/heads/main', token_type: 'Bearer' });

    const revoked = await postForm(`${setup.gateway.url}/oauth2/revoke`, { token });
    expect(revoked.status).toBe(200);
    expect(await introspect(token)).toEqual({ active: false });

    // The cache must not hand the revoked set out again: the same request now gets a new one.
    const again = await exchange({ subject_token: await idToken(), subject_token_type: TOKEN_TYPE.jwt, audience: 'deployer', session_name: 'revoke-me' });
    expect(again.body.access_token).not.toBe(token);
    expect((again.body.aws_credentials as Record<string, string>).AccessKeyId).not.toBe((body.aws_credentials as Record<string, string>).AccessKeyId);
    const audit = setup.gateway.logs().filter((l) => l.log === 'audit' && l.event === 'revoked');
    expect(audit.at(-1)).toMatchObject({ found: true, sid: decodeJwt(token).sid });
  });

  it('revocation answers 200 for unknown tokens (RFC 7009 §2.2) and introspection inactive for garbage', async () => {
    const res = await postForm(`${setup.gateway.url}/oauth2/revoke`, { token: 'not-a-token' });
    expect(res.status).toBe(200);
    expect(await introspect('eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.')).toEqual({ active: false });
    // A token signed by someone else's key with stsgate's kid is inactive.
    const forged = await setup.issuer.mint({ iss: setup.gateway.config.publicUrl, sid: 'AAAAAAAAAAAAAAAA' }, { header: { kid: setup.gateway.keys.set.current().kid, typ: 'at+jwt' } });
    expect(decodeProtectedHeader(forged).kid).toBe(setup.gateway.keys.set.current().kid);
    expect(await introspect(forged)).toEqual({ active: false });
  });

  it('publishes discovery and JWKS', async () => {
    const discovery = (await (await fetch(`${setup.gateway.url}/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
    expect(discovery).toMatchObject({ issuer: setup.gateway.config.publicUrl, token_endpoint: `${setup.gateway.config.publicUrl}/oauth2/token` });
    const jwks = (await (await fetch(`${setup.gateway.url}/.well-known/jwks.json`)).json()) as { keys: Record<string, unknown>[] };
    expect(jwks.keys).toHaveLength(1);
    expect(jwks.keys[0]).toMatchObject({ kid: setup.gateway.keys.set.current().kid, alg: 'ES256', use: 'sig' });
    expect(jwks.keys[0]).not.toHaveProperty('d');
  });

  it('health and readiness', async () => {
    expect((await fetch(`${setup.gateway.url}/healthz`)).status).toBe(200);
    const ready = await fetch(`${setup.gateway.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ status: 'ready' });
  });
});
