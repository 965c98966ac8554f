/**
 * Abuse limits on the exchange endpoints, counted in Redis so that they hold across replicas: per client
 * address (every request, before the token is looked at) and per verified subject (before issuing).
 * Over a limit: AWS `Throttling` (400, XML) or OAuth 429 `slow_down`, both with Retry-After, and nothing
 * issued. One store increment per limit per request.
 */
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { TrustedProxies } from '../../src/http/middleware/client-address.js';
import { ExchangeRateLimits, addressBucket } from '../../src/limits/rate-limits.js';
import { MemoryStore } from '../../src/store/memory/memory-store.js';
import { GatewayError } from '../../src/errors/gateway-error.js';
import { issuerFor } from '../support/gateway.js';
import { TestIssuer } from '../support/test-issuer.js';
import { addedKeys, DEPLOYER_ARN, encodeForm, expectProtocolError, expectRefused, MAIN, postOAuth, postSts, securityStore, startSecurityGateway, withinOneWindow, type SecurityGateway } from './harness.js';

let idp: TestIssuer;
beforeAll(async () => {
  idp = await TestIssuer.start();
});
afterAll(async () => {
  await idp?.close();
});

const session = () => `s-${Math.random().toString(36).slice(2, 10)}`;

/** POSTs a form from a chosen loopback source address (127.0.0.0/8 all reach the gateway on 127.0.0.1). */
function postFrom(localAddress: string, url: string, path: string, form: Record<string, string>, headers: Record<string, string> = {}): Promise<{ status: number; body: string; headers: Record<string, string | string[] | undefined> }> {
  const body = encodeForm(form);
  return new Promise((resolve, reject) => {
    const req = request(`${url}${path}`, { method: 'POST', localAddress, headers: { ...headers, 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(body) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), headers: res.headers }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function storeOperations(g: SecurityGateway, operation: string): Promise<number> {
  const text = await (await fetch(`${g.gateway.adminUrl}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`stsgate_store_operation_duration_seconds_count{operation="${operation}"}`));
  return line ? Number(line.split(' ').at(-1)) : 0;
}

describe('per subject', () => {
  const LIMIT = 5;
  let g: SecurityGateway;
  beforeAll(async () => {
    g = await startSecurityGateway({ issuers: [issuerFor(idp)], config: { limits: { maxBodyBytes: 65536, exchangePerSubjectPerMinute: LIMIT, exchangePerAddressPerMinute: 0 } } });
  });
  afterAll(async () => {
    await g?.close();
  });

  it('allows the limit, then refuses the subject in both protocols with Retry-After, issuing nothing', async () => {
    await withinOneWindow();
    const sub = `repo:acme/app:ref:refs/heads/main:${Math.random()}`;
    for (let i = 0; i < LIMIT; i++) {
      const res = await postSts(g.url, { WebIdentityToken: await idp.mint({ ...MAIN, sub }), RoleSessionName: session() });
      expect(res.status, await res.text()).toBe(200);
    }
    const aws = await expectRefused(g, 'aws', [400, 'Throttling'], async () => postSts(g.url, { WebIdentityToken: await idp.mint({ ...MAIN, sub }), RoleSessionName: session() }));
    expect(aws.body).toContain('<Message>Rate exceeded</Message>');
    const retryAfter = Number(aws.res.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    const oauth = await expectRefused(g, 'oauth', [429, 'slow_down'], async () => postOAuth(g.url, { subject_token: await idp.mint({ ...MAIN, sub }) }));
    expect(Number(oauth.res.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    // Denials are audited with their code.
    expect(g.gateway.logs().some((l) => l.event === 'denied' && l.code === 'Throttling')).toBe(true);
  });

  it('a throttled subject gets Throttling before any other answer: not its cached set, not AccessDenied for a role it lacks', async () => {
    await withinOneWindow();
    const sub = `repo:acme/app:ref:refs/heads/main:${Math.random()}`;
    const name = session();
    for (let i = 0; i < LIMIT; i++) {
      // The same request every time: from the second on, the cache answers it.
      const res = await postSts(g.url, { WebIdentityToken: await idp.mint({ ...MAIN, sub }), RoleSessionName: name });
      expect(res.status, await res.text()).toBe(200);
    }
    await expectRefused(g, 'aws', [400, 'Throttling'], async () => postSts(g.url, { WebIdentityToken: await idp.mint({ ...MAIN, sub }), RoleSessionName: name }));
    await expectRefused(g, 'aws', [400, 'Throttling'], async () =>
      postSts(g.url, { WebIdentityToken: await idp.mint({ ...MAIN, sub }), RoleSessionName: name, RoleArn: 'arn:aws:iam::123456789012:role/not-granted' }),
    );
  });

  it('another subject from the same address is not affected', async () => {
    const res = await postSts(g.url, { WebIdentityToken: await idp.mint({ ...MAIN, sub: `other-${Math.random()}` }), RoleSessionName: session() });
    expect(res.status).toBe(200);
  });

  it('forged tokens naming a subject do not spend its allowance (only verified identities are counted)', async () => {
    const sub = `victim-${Math.random()}`;
    const forged = await idp.mint({ ...MAIN, sub });
    const tampered = `${forged.slice(0, -6)}AAAAAA`;
    for (let i = 0; i < LIMIT * 3; i++) expect((await postSts(g.url, { WebIdentityToken: tampered })).status).toBe(400);
    const res = await postSts(g.url, { WebIdentityToken: await idp.mint({ ...MAIN, sub }), RoleSessionName: session() });
    expect(res.status).toBe(200);
  });

  it('a successful exchange costs two increments (address and subject), nothing more', async () => {
    const before = await storeOperations(g, 'increment');
    expect((await postSts(g.url, { WebIdentityToken: await idp.mint({ ...MAIN, sub: `x-${Math.random()}` }), RoleSessionName: session() })).status).toBe(200);
    // The address limit is off on this gateway: one increment, for the subject.
    expect((await storeOperations(g, 'increment')) - before).toBe(1);
  });
});

describe('per client address, shared by two replicas', () => {
  const LIMIT = 8;
  let a: SecurityGateway;
  let b: SecurityGateway;
  beforeAll(async () => {
    const store = securityStore();
    const limits = { maxBodyBytes: 65536, exchangePerAddressPerMinute: LIMIT, exchangePerSubjectPerMinute: 0 };
    [a, b] = await Promise.all([
      startSecurityGateway({ issuers: [issuerFor(idp)], store, config: { limits } }),
      startSecurityGateway({ issuers: [issuerFor(idp)], store, config: { limits } }),
    ]);
  });
  afterAll(async () => {
    await Promise.all([a?.close(), b?.close()]);
  });

  it('counts every request from one address on either replica, refusing the one over the limit before its token is read', async () => {
    await withinOneWindow();
    const from = '127.0.0.7';
    // Bad requests count too: the limit exists to bound what a flood costs.
    for (let i = 0; i < LIMIT; i++) {
      const g = i % 2 === 0 ? a : b;
      const res = await postFrom(from, g.url, '/', { Action: 'AssumeRoleWithWebIdentity', Version: '2011-06-15', RoleArn: 'arn:aws:iam::123456789012:role/deployer', RoleSessionName: 'ci', WebIdentityToken: 'not.a.token' });
      expect(res.status).toBe(400);
    }
    const before = { keys: await a.storedKeys(), jwks: idp.fetches.jwks + idp.fetches.discovery };
    const valid = await idp.mint(MAIN);
    const over = await postFrom(from, b.url, '/', { Action: 'AssumeRoleWithWebIdentity', Version: '2011-06-15', RoleArn: 'arn:aws:iam::123456789012:role/deployer', RoleSessionName: 'ci', WebIdentityToken: valid });
    expectProtocolError('aws', new Response(over.body, { status: over.status, headers: over.headers as Record<string, string> }), over.body, [400, 'Throttling']);
    expect(Number(over.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    const oauth = await postFrom(from, a.url, '/oauth2/token', { grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange', subject_token: valid, subject_token_type: 'urn:ietf:params:oauth:token-type:jwt', audience: 'deployer' });
    expect(oauth.status).toBe(429);
    expect(JSON.parse(oauth.body)).toMatchObject({ error: 'slow_down' });
    expect(oauth.headers['retry-after']).toBeDefined();
    // Refused before the token was verified or anything stored.
    expect(idp.fetches.jwks + idp.fetches.discovery).toBe(before.jwks);
    expect(addedKeys(before.keys, await a.storedKeys())).toEqual([]);
  });

  it('another address is not affected', async () => {
    const res = await postFrom('127.0.0.8', a.url, '/', { Action: 'AssumeRoleWithWebIdentity', Version: '2011-06-15', RoleArn: 'arn:aws:iam::123456789012:role/deployer', RoleSessionName: 'ci', WebIdentityToken: await idp.mint(MAIN) });
    expect(res.status).toBe(200);
  });

  it('one increment per request, and only on the exchange endpoints', async () => {
    const before = await storeOperations(a, 'increment');
    await postSts(a.url, { WebIdentityToken: 'x.y.z' });
    expect((await storeOperations(a, 'increment')) - before).toBe(1);
    await fetch(`${a.url}/oauth2/introspect`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'token=x' });
    await fetch(`${a.url}/.well-known/jwks.json`);
    expect((await storeOperations(a, 'increment')) - before).toBe(1);
  });

  it('an oversized body still counts (it is counted before the body is read)', async () => {
    await withinOneWindow();
    const from = '127.0.0.9';
    for (let i = 0; i < LIMIT; i++) expect((await postFrom(from, a.url, '/', { Action: 'x', Pad: 'y'.repeat(70_000) })).status).toBe(413);
    expect((await postFrom(from, a.url, '/', { Action: 'x' })).status).toBe(400);
    const over = await postFrom(from, a.url, '/', { Action: 'x' });
    expect(over.body).toContain('<Code>Throttling</Code>');
  });
});

describe('behind trusted proxies (listen.trusted_proxies by address)', () => {
  const LIMIT = 3;
  let g: SecurityGateway;
  beforeAll(async () => {
    // 127.0.0.1 plays the load balancer; 127.0.0.2 is a client reaching the port directly.
    g = await startSecurityGateway({
      issuers: [issuerFor(idp)],
      config: { listen: { host: '127.0.0.1', port: 0, trustedProxies: ['127.0.0.1', '10.0.0.0/8', 'fd00::/8'] }, limits: { maxBodyBytes: 65536, exchangePerAddressPerMinute: LIMIT, exchangePerSubjectPerMinute: 0 } },
    });
  });
  afterAll(async () => {
    await g?.close();
  });
  const GET_CALLER_IDENTITY = { Action: 'GetCallerIdentity', Version: '2011-06-15' };
  const from = (peer: string, forwardedFor: string) => postFrom(peer, g.url, '/', GET_CALLER_IDENTITY, { 'x-forwarded-for': forwardedFor });
  /** The client address the access log wrote for a response. */
  const loggedClient = (response: { headers: Record<string, string | string[] | undefined> }) =>
    g.gateway.logs().find((l) => l.requestId === response.headers['x-request-id'] && l.msg === 'request')?.client;

  it('through a trusted proxy: counts the address the proxy saw, not the proxy, and not what the client wrote in front of it', async () => {
    await withinOneWindow();
    for (let i = 0; i < LIMIT; i++) expect((await from('127.0.0.1', `198.51.100.${i}, 203.0.113.7`)).status).toBe(403);
    // Same client behind the proxy, whatever it claims further left: throttled.
    const over = await from('127.0.0.1', '192.0.2.99, 203.0.113.7');
    expect(over.body).toContain('<Code>Throttling</Code>');
    expect(loggedClient(over)).toBe('203.0.113.7');
    // Another client behind the same proxy: not affected.
    expect((await from('127.0.0.1', '203.0.113.8')).status).toBe(403);
  });

  it('skips every trusted proxy from the right (addresses, IPv4 and IPv6 ranges): the client is the first address that is not one', async () => {
    await withinOneWindow();
    const seen: unknown[] = [];
    for (let i = 0; i < LIMIT; i++) {
      const response = await from('127.0.0.1', `192.0.2.${i}, 203.0.113.20, fd00::${i + 1}, 10.${i}.0.1, 127.0.0.1`);
      expect(response.status).toBe(403);
      seen.push(loggedClient(response));
    }
    expect(seen).toEqual(['203.0.113.20', '203.0.113.20', '203.0.113.20']);
    expect((await from('127.0.0.1', '203.0.113.20, 10.9.9.9')).body).toContain('<Code>Throttling</Code>');
  });

  it('a client reaching the port directly is counted by its own address, whatever X-Forwarded-For it writes', async () => {
    await withinOneWindow();
    const responses = [];
    for (let i = 0; i < LIMIT; i++) responses.push(await from('127.0.0.2', `198.51.100.${100 + i}`));
    expect(responses.map((r) => r.status)).toEqual([403, 403, 403]);
    expect(responses.map(loggedClient)).toEqual(['127.0.0.2', '127.0.0.2', '127.0.0.2']);
    const over = await from('127.0.0.2', '198.51.100.200, 10.0.0.1');
    expect(over.body).toContain('<Code>Throttling</Code>');
  });

  it('an X-Forwarded-For entry that is not an address ends the walk at the trusted hop before it', async () => {
    const response = await from('127.0.0.1', '203.0.113.30, not-an-address, 10.1.2.3');
    expect(loggedClient(response)).toBe('10.1.2.3');
  });

  it("the audit line of an issuance names the forwarded client address", async () => {
    const response = await postFrom('127.0.0.1', g.url, '/', { Action: 'AssumeRoleWithWebIdentity', Version: '2011-06-15', RoleArn: DEPLOYER_ARN, RoleSessionName: session(), WebIdentityToken: await idp.mint({ ...MAIN, sub: `s-${Math.random()}` }) }, { 'x-forwarded-for': '203.0.113.40' });
    expect(response.status).toBe(200);
    const issued = g.gateway.logs().find((l) => l.requestId === response.headers['x-request-id'] && l.event === 'issued');
    expect(issued).toMatchObject({ client: '203.0.113.40' });
  });
});

describe('TrustedProxies.clientAddress', () => {
  const trusted = new TrustedProxies(['127.0.0.1', '10.0.0.0/8', 'fd00::/8']);
  it.each<[string, string | undefined, string]>([
    ['127.0.0.1', undefined, '127.0.0.1'],
    ['127.0.0.1', '203.0.113.5', '203.0.113.5'],
    ['::ffff:127.0.0.1', '203.0.113.5', '203.0.113.5'],
    ['127.0.0.2', '203.0.113.5', '127.0.0.2'],
    ['::ffff:127.0.0.2', '203.0.113.5', '::ffff:127.0.0.2'],
    ['fd00::1', '2001:db8::5', '2001:db8::5'],
    ['fd00::1', '2001:db8::5, fd12::7', '2001:db8::5'],
    ['fe80::1', '2001:db8::5', 'fe80::1'],
    ['127.0.0.1', '192.0.2.1, 203.0.113.5, 10.0.0.9', '203.0.113.5'],
    ['127.0.0.1', '10.0.0.1, 10.0.0.2', '10.0.0.1'],
    ['127.0.0.1', '203.0.113.5:4711', '127.0.0.1'],
    ['127.0.0.1', '203.0.113.5, ', '127.0.0.1'],
    ['127.0.0.1', 'unknown, 10.0.0.3', '10.0.0.3'],
  ])('a connection from %s with X-Forwarded-For %j is the client %s', (peer, forwardedFor, client) => {
    expect(trusted.clientAddress(peer, forwardedFor)).toBe(client);
  });

  it('with no trusted proxies, X-Forwarded-For is never read', () => {
    expect(new TrustedProxies([]).clientAddress('127.0.0.1', '203.0.113.5')).toBe('127.0.0.1');
  });
});

describe('ExchangeRateLimits (fixed one-minute windows)', () => {
  it('resets at the next window, and Retry-After counts down to it', async () => {
    let now = Date.UTC(2030, 0, 1, 0, 0, 30);
    const limits = new ExchangeRateLimits(new MemoryStore({ now: () => now }), { perAddressPerMinute: 2, perSubjectPerMinute: 0 }, () => now);
    await limits.countAddress('10.0.0.1');
    await limits.countAddress('10.0.0.1');
    const refused = await limits.countAddress('10.0.0.1').catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(GatewayError);
    expect(refused).toMatchObject({ code: 'Throttling', headers: { 'Retry-After': '30' } });
    now += 29_000;
    expect(await limits.countAddress('10.0.0.1').catch((e: unknown) => (e as GatewayError).headers['Retry-After'])).toBe('1');
    now += 1_000;
    await expect(limits.countAddress('10.0.0.1')).resolves.toBeUndefined();
  });

  it('0 turns a limit off', async () => {
    const limits = new ExchangeRateLimits(new MemoryStore(), { perAddressPerMinute: 0, perSubjectPerMinute: 0 });
    for (let i = 0; i < 100; i++) await limits.countAddress('10.0.0.1');
    for (let i = 0; i < 100; i++) await limits.countSubject({ source: 's', subject: 'x' });
  });

  it.each([
    ['127.0.0.1', '127.0.0.1'],
    ['::ffff:10.1.2.3', '10.1.2.3'],
    ['2001:db8:1:2:3:4:5:6', '2001:db8:1:2::/64'],
    ['2001:db8:1:2:ffff::1', '2001:db8:1:2::/64'],
    ['2001:DB8:0001:0002::', '2001:db8:1:2::/64'],
    ['::1', '0:0:0:0::/64'],
    ['fe80::1%eth0', 'fe80:0:0:0::/64'],
  ])('address %s is counted as %s', (address, bucket) => {
    expect(addressBucket(address)).toBe(bucket);
  });
});

describe('configuration', () => {
  const base = (limits: string) => `public_url: https://sts.example.com\naccount_id: "123456789012"\n${limits}`;
  it('defaults to 600 per address and 300 per subject per minute', () => {
    expect(parseConfig(base('')).limits).toMatchObject({ exchangePerAddressPerMinute: 600, exchangePerSubjectPerMinute: 300 });
  });
  it('takes 0 to turn a limit off', () => {
    expect(parseConfig(base('limits: { exchange_per_address_per_minute: 0, exchange_per_subject_per_minute: 0 }')).limits).toMatchObject({ exchangePerAddressPerMinute: 0, exchangePerSubjectPerMinute: 0 });
  });
  it('listen.trusted_proxies defaults to none (the connection address) and takes IPv4 and IPv6 addresses and CIDR ranges', () => {
    expect(parseConfig(base('')).listen.trustedProxies).toEqual([]);
    expect(parseConfig(base('listen: { trusted_proxies: [10.0.0.0/8, 127.0.0.1, "fd00::/8", "2001:db8::1", 192.168.1.0/024] }')).listen.trustedProxies).toEqual(['10.0.0.0/8', '127.0.0.1', 'fd00::/8', '2001:db8::1', '192.168.1.0/24']);
  });

  it.each([
    ['1', 'listen.trusted_proxies: found 1, expected a list of the proxies\' addresses or CIDR ranges, such as [10.0.0.0/8, 127.0.0.1]: a count of proxies is no longer taken'],
    ['0', 'listen.trusted_proxies: found 0, expected a list of the proxies\' addresses'],
    ['"2"', 'listen.trusted_proxies: found "2", expected a list of the proxies\' addresses'],
    ['[10.0.0.0/33]', 'listen.trusted_proxies[0]: found "10.0.0.0/33", expected an IPv4 or IPv6 address or a CIDR range'],
    ['["fd00::/129"]', 'listen.trusted_proxies[0]: found "fd00::/129", expected an IPv4 or IPv6 address or a CIDR range'],
    ['[127.0.0.1, proxy.internal]', 'listen.trusted_proxies[1]: found "proxy.internal", expected an IPv4 or IPv6 address or a CIDR range'],
    ['[10.0.0.1/8/8]', 'listen.trusted_proxies[0]: found "10.0.0.1/8/8", expected an IPv4 or IPv6 address'],
    ['[0.0.0.0/0]', 'listen.trusted_proxies[0]: found "0.0.0.0/0", expected a range narrower than every address'],
    ['["::/0"]', 'listen.trusted_proxies[0]: found "::/0", expected a range narrower than every address'],
    ['[8]', 'listen.trusted_proxies[0]: found 8, expected an IPv4 or IPv6 address or a CIDR range'],
  ])('listen.trusted_proxies: %s is refused, saying where and what is allowed', (value, message) => {
    expect(() => parseConfig(base(`listen: { trusted_proxies: ${value} }`))).toThrow(message);
  });
  it('refuses a negative limit, saying where and what is allowed', () => {
    expect(() => parseConfig(base('limits: { exchange_per_subject_per_minute: -1 }'))).toThrow('limits.exchange_per_subject_per_minute: found -1, expected an integer in 0..1000000');
  });
});
