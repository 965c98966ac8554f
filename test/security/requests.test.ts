/**
 * Hostile request shapes against the exchange endpoints: content types, repeated parameters (also split
 * between the query string and the body), parameter names that collide after decoding or on a JavaScript
 * object, invalid durations, session names and role ARNs, unknown actions, oversized bodies (refused
 * without being buffered, even when they never end), request smuggling framings, and slow clients.
 * Every case gets the exact status and code and leaves nothing issued or stored.
 */
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TOKEN_EXCHANGE_GRANT, TOKEN_TYPE } from '../../src/http/oauth.js';
import { issuerFor } from '../support/gateway.js';
import { TestIssuer } from '../support/test-issuer.js';
import { addedKeys, DEPLOYER_ARN, encodeForm, expectRefused, MAIN, postOAuth, postSts, startSecurityGateway, type Expected, type RawRequest, type SecurityGateway } from './harness.js';
import { ACCOUNT_ID } from '../support/common.js';

let idp: TestIssuer;
let g: SecurityGateway;
/** A valid token, minted once: every row below fails for another reason than the token. */
let token = '';

beforeAll(async () => {
  idp = await TestIssuer.start();
  g = await startSecurityGateway({ issuers: [issuerFor(idp)] });
  token = await idp.mint(MAIN, { expiresIn: 600 });
});
afterAll(async () => {
  await g?.close();
  await idp?.close();
});

const VALIDATION: Expected = [400, 'ValidationError'];
const BAD_ACTION: Expected = [400, 'InvalidAction'];
const DENIED: Expected = [403, 'AccessDenied'];
const MEDIA: Expected = [415, 'UnsupportedMediaType'];
const TOO_LARGE: Expected = [413, 'PayloadTooLarge'];

/** A valid AssumeRoleWithWebIdentity body as ordered pairs, with changes; pairs allow repeats. */
const stsPairs = (...extra: [string, string][]): [string, string][] => [
  ['Action', 'AssumeRoleWithWebIdentity'], ['Version', '2011-06-15'], ['RoleArn', DEPLOYER_ARN], ['RoleSessionName', 'ci'], ['WebIdentityToken', token], ...extra,
];
const oauthPairs = (...extra: [string, string][]): [string, string][] => [
  ['grant_type', TOKEN_EXCHANGE_GRANT], ['subject_token', token], ['subject_token_type', TOKEN_TYPE.jwt], ['audience', 'deployer'], ...extra,
];
const encode = (pairs: [string, string][]) => pairs.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');
const without = (pairs: [string, string][], name: string) => pairs.filter(([k]) => k !== name);

interface Row {
  name: string;
  /** Form fields over a valid request (undefined removes one), or a raw request. */
  input: () => Record<string, string | undefined> | RawRequest;
  expected: Expected;
}

