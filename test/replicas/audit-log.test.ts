/**
 * The audit log of a real `stsgate serve` process, read as JSON lines from its stdout: one line per
 * decision, carrying the request id the client got back (AWS RequestId, x-request-id), who, which role,
 * which rule, which session, for how long, from where, and on a denial the reason code.
 */
import { decodeJwt } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { REDIS_URL } from '../support/gateway.js';
import { expectNoSecretsInOutput, startGatewayProcess, testPrefix, useProcessTestSetup, writeGatewayConfig, type GatewayProcess } from '../support/gateway-process.js';
import { ACCOUNT_ID, postForm } from '../support/common.js';

const MAIN_RULE = 'main branch of acme/app may deploy';

describe('audit log of a gateway process', () => {
  const setup = useProcessTestSetup('audit');
  const { ledger } = setup;
  let gateway: GatewayProcess;

  beforeAll(async () => {
    const { dir, keys, issuer } = setup;
    gateway = await startGatewayProcess(await writeGatewayConfig(dir, { keys, issuer, store: { url: REDIS_URL, prefix: testPrefix() } }));
  });

  async function webIdentityToken(claims: Record<string, unknown>, options: { expiresIn?: number; issuedAt?: number } = {}): Promise<string> {
    const token = await setup.issuer.mint(claims, options);
    ledger.add('web identity token', token);
    return token;
  }

  /** AssumeRoleWithWebIdentity as the AWS SDK sends it; returns the response and the RequestId from its body. */
  async function assumeRole(token: string, extra: Record<string, string> = {}) {
    const res = await postForm(`${gateway.url}/sts`, {
      Action: 'AssumeRoleWithWebIdentity',
      Version: '2011-06-15',
      RoleArn: `arn:aws:iam::${ACCOUNT_ID}:role/deployer`,
      RoleSessionName: 'audit',
      WebIdentityToken: token,
      ...extra,
    });
    const resText = await res.text();
    for (const name of ['SecretAccessKey', 'SessionToken']) {
      const value = new RegExp(`<${name}>([^<]+)</${name}>`).exec(resText)?.[1];
      if (value) ledger.add(name, value);
    }
    const requestId = /<RequestId>([^<]+)<\/RequestId>/.exec(resText)?.[1];
    // The id in the body is the one in both headers: whichever a client logs leads to the audit line.
    expect(res.headers.get('x-amzn-requestid')).toBe(requestId);
    expect(res.headers.get('x-request-id')).toBe(requestId);
    return { status: res.status, text: resText, requestId: requestId! };
  }

  const auditLine = async (requestId: string) => (await gateway.waitForLogs((line) => line.log === 'audit' && line.requestId === requestId))[0]!;

  it('records an AWS issuance under the RequestId the client got', async () => {
    const sub = 'repo:acme/app:ref:refs/heads/main:audit-sts';
    const res = await assumeRole(await webIdentityToken({ sub, repository: 'acme/app', ref: 'refs/heads/main' }), { DurationSeconds: '900' });
    expect(res.status, res.text).toBe(200);
    const line = await auditLine(res.requestId);
    expect(line).toMatchObject({
      event: 'issued',
      action: 'AssumeRoleWithWebIdentity',
      requestId: res.requestId,
      source: 'ci',
      subject: sub,
      role: 'deployer',
      rule: MAIN_RULE,
      durationSeconds: 900,
      cached: false,
      client: '127.0.0.1',
    });
    expect(line.sid).toMatch(/^[A-Za-z0-9_-]{16,}$/);
    expect(Date.parse(line.time as string)).toBeGreaterThan(Date.now() - 60_000);
    // One event per audited request: the audit line carries the request's own fields, and no access line is written.
    expect(line).toMatchObject({ method: 'POST', path: '/sts', status: 200 });
    expect(line.ms).toEqual(expect.any(Number));
    expect(gateway.logs().filter((entry) => entry.requestId === res.requestId && entry.level === 'info')).toHaveLength(1);
  });

  it('records an OAuth issuance with the session id in the access token', async () => {
    const sub = 'repo:acme/app:ref:refs/heads/main:audit-oauth';
    const res = await postForm(`${gateway.url}/oauth2/token`, {
      grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
      subject_token: await webIdentityToken({ sub, repository: 'acme/app', ref: 'refs/heads/main' }),
      subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
      audience: 'deployer',
    });
    const resText = await res.text();
    expect(res.status, resText).toBe(200);
    const body = JSON.parse(resText) as { access_token: string; expires_in: number; aws_credentials: { SecretAccessKey: string; SessionToken: string } };
    for (const secret of [body.access_token, body.aws_credentials.SecretAccessKey, body.aws_credentials.SessionToken]) ledger.add('issued credentials', secret);
    const line = await auditLine(res.headers.get('x-request-id')!);
    expect(line).toMatchObject({ event: 'issued', action: 'TokenExchange', source: 'ci', subject: sub, role: 'deployer', rule: MAIN_RULE, durationSeconds: 3600, client: '127.0.0.1' });
    expect(line.sid).toBe(decodeJwt(body.access_token).sid);

    const revoked = await postForm(`${gateway.url}/oauth2/revoke`, { token: body.access_token });
    expect(revoked.status).toBe(200);
    expect(await auditLine(revoked.headers.get('x-request-id')!)).toMatchObject({ event: 'revoked', sid: line.sid, found: true, client: '127.0.0.1' });
  });

  it.each<[string, () => Promise<string>, number, string, Record<string, unknown>]>([
    [
      'no rule grants the role',
      () => webIdentityToken({ sub: 'repo:acme/app:ref:refs/heads/feature', repository: 'acme/app', ref: 'refs/heads/feature' }),
      403,
      'AccessDenied',
      { source: 'ci', subject: 'repo:acme/app:ref:refs/heads/feature', role: 'deployer' },
    ],
    [
      'an expired web identity token',
      () => webIdentityToken({ sub: 'repo:acme/app:expired', repository: 'acme/app', ref: 'refs/heads/main' }, { issuedAt: Math.floor(Date.now() / 1000) - 4000, expiresIn: 300 }),
      400,
      'ExpiredTokenException',
      {},
    ],
    ['a token that is no JWT', async () => 'x'.repeat(40), 400, 'InvalidIdentityToken', {}],
  ])('records a denial (%s) with its reason code under the RequestId of the error', async (_name, token, status, code, identity) => {
    const res = await assumeRole(await token());
    expect(res.status, res.text).toBe(status);
    expect(res.text).toContain(`<Code>${code}</Code>`);
    const line = await auditLine(res.requestId);
    expect(line).toMatchObject({ event: 'denied', action: 'AssumeRoleWithWebIdentity', requestId: res.requestId, code, client: '127.0.0.1', ...identity, method: 'POST', path: '/sts', status });
    expect(line.sid).toBeUndefined();
    expect(gateway.logs().filter((entry) => entry.requestId === res.requestId && entry.level === 'info')).toHaveLength(1);
  });

  it('writes a request no decision was made on as an access line', async () => {
    const res = await fetch(`${gateway.url}/healthz`);
    expect(res.status).toBe(200);
    const lines = await gateway.waitForLogs((entry) => entry.requestId === res.headers.get('x-request-id'));
    expect(lines).toEqual([expect.objectContaining({ msg: 'request', method: 'GET', path: '/healthz', status: 200, client: '127.0.0.1' })]);
    expect(lines[0]!.log).toBeUndefined();
  });

  it('writes one audit line per decision, and no token or secret into any log', async () => {
    const audit = gateway.audit();
    expect(audit.map((line) => line.event)).toEqual(['issued', 'issued', 'revoked', 'denied', 'denied', 'denied']);
    expectNoSecretsInOutput(ledger, 10);
  });
});
