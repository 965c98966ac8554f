/**
 * Shared pieces of the hostile-input suite: a gateway on the real Redis under its own prefix, requests in
 * both protocols, hand-made tokens, and the one check every hostile case ends with: the exact status and
 * protocol error code, and nothing issued, cached or stored.
 */
import { createPrivateKey, KeyObject, sign as cryptoSign } from 'node:crypto';
import { Redis } from 'ioredis';
import type { CryptoKey } from 'jose';
import { expect } from 'vitest';
import { TOKEN_EXCHANGE_GRANT, TOKEN_TYPE } from '../../src/http/oauth.js';
import type { StoreConfig } from '../../src/config/types.js';
import { awsErrorCode, REDIS_URL, redisStoreConfig, startTestGateway, type TestGateway, type TestGatewayOptions } from '../support/gateway.js';
import { ACCOUNT_ID } from '../support/common.js';

export const DEPLOYER_ARN = `arn:aws:iam::${ACCOUNT_ID}:role/deployer`;
export const MAIN = { repository: 'acme/app', ref: 'refs/heads/main' } as const;

/** An error as the client sees it: HTTP status and protocol error code. */
export type Expected = readonly [status: number, code: string];

/**
 * How each gateway error surfaces under OAuth (RFC 6749 §5.2 / RFC 8693 §2.2.2), written out here rather
 * than derived from the implementation, so the mapping itself is under test.
 */
export const OAUTH_EQUIVALENT: Record<string, Expected> = {
  InvalidIdentityToken: [400, 'invalid_request'],
  ExpiredTokenException: [400, 'invalid_request'],
  IDPCommunicationError: [503, 'temporarily_unavailable'],
  AccessDenied: [400, 'invalid_target'],
  ValidationError: [400, 'invalid_request'],
  ServiceUnavailable: [503, 'temporarily_unavailable'],
  Throttling: [429, 'slow_down'],
  PayloadTooLarge: [413, 'invalid_request'],
  UnsupportedMediaType: [415, 'invalid_request'],
};

/** The AWS form of a request: either form fields (merged over a valid AssumeRoleWithWebIdentity) or a raw body. */
export type RawRequest = { raw: string | Buffer; contentType?: string | null; query?: string; headers?: Record<string, string> };

const RAW_KEYS = ['raw', 'contentType', 'query', 'headers'];
/** A raw request has `raw` and nothing but the other raw options; anything else is form fields. */
export function isRawRequest(input: object): input is RawRequest {
  return Object.hasOwn(input, 'raw') && Object.keys(input).every((k) => RAW_KEYS.includes(k));
}

export interface SecurityGateway {
  gateway: TestGateway;
  url: string;
  prefix: string;
  redis: Redis;
  /**
   * Keys under the gateway's prefix, rate-limit counters excluded (they are expected to move). Compare
   * with `addedKeys`: a key that expires meanwhile (a short-lived session a test made) is not a write.
   */
  storedKeys(): Promise<string[]>;
  /** `issued` audit events so far. */
  issuedCount(): number;
  close(): Promise<void>;
}

/**
 * The shared Redis, in a database of its own: counting keys (KEYS prefix*) walks the whole database, and
 * database 0 holds whatever every other test and benchmark left there.
 */
export const SECURITY_DB = 9;

export function securityStore(): StoreConfig {
  const url = new URL(REDIS_URL);
  url.pathname = `/${SECURITY_DB}`;
  return { ...redisStoreConfig(), url: url.toString() } as StoreConfig;
}

/** A gateway on the shared Redis (own database, fresh prefix) and a client to count what it stores. */
export async function startSecurityGateway(options: TestGatewayOptions): Promise<SecurityGateway> {
  const store = options.store ?? securityStore();
  const gateway = await startTestGateway({ ...options, store });
  const redis = new Redis(store.kind === 'standalone' ? store.url : REDIS_URL, { maxRetriesPerRequest: 1 });
  redis.on('error', () => {});
  const prefix = 'prefix' in store ? store.prefix : '';
  return {
    gateway,
    url: gateway.url,
    prefix,
    redis,
    async storedKeys() {
      const keys = await redis.keys(`${prefix}*`);
      return keys.filter((k) => !k.startsWith(`${prefix}rl:`));
    },
    issuedCount() {
      return gateway.logs().filter((l) => l.log === 'audit' && l.event === 'issued').length;
    },
    async close() {
      await gateway.close();
      redis.disconnect();
    },
  };
}