const stsRows: Row[] = [
  // Content type.
  { name: 'no content type', input: () => ({ raw: encode(stsPairs()), contentType: null }), expected: MEDIA },
  { name: 'text/plain', input: () => ({ raw: encode(stsPairs()), contentType: 'text/plain' }), expected: MEDIA },
  { name: 'application/json', input: () => ({ raw: JSON.stringify(Object.fromEntries(stsPairs())), contentType: 'application/json' }), expected: MEDIA },
  { name: 'multipart/form-data', input: () => ({ raw: '--b\r\nContent-Disposition: form-data; name="Action"\r\n\r\nAssumeRoleWithWebIdentity\r\n--b--', contentType: 'multipart/form-data; boundary=b' }), expected: MEDIA },
  { name: 'a look-alike form type', input: () => ({ raw: encode(stsPairs()), contentType: 'application/x-www-form-urlencoded-evil' }), expected: MEDIA },
  { name: 'a body that is not UTF-8', input: () => ({ raw: Buffer.concat([Buffer.from(encode(stsPairs())), Buffer.from('&RoleSessionName=%FF'), Buffer.from([0xff, 0xfe])]) }), expected: VALIDATION },
  // Repeated parameters: whichever copy a parser picks is what an attacker hopes to choose.
  ...['Action', 'Version', 'RoleArn', 'RoleSessionName', 'WebIdentityToken'].map((name): Row => ({
    name: `${name} given twice`,
    input: () => ({ raw: encode([...stsPairs(), [name, stsPairs().find(([k]) => k === name)![1]]]) }),
    expected: VALIDATION,
  })),
  { name: 'DurationSeconds given twice', input: () => ({ raw: encode(stsPairs(['DurationSeconds', '900'], ['DurationSeconds', '43200'])) }), expected: VALIDATION },
  { name: 'RoleArn twice, the second percent-encoded in its name', input: () => ({ raw: `${encode(stsPairs())}&Role%41rn=${encodeURIComponent(DEPLOYER_ARN)}` }), expected: VALIDATION },
  { name: 'RoleArn in the query string, the rest in the body', input: () => ({ raw: encode(without(stsPairs(), 'RoleArn')), query: `RoleArn=${encodeURIComponent(DEPLOYER_ARN)}` }), expected: VALIDATION },
  { name: 'RoleArn in both the query string and the body', input: () => ({ raw: encode(stsPairs()), query: `RoleArn=${encodeURIComponent(`arn:aws:iam::${ACCOUNT_ID}:role/admin`)}` }), expected: VALIDATION },
  { name: 'everything in the query string, empty body', input: () => ({ raw: '', query: encode(stsPairs()) }), expected: VALIDATION },
  { name: 'a parameter name in another case', input: () => ({ raw: encode([...stsPairs(), ['roleArn', DEPLOYER_ARN]]) }), expected: VALIDATION },
  { name: 'an empty parameter name', input: () => ({ raw: `${encode(stsPairs())}&=x` }), expected: VALIDATION },
  { name: 'a parameter named __proto__', input: () => ({ raw: `${encode(stsPairs())}&__proto__=x` }), expected: VALIDATION },
  { name: 'a parameter named constructor', input: () => ({ raw: `${encode(stsPairs())}&constructor=x` }), expected: VALIDATION },
  { name: 'a NUL in a parameter name', input: () => ({ raw: `${encode(stsPairs())}&RoleArn%00=x` }), expected: VALIDATION },
  { name: 'a session policy', input: () => ({ Policy: '{"Version":"2012-10-17","Statement":[]}' }), expected: VALIDATION },
  { name: 'managed policy ARNs', input: () => ({ 'PolicyArns.member.1.arn': 'arn:aws:iam::aws:policy/AdministratorAccess' }), expected: VALIDATION },
  { name: 'session tags', input: () => ({ 'Tags.member.1.Key': 'role', 'Tags.member.1.Value': 'admin' }), expected: VALIDATION },
  { name: 'SourceIdentity', input: () => ({ SourceIdentity: 'admin' }), expected: VALIDATION },
  { name: 'ProviderId', input: () => ({ ProviderId: 'www.amazon.com' }), expected: VALIDATION },
  // Actions and versions.
  ...['GetSessionToken', 'AssumeRoleWithSAML', 'GetFederationToken', 'assumerolewithwebidentity', 'AssumeRoleWithWebIdentity ', '__proto__', 'constructor', 'toString', 'hasOwnProperty', ''].map((action): Row => ({
    name: `Action ${JSON.stringify(action)}`,
    input: () => ({ Action: action }),
    expected: BAD_ACTION,
  })),
  { name: 'no Action', input: () => ({ Action: undefined }), expected: BAD_ACTION },
  { name: 'no Version', input: () => ({ Version: undefined }), expected: BAD_ACTION },
  { name: 'another Version', input: () => ({ Version: '2010-01-01' }), expected: BAD_ACTION },
  { name: 'GetCallerIdentity with a token parameter', input: () => ({ Action: 'GetCallerIdentity', RoleArn: undefined, RoleSessionName: undefined }), expected: VALIDATION },
  // Durations (AWS: an integer in 900..43200, and within the role's maximum).
  ...['899', '0', '-900', '43201', '900.0', '9e2', '0x384', ' 900', '900 ', '٩٠٠', '', '1234567', '99999999999999999999', 'NaN', 'Infinity'].map((value): Row => ({
    name: `DurationSeconds ${JSON.stringify(value)}`,
    input: () => ({ DurationSeconds: value }),
    expected: VALIDATION,
  })),
  { name: 'DurationSeconds over the role maximum (7200)', input: () => ({ DurationSeconds: '7201' }), expected: VALIDATION },
  // Session names (AWS: 2..64 of [\w+=,.@-]).
  ...['a', '', 'x'.repeat(65), 'has space', 'a/b', 'a\nb', 'ci\u0000', 'é-ci', '<script>', 'ci;rm', 'ci%00'].map((value): Row => ({
    name: `RoleSessionName ${JSON.stringify(value.length > 20 ? `${value.slice(0, 8)}…` : value)}`,
    input: () => ({ RoleSessionName: value }),
    expected: VALIDATION,
  })),
  { name: 'RoleSessionName missing', input: () => ({ RoleSessionName: undefined }), expected: VALIDATION },
  // Role ARNs: anything but a configured role of this account is the same AccessDenied as a role not granted.
  { name: 'RoleArn missing', input: () => ({ RoleArn: undefined }), expected: VALIDATION },
  { name: 'RoleArn too short', input: () => ({ RoleArn: 'arn:aws:iam::1' }), expected: VALIDATION },
  { name: 'RoleArn of another account', input: () => ({ RoleArn: 'arn:aws:iam::210987654321:role/deployer' }), expected: DENIED },
  { name: 'RoleArn with a wildcard', input: () => ({ RoleArn: `arn:aws:iam::${ACCOUNT_ID}:role/*` }), expected: DENIED },
  { name: 'RoleArn in another case', input: () => ({ RoleArn: `arn:aws:iam::${ACCOUNT_ID}:role/Deployer` }), expected: DENIED },
  { name: 'RoleArn of a user', input: () => ({ RoleArn: `arn:aws:iam::${ACCOUNT_ID}:user/deployer` }), expected: DENIED },
  { name: 'RoleArn naming __proto__', input: () => ({ RoleArn: `arn:aws:iam::${ACCOUNT_ID}:role/__proto__` }), expected: DENIED },
  { name: 'RoleArn naming a role no rule grants', input: () => ({ RoleArn: `arn:aws:iam::${ACCOUNT_ID}:role/admin` }), expected: DENIED },
  { name: 'RoleArn with a trailing space', input: () => ({ RoleArn: `${DEPLOYER_ARN} ` }), expected: DENIED },
  // Bodies over the cap (64 KiB here).
  { name: 'a declared length over the cap', input: () => ({ raw: `${encode(stsPairs())}&Pad=${'x'.repeat(70_000)}` }), expected: TOO_LARGE },
];

