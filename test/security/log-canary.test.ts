/**
 * Canary: exchange flows run with marked tokens, issued secrets, session tokens, signatures and the
 * gateway's own keys and store password, in their right places and misplaced into other fields, through
 * success, refusal, throttling, revocation and a store outage. None of them may appear, whole or as a
 * recognisable piece, in a log line (JSON or text format), in an error body, or in a metric label. The log must still say what
 * happened (the test fails if it is empty of decisions).
 */
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TOKEN_TYPE } from '../../src/http/oauth.js';
import { issuerFor } from '../support/gateway.js';
import { startRedis, type RedisServer } from '../support/redis-servers.js';
import { TestIssuer } from '../support/test-issuer.js';
import { encodeForm, keysFrom, MAIN, postOAuth, postRaw, postSts, signedStsPost, signRaw, startSecurityGateway, tamper, withinOneWindow, type AwsKeys, type SecurityGateway } from './harness.js';
import { ACCOUNT_ID, sleep } from '../support/common.js';

const PASSWORD = `canary-redis-password-${Math.random().toString(36).slice(2)}`;
let idp: TestIssuer;
let stranger: TestIssuer;
let redis: RedisServer;
let g: SecurityGateway;

/** Every secret the flows handle, by a label for the failure message. */
const secrets = new Map<string, string>();
/** Bodies of every refused request. */
const errorBodies: string[] = [];

function mark(label: string, value: string | undefined): void {
  if (!value) throw new Error(`no value for ${label}`);
  secrets.set(label, value);
  // Pieces a reader could still use or recognise: each JWT part but the (shared) header, and both halves.
  const parts = value.split('.');
  if (parts.length === 3) {
    secrets.set(`${label} payload`, parts[1]!);
    if (parts[2]!.length >= 16) secrets.set(`${label} signature`, parts[2]!);
  }
  if (value.length >= 32) {
    secrets.set(`${label} first half`, value.slice(0, Math.floor(value.length / 2)));
    secrets.set(`${label} second half`, value.slice(Math.floor(value.length / 2)));
  }
}

async function record(res: Response): Promise<string> {
  const body = await res.text();
  if (res.status >= 400) errorBodies.push(body);
  return body;
}

beforeAll(async () => {
  [idp, stranger] = await Promise.all([TestIssuer.start(), TestIssuer.start()]);
  redis = await startRedis({ password: PASSWORD });
  g = await startSecurityGateway({
    issuers: [issuerFor(idp)],
    store: { kind: 'standalone', url: redis.url, prefix: 'canary:', commandTimeoutMs: 300 },
    config: { limits: { maxBodyBytes: 65536, exchangePerAddressPerMinute: 0, exchangePerSubjectPerMinute: 6 } },
  });
  mark('redis password', PASSWORD);
  mark('encryption key', g.gateway.config.encryptionKey!.toString('base64'));
  const keysFile = JSON.parse(await readFile(g.gateway.config.signing.keysFile!, 'utf8')) as { keys: { d: string }[] };
  mark('signing private key', keysFile.keys[0]!.d);
});
afterAll(async () => {
  await g?.close();
  await redis?.stop();
  await Promise.all([idp?.close(), stranger?.close()]);
});