/** POSTs to the STS endpoint: fields merged over a valid AssumeRoleWithWebIdentity (undefined removes one), or a raw body. */
export async function postSts(url: string, input: Record<string, string | undefined> | RawRequest, base: Record<string, string> = {}): Promise<Response> {
  if (isRawRequest(input)) return postRaw(`${url}/`, input);
  const form = { Action: 'AssumeRoleWithWebIdentity', Version: '2011-06-15', RoleArn: DEPLOYER_ARN, RoleSessionName: 'ci', ...base, ...input };
  return postRaw(`${url}/`, { raw: encodeForm(form) });
}

/** POSTs to `/oauth2/token`: fields merged over a valid RFC 8693 exchange (undefined removes one), or a raw body. */
export async function postOAuth(url: string, input: Record<string, string | undefined> | RawRequest, base: Record<string, string> = {}): Promise<Response> {
  if (isRawRequest(input)) return postRaw(`${url}/oauth2/token`, input);
  const form = { grant_type: TOKEN_EXCHANGE_GRANT, subject_token_type: TOKEN_TYPE.jwt, audience: 'deployer', ...base, ...input };
  return postRaw(`${url}/oauth2/token`, { raw: encodeForm(form) });
}

export function encodeForm(form: Record<string, string | undefined>): string {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(form)) if (v !== undefined) params.append(k, v);
  return params.toString();
}

export async function postRaw(url: string, input: RawRequest): Promise<Response> {
  const headers: Record<string, string> = { ...input.headers };
  const contentType = input.contentType === undefined ? 'application/x-www-form-urlencoded' : input.contentType;
  if (contentType !== null) headers['content-type'] = contentType;
  return fetch(`${url}${input.query === undefined ? '' : `?${input.query}`}`, { method: 'POST', headers, body: input.raw });
}

/**
 * Sends one hostile request and checks the whole outcome: the exact status and code in the protocol's
 * format, no credential in the body, nothing new in the store and no `issued` audit event.
 */
export async function expectRefused(
  g: SecurityGateway,
  protocol: 'aws' | 'oauth',
  expected: Expected,
  send: () => Promise<Response>,
): Promise<{ body: string; res: Response }> {
  const keysBefore = await g.storedKeys();
  const issuedBefore = g.issuedCount();
  const res = await send();
  const body = await res.text();
  expectProtocolError(protocol, res, body, expected);
  expect(addedKeys(keysBefore, await g.storedKeys()), 'nothing stored').toEqual([]);
  expect(g.issuedCount(), 'nothing issued').toBe(issuedBefore);
  return { body, res };
}

/** The keys in `after` that were not in `before`: what a request stored. */
export function addedKeys(before: readonly string[], after: readonly string[]): string[] {
  const had = new Set(before);
  return after.filter((key) => !had.has(key));
}

/** The response is the protocol's error format with exactly this status and code, and carries no credential. */
export function expectProtocolError(protocol: 'aws' | 'oauth', res: Response, body: string, [status, code]: Expected): void {
  const shown = `${res.status} ${body.slice(0, 400)}`;
  expect(res.status, shown).toBe(status);
  if (protocol === 'aws') {
    expect(res.headers.get('content-type'), shown).toMatch(/^text\/xml/);
    expect(body, shown).toMatch(/^<ErrorResponse xmlns="https:\/\/sts\.amazonaws\.com\/doc\/2011-06-15\/">/);
    expect(awsErrorCode(body), shown).toBe(code);
    expect(body).toMatch(/<RequestId>[0-9a-f-]{36}<\/RequestId>/);
    expect(body).not.toMatch(/<Credentials>|<AccessKeyId>|<SecretAccessKey>/);
  } else {
    expect(res.headers.get('content-type'), shown).toMatch(/^application\/json/);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const json = JSON.parse(body) as Record<string, unknown>;
    expect(json.error, shown).toBe(code);
    expect(typeof json.error_description).toBe('string');
    expect(json).not.toHaveProperty('access_token');
    expect(json).not.toHaveProperty('aws_credentials');
  }
}

/** The OAuth status and code for an AWS code, from the table above. */
export function oauthFor(awsCode: string): Expected {
  const found = OAUTH_EQUIVALENT[awsCode];
  if (!found) throw new Error(`no OAuth equivalent written down for ${awsCode}`);
  return found;
}

export const b64 = (value: unknown): string => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');

/** A token with a hand-written header and payload (objects, or raw JSON text) and an arbitrary signature. */
export function handmade(header: unknown, payload: unknown, signature = 'c2lnbmF0dXJl'): string {
  return `${b64(header)}.${b64(payload)}.${signature}`;
}

const SIGNING_HASH: Record<string, { hash: string; ec?: boolean; pss?: boolean }> = {
  RS256: { hash: 'sha256' },
  RS384: { hash: 'sha384' },
  RS512: { hash: 'sha512' },
  PS256: { hash: 'sha256', pss: true },
  ES256: { hash: 'sha256', ec: true },
};