const INVALID_REQUEST: Expected = [400, 'invalid_request'];
const oauthRows: Row[] = [
  { name: 'no content type', input: () => ({ raw: encode(oauthPairs()), contentType: null }), expected: [415, 'invalid_request'] },
  { name: 'application/json', input: () => ({ raw: JSON.stringify(Object.fromEntries(oauthPairs())), contentType: 'application/json' }), expected: [415, 'invalid_request'] },
  ...['grant_type', 'subject_token', 'subject_token_type', 'audience'].map((name): Row => ({
    name: `${name} given twice`,
    input: () => ({ raw: encode([...oauthPairs(), [name, oauthPairs().find(([k]) => k === name)![1]]]) }),
    expected: INVALID_REQUEST,
  })),
  { name: 'audience twice with two roles', input: () => ({ raw: encode(oauthPairs(['audience', 'admin'])) }), expected: INVALID_REQUEST },
  { name: 'audience in the query string, the rest in the body', input: () => ({ raw: encode(without(oauthPairs(), 'audience')), query: 'audience=admin' }), expected: INVALID_REQUEST },
  { name: 'subject_token in the query string', input: () => ({ raw: encode(without(oauthPairs(), 'subject_token')), query: `subject_token=${token}` }), expected: INVALID_REQUEST },
  { name: 'grant_type missing', input: () => ({ grant_type: undefined }), expected: INVALID_REQUEST },
  ...['client_credentials', 'authorization_code', 'password', 'refresh_token', 'urn:ietf:params:oauth:grant-type:jwt-bearer', `${TOKEN_EXCHANGE_GRANT} `, TOKEN_EXCHANGE_GRANT.toUpperCase(), ''].map((value): Row => ({
    name: `grant_type ${JSON.stringify(value)}`,
    input: () => ({ grant_type: value }),
    expected: [400, 'unsupported_grant_type'],
  })),
  { name: 'subject_token missing', input: () => ({ subject_token: undefined }), expected: INVALID_REQUEST },
  { name: 'subject_token_type missing', input: () => ({ subject_token_type: undefined }), expected: INVALID_REQUEST },
  ...['urn:ietf:params:oauth:token-type:saml2', 'urn:ietf:params:oauth:token-type:refresh_token', 'jwt', 'id_token', `${TOKEN_TYPE.jwt} `].map((value): Row => ({
    name: `subject_token_type ${JSON.stringify(value)}`,
    input: () => ({ subject_token_type: value }),
    expected: INVALID_REQUEST,
  })),
  { name: 'requested_token_type refresh_token', input: () => ({ requested_token_type: 'urn:ietf:params:oauth:token-type:refresh_token' }), expected: INVALID_REQUEST },
  { name: 'an actor token (delegation)', input: () => ({ actor_token: token, actor_token_type: TOKEN_TYPE.jwt }), expected: INVALID_REQUEST },
  { name: 'a resource indicator', input: () => ({ resource: 'https://api.example.com' }), expected: [400, 'invalid_target'] },
  { name: 'an unknown parameter', input: () => ({ client_secret: 'x' }), expected: INVALID_REQUEST },
  { name: 'a parameter named __proto__', input: () => ({ raw: `${encode(oauthPairs())}&__proto__=x` }), expected: INVALID_REQUEST },
  ...['__proto__', 'constructor', 'toString', 'Deployer', 'deployer ', `arn:aws:iam::210987654321:role/deployer`, 'admin', ''].map((value): Row => ({
    name: `audience ${JSON.stringify(value)}`,
    input: () => ({ audience: value }),
    expected: [400, 'invalid_target'],
  })),
  { name: 'a scope the role does not grant', input: () => ({ scope: 'admin' }), expected: [400, 'invalid_scope'] },
  { name: 'a granted scope plus one more', input: () => ({ scope: 'logs:read admin' }), expected: [400, 'invalid_scope'] },
  ...['1e3', '-1', '899', '900.5', '7201', '99999999', ' 900'].map((value): Row => ({
    name: `duration_seconds ${JSON.stringify(value)}`,
    input: () => ({ duration_seconds: value }),
    expected: INVALID_REQUEST,
  })),
  ...['a', 'x'.repeat(65), 'has space', 'a/b', 'é-ci'].map((value): Row => ({
    name: `session_name ${JSON.stringify(value.length > 20 ? `${value.slice(0, 8)}…` : value)}`,
    input: () => ({ session_name: value }),
    expected: INVALID_REQUEST,
  })),
  { name: 'a body over the cap', input: () => ({ raw: `${encode(oauthPairs())}&pad=${'x'.repeat(70_000)}` }), expected: [413, 'invalid_request'] },
];