describe('secrets never reach logs, error bodies or metric labels', () => {
  it('runs the flows', async () => {
    // Web-identity tokens: valid, expired, tampered, repeating a member, from an unknown issuer, oversized.
    const valid = await idp.mint({ ...MAIN, sub: 'canary-subject-1' });
    const validOAuth = await idp.mint({ ...MAIN, sub: 'canary-subject-2' });
    const expired = await idp.mint(MAIN, { issuedAt: Math.floor(Date.now() / 1000) - 900, expiresIn: 300 });
    const tampered = tamper(await idp.mint({ ...MAIN, ref: 'refs/heads/dev' }), { ref: 'refs/heads/main' });
    const key = idp.key({ alg: 'RS256' });
    const claims = JSON.stringify({ iss: idp.url, sub: 's', aud: 'sts.example.com', iat: Math.floor(Date.now() / 1000), exp: Math.floor(Date.now() / 1000) + 300, ...MAIN });
    const duplicate = signRaw(JSON.stringify({ alg: 'RS256', kid: key.kid }), claims.replace(/^{/, '{"repository":"evil/x",'), key.privateKey);
    const unknownIssuer = await stranger.mint(MAIN);
    const oversized = await idp.mint({ ...MAIN, pad: 'y'.repeat(25_000) });
    for (const [label, token] of Object.entries({ valid, validOAuth, expired, tampered, duplicate, unknownIssuer, oversized })) mark(`web identity token ${label}`, token);

    // Issued: AWS XML and RFC 8693 JSON.
    const c1 = keysFrom(await record(await postSts(g.url, { WebIdentityToken: valid, RoleSessionName: 'canary' })));
    const c2 = keysFrom(await record(await postOAuth(g.url, { subject_token: validOAuth, session_name: 'canary-oauth' })));
    for (const [label, keys] of Object.entries({ c1, c2 })) {
      mark(`${label} secret access key`, keys.secretAccessKey);
      mark(`${label} session token`, keys.sessionToken);
    }
    mark('c2 access token', c2.accessToken);

    // Signed calls, chaining, narrowing, introspection.
    const signed = await signedStsPost(g.url, c1, { Action: 'GetCallerIdentity', Version: '2011-06-15' });
    await record(signed);
    const c3 = keysFrom(await record(await signedStsPost(g.url, c1, { Action: 'AssumeRole', Version: '2011-06-15', RoleArn: `arn:aws:iam::${ACCOUNT_ID}:role/reader`, RoleSessionName: 'chained' })));
    mark('c3 secret access key', c3.secretAccessKey);
    mark('c3 session token', c3.sessionToken);
    const c4body = await record(await postOAuth(g.url, { subject_token: c2.accessToken!, subject_token_type: TOKEN_TYPE.accessToken, audience: undefined, scope: 'logs:read' }));
    mark('c4 access token', keysFrom(c4body).accessToken);
    await record(await postRaw(`${g.url}/oauth2/introspect`, { raw: encodeForm({ token: c2.accessToken! }) }));

    // Refusals with the secrets in their places.
    for (const token of [expired, tampered, duplicate, unknownIssuer, oversized]) {
      await record(await postSts(g.url, { WebIdentityToken: token }));
      await record(await postOAuth(g.url, { subject_token: token }));
    }
    const flipped = (k: AwsKeys, field: keyof AwsKeys): AwsKeys => ({ ...k, [field]: `${k[field].slice(0, -6)}AAAAAA` });
    for (const bad of [flipped(c1, 'secretAccessKey'), flipped(c1, 'sessionToken'), { ...c1, sessionToken: c3.sessionToken }]) {
      await record(await signedStsPost(g.url, bad, { Action: 'GetCallerIdentity', Version: '2011-06-15' }));
    }
    await record(await postOAuth(g.url, { subject_token: `${c2.accessToken!.slice(0, -6)}AAAAAA`, subject_token_type: TOKEN_TYPE.accessToken, audience: undefined }));

    // Secrets misplaced into other fields.
    await record(await postSts(g.url, { WebIdentityToken: valid, RoleArn: c2.accessToken! }));
    await record(await postSts(g.url, { WebIdentityToken: c1.sessionToken }));
    await record(await postOAuth(g.url, { subject_token: validOAuth, audience: c1.secretAccessKey }));
    await record(await postOAuth(g.url, { subject_token: c1.sessionToken, subject_token_type: TOKEN_TYPE.accessToken, audience: undefined }));
    await record(await postOAuth(g.url, { subject_token: valid, subject_token_type: TOKEN_TYPE.accessToken, audience: undefined }));
    await record(await signedStsPost(g.url, { ...c1, sessionToken: c2.accessToken! }, { Action: 'GetCallerIdentity', Version: '2011-06-15' }));

    // Throttled (six per subject per minute), revoked, then used.
    await withinOneWindow();
    for (let i = 0; i < 8; i++) await record(await postSts(g.url, { WebIdentityToken: valid, RoleSessionName: `again-${i}` }));
    await record(await postRaw(`${g.url}/oauth2/revoke`, { raw: encodeForm({ token: c2.accessToken! }) }));
    await record(await postRaw(`${g.url}/oauth2/revoke`, { raw: encodeForm({ token: c1.sessionToken }) }));
    await record(await signedStsPost(g.url, c1, { Action: 'GetCallerIdentity', Version: '2011-06-15' }));
    await record(await postOAuth(g.url, { subject_token: c2.accessToken!, subject_token_type: TOKEN_TYPE.accessToken, audience: undefined }));

    // The store goes away (its connection errors are logged) and comes back.
    await redis.stop();
    await record(await postSts(g.url, { WebIdentityToken: validOAuth, RoleSessionName: 'outage' }));
    await record(await postOAuth(g.url, { subject_token: validOAuth, session_name: 'outage' }));
    await redis.start();
    for (const until = Date.now() + 6_000; (await fetch(`${g.url}/readyz`)).status !== 200 && Date.now() < until; ) await sleep(50);
    expect((await fetch(`${g.url}/readyz`)).status).toBe(200);
  });

  it('the log says what happened', () => {
    const lines = g.gateway.logs();
    const events = new Set(lines.map((l) => l.event).filter(Boolean));
    for (const event of ['issued', 'denied', 'revoked']) expect(events).toContain(event);
    // Refused exchanges are audited; refused GetCallerIdentity calls carry their code on the access-log line.
    const codes = new Set(lines.filter((l) => l.event === 'denied' || (l.msg === 'request' && l.code)).map((l) => l.code));
    for (const code of ['ExpiredTokenException', 'InvalidIdentityToken', 'SignatureDoesNotMatch', 'InvalidClientTokenId', 'Throttling', 'ServiceUnavailable']) expect(codes).toContain(code);
    expect(lines.some((l) => l.msg === 'store connection error')).toBe(true);
    expect(errorBodies.length).toBeGreaterThan(25);
  });

  it('no secret is in any log line', () => {
    const log = g.gateway.logs().map((l) => JSON.stringify(l));
    const leaks = [...secrets].filter(([, value]) => log.some((line) => line.includes(value) || line.includes(JSON.stringify(value).slice(1, -1))));
    expect(leaks.map(([label]) => label)).toEqual([]);
  });

  it('no secret is in any line of the text log format', () => {
    const log = g.gateway.textLogs();
    expect(log.length).toBe(g.gateway.logs().length);
    expect(log.some((line) => / INFO  log=audit event=denied /.test(line))).toBe(true);
    const leaks = [...secrets].filter(([, value]) => log.some((line) => line.includes(value) || line.includes(JSON.stringify(value).slice(1, -1))));
    expect(leaks.map(([label]) => label)).toEqual([]);
  });

  it('no secret is in any error body', () => {
    const leaks = [...secrets].filter(([, value]) => errorBodies.some((body) => body.includes(value)));
    expect(leaks.map(([label]) => label)).toEqual([]);
  });

  it('no secret is in any metric label or value', async () => {
    const metrics = await (await fetch(`${g.gateway.adminUrl}/metrics`)).text();
    expect(metrics).toContain('stsgate_denials_total');
    const leaks = [...secrets].filter(([, value]) => metrics.includes(value));
    expect(leaks.map(([label]) => label)).toEqual([]);
    // Labels come from bounded sets: no subject or session name either.
    expect(metrics).not.toContain('canary-subject');
    expect(metrics).not.toContain('canary-oauth');
  });
});