/**
 * Signs exactly these header and payload bytes (raw JSON text, so duplicate member names survive) with
 * `key`, as `alg` would: what a real issuer with a sloppy JSON writer, or an attacker with a key, produces.
 */
export function signRaw(headerJson: string, payloadJson: string, key: CryptoKey | KeyObject, alg = 'RS256'): string {
  const input = `${b64(headerJson)}.${b64(payloadJson)}`;
  const keyObject = key instanceof KeyObject ? key : KeyObject.from(key);
  const spec = SIGNING_HASH[alg];
  if (!spec) throw new Error(`signRaw does not do ${alg}`);
  const signature = cryptoSign(spec.hash, Buffer.from(input), {
    key: keyObject,
    ...(spec.ec ? { dsaEncoding: 'ieee-p1363' as const } : {}),
    ...(spec.pss ? { padding: 6, saltLength: 32 } : {}),
  });
  return `${input}.${signature.toString('base64url')}`;
}

/** HMAC "signature" over a header and payload with `secret` (the alg-confusion attack of RFC 8725 §2.1). */
export async function hmacToken(header: Record<string, unknown>, payload: Record<string, unknown>, secret: Uint8Array | string, hash = 'sha256'): Promise<string> {
  const { createHmac } = await import('node:crypto');
  const input = `${b64(header)}.${b64(payload)}`;
  return `${input}.${createHmac(hash, secret).update(input).digest('base64url')}`;
}

/** Replaces a compact token's header, keeping its payload and signature. */
export function reheader(token: string, header: Record<string, unknown>): string {
  const [, payload, signature] = token.split('.');
  return `${b64(header)}.${payload}.${signature}`;
}

/** Replaces claims in a compact token's payload, keeping its header and signature. */
export function tamper(token: string, claims: Record<string, unknown>): string {
  const [header, payload, signature] = token.split('.') as [string, string, string];
  const decoded = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Record<string, unknown>;
  return `${header}.${b64({ ...decoded, ...claims })}.${signature}`;
}

/** A PEM private key as a KeyObject (for signRaw with keys made by node:crypto). */
export const privateKeyFromPem = (pem: string): KeyObject => createPrivateKey(pem);

export const nowSeconds = (): number => Math.floor(Date.now() / 1000);

/** AWS-style keys as the STS endpoints hand them out. */
export interface AwsKeys {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken: string;
}

/** The keys in an AssumeRole* XML response or an RFC 8693 JSON response. */
export function keysFrom(body: string): AwsKeys & { accessToken?: string } {
  if (body.startsWith('{')) {
    const json = JSON.parse(body) as { access_token: string; aws_credentials: { AccessKeyId: string; SecretAccessKey: string; SessionToken: string } };
    return { accessKeyId: json.aws_credentials.AccessKeyId, secretAccessKey: json.aws_credentials.SecretAccessKey, sessionToken: json.aws_credentials.SessionToken, accessToken: json.access_token };
  }
  const get = (name: string) => new RegExp(`<${name}>([^<]+)</${name}>`).exec(body)?.[1] ?? '';
  return { accessKeyId: get('AccessKeyId'), secretAccessKey: get('SecretAccessKey'), sessionToken: get('SessionToken') };
}

/** A SigV4-signed POST to the STS endpoint, signed as the AWS SDK signs it. */
export async function signedStsPost(url: string, keys: AwsKeys, form: Record<string, string>): Promise<Response> {
  const { SignatureV4 } = await import('@smithy/signature-v4');
  const { Sha256 } = await import('@aws-crypto/sha256-js');
  const target = new URL(url);
  const body = encodeForm(form);
  const signer = new SignatureV4({ service: 'sts', region: 'us-east-1', sha256: Sha256, applyChecksum: false, credentials: keys });
  const signed = await signer.sign({ method: 'POST', protocol: 'http:', hostname: target.hostname, port: Number(target.port), path: '/', headers: { host: target.host, 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' }, body });
  const headers = { ...(signed.headers as Record<string, string>) };
  delete headers.host;
  return fetch(`${url}/`, { method: 'POST', headers, body });
}

/**
 * Waits, when fewer than `roomMs` are left in the current minute, for the next one. The exchange limits
 * count in fixed one-minute windows (src/limits/rate-limits.ts): a test that spends an allowance and then
 * expects the next request refused must do it all in one window, or the count starts over in between.
 */
export async function withinOneWindow(roomMs = 5_000): Promise<void> {
  const left = 60_000 - (Date.now() % 60_000);
  if (left < roomMs) await new Promise((resolve) => setTimeout(resolve, left + 50));
}