describe('AWS STS: hostile request shapes', () => {
  it.each(stsRows.map((r) => [r.name, r] as const))('%s', async (_name, row) => {
    await expectRefused(g, 'aws', row.expected, () => postSts(g.url, row.input(), { WebIdentityToken: token }));
  });

  it('the valid request the rows are built on is accepted (control)', async () => {
    const res = await postSts(g.url, { raw: encode(stsPairs()) });
    expect(res.status, await res.clone().text()).toBe(200);
  });
});

describe('OAuth token exchange: hostile request shapes', () => {
  it.each(oauthRows.map((r) => [r.name, r] as const))('%s', async (_name, row) => {
    await expectRefused(g, 'oauth', row.expected, () => postOAuth(g.url, row.input(), { subject_token: token }));
  });

  it('the valid request the rows are built on is accepted (control)', async () => {
    const res = await postOAuth(g.url, { raw: encode(oauthPairs()) });
    expect(res.status, await res.clone().text()).toBe(200);
  });
});

/** A raw HTTP/1.1 connection to the gateway that records what comes back and when. */
function rawConnection(url: string): Promise<{ socket: Socket; received: () => string; closedAt: Promise<number>; firstByteAt: Promise<number> }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    const started = performance.now();
    let text = '';
    let onFirst: (ms: number) => void;
    const firstByteAt = new Promise<number>((r) => (onFirst = r));
    const closedAt = new Promise<number>((r) => socket.on('close', () => r(performance.now() - started)));
    socket.on('data', (data: Buffer) => {
      if (text === '') onFirst(performance.now() - started);
      text += data.toString('latin1');
    });
    socket.on('error', () => {});
    socket.once('connect', () => resolve({ socket, received: () => text, closedAt, firstByteAt }));
    socket.once('error', reject);
  });
}

describe('bodies over the cap are refused without buffering', () => {
  it('a chunked body that never ends gets its 413 after about the cap, and the connection is closed', async () => {
    const keysBefore = await g.storedKeys();
    const { socket, received, closedAt, firstByteAt } = await rawConnection(g.url);
    socket.write('POST /oauth2/token HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n');
    let sent = 0;
    let sentAtResponse = -1;
    void firstByteAt.then(() => (sentAtResponse = sent));
    const chunk = 'x'.repeat(8192);
    // Never ends on its own: 8 KiB every 2 ms until the server answers or hangs up.
    const pump = setInterval(() => {
      if (socket.destroyed) return;
      socket.write(`${chunk.length.toString(16)}\r\n${chunk}\r\n`);
      sent += chunk.length;
    }, 2);
    try {
      const answeredAfterMs = await firstByteAt;
      const closedAfterMs = await closedAt;
      expect(received()).toMatch(/^HTTP\/1\.1 413 /);
      expect(received()).toMatch(/\r\nConnection: close\r\n/i);
      expect(received()).toContain('"error":"invalid_request"');
      // The cap is 64 KiB: the answer came once about that much had arrived, not at the end of the stream.
      expect(sentAtResponse).toBeLessThan(1024 * 1024);
      expect(answeredAfterMs).toBeLessThan(2_000);
      expect(closedAfterMs - answeredAfterMs).toBeLessThan(1_000);
    } finally {
      clearInterval(pump);
      socket.destroy();
    }
    expect(addedKeys(keysBefore, await g.storedKeys())).toEqual([]);
  });

  it('a declared Content-Length over the cap is refused before a single body byte is sent', async () => {
    const { socket, received, closedAt } = await rawConnection(g.url);
    socket.write(`POST / HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: ${10 * 1024 * 1024 * 1024}\r\n\r\n`);
    await closedAt;
    expect(received()).toMatch(/^HTTP\/1\.1 413 /);
    expect(received()).toContain('<Code>PayloadTooLarge</Code>');
  });
});

describe('request smuggling framings are refused by the HTTP parser', () => {
  it.each([
    ['Content-Length and Transfer-Encoding together', 'Content-Length: 4\r\nTransfer-Encoding: chunked\r\n'],
    ['two different Content-Lengths', 'Content-Length: 4\r\nContent-Length: 40\r\n'],
    ['an obfuscated Transfer-Encoding', 'Transfer-Encoding: chunked, identity\r\n'],
    ['a Transfer-Encoding with a space before the colon', 'Transfer-Encoding : chunked\r\n'],
  ])('%s', async (_name, framing) => {
    const keysBefore = await g.storedKeys();
    const body = encodeForm({ Action: 'AssumeRoleWithWebIdentity', Version: '2011-06-15', RoleArn: DEPLOYER_ARN, RoleSessionName: 'ci', WebIdentityToken: token });
    const { socket, received, closedAt } = await rawConnection(g.url);
    socket.write(`POST / HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/x-www-form-urlencoded\r\n${framing}\r\n${body}`);
    await closedAt;
    expect(received()).toMatch(/^HTTP\/1\.1 400 /);
    expect(received()).not.toContain('AccessKeyId');
    expect(addedKeys(keysBefore, await g.storedKeys())).toEqual([]);
  });
});

describe('slow clients are cut off', () => {
  // The deadlines are the server's own (10 s for headers, 30 s for the whole request); shortened here so the
  // test runs in seconds. Node checks them every second (connectionsCheckingInterval), not every 30 s.
  beforeAll(() => {
    expect(g.gateway.server.headersTimeout).toBe(10_000);
    expect(g.gateway.server.requestTimeout).toBe(30_000);
    expect((g.gateway.server as unknown as { connectionsCheckingInterval: number }).connectionsCheckingInterval).toBe(1_000);
    g.gateway.server.headersTimeout = 1_000;
    g.gateway.server.requestTimeout = 2_000;
  });
  afterAll(() => {
    g.gateway.server.headersTimeout = 10_000;
    g.gateway.server.requestTimeout = 30_000;
  });

  it('a slowloris client sending one header line every 100 ms gets 408 and is disconnected', async () => {
    const { socket, received, closedAt } = await rawConnection(g.url);
    socket.write('POST / HTTP/1.1\r\nHost: gateway\r\n');
    const drip = setInterval(() => socket.destroyed || socket.write(`X-Drip-${Math.random().toString(36).slice(2)}: 1\r\n`), 100);
    try {
      // Deadline 1 s, checked every second: cut within about 2 s (generous on a loaded machine; Node's default
      // check interval alone would allow 30 s).
      expect(await closedAt).toBeLessThan(5_000);
      expect(received()).toMatch(/^HTTP\/1\.1 408 /);
    } finally {
      clearInterval(drip);
    }
  });

  it('a client trickling its body one byte every 100 ms gets 408 and is disconnected', async () => {
    const { socket, received, closedAt } = await rawConnection(g.url);
    socket.write('POST /oauth2/token HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 10000\r\n\r\n');
    const drip = setInterval(() => socket.destroyed || socket.write('x'), 100);
    try {
      expect(await closedAt).toBeLessThan(6_000);
      expect(received()).toMatch(/^HTTP\/1\.1 408 /);
    } finally {
      clearInterval(drip);
    }
  });

  it('many slow clients at once do not stop the gateway from answering others', async () => {
    const slow = await Promise.all(Array.from({ length: 50 }, () => rawConnection(g.url)));
    for (const { socket } of slow) socket.write('POST / HTTP/1.1\r\nHost: gateway\r\n');
    const started = performance.now();
    const res = await postSts(g.url, { RoleSessionName: 'while-slow', WebIdentityToken: token });
    expect(res.status).toBe(200);
    expect(performance.now() - started).toBeLessThan(2_000);
    const closed = await Promise.all(slow.map((s) => s.closedAt));
    expect(Math.max(...closed)).toBeLessThan(5_000);
  });
});
