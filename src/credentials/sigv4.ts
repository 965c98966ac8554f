import { createHash, createHmac, timingSafeEqual, type Hash, type Hmac } from 'node:crypto';
import { SignatureV4 } from '@smithy/signature-v4';
import { GatewayError } from '../errors/gateway-error.js';
import type { CredentialService, LiveSession } from './credential-service.js';
import { sessionIdFromAccessKeyId } from './identifiers.js';

/** An incoming HTTP request, as much of it as SigV4 covers. */
export interface SignedRequest {
  method: string;
  /** The path as received (before any decoding). */
  path: string;
  /** The raw query string, without `?`. */
  querystring: string;
  /** Lower-cased header names. */
  headers: Readonly<Record<string, string | string[] | undefined>>;
  body: Buffer;
}

/** AWS allows 15 minutes between the signing time and the server's clock. */
const MAX_CLOCK_SKEW_MS = 15 * 60 * 1000;
const AUTHORIZATION = /^AWS4-HMAC-SHA256 Credential=([^/,\s]+)\/(\d{8})\/([a-z0-9-]+)\/([a-z0-9-]+)\/aws4_request, ?SignedHeaders=([a-z0-9;_.-]+), ?Signature=([0-9a-f]{64})$/;
const AMZ_DATE = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/;

/**
 * Verifies an AWS Signature Version 4 request signed with stsgate-issued keys. The signature is
 * recomputed by the AWS SDK's own signer (@smithy/signature-v4) over exactly the headers the client
 * signed, then compared in constant time; nothing of the canonical-request algorithm is hand-written
 * (only its hash primitive comes from node:crypto, as in the SDK on Node).
 * Returns the caller's session; throws AWS's error codes.
 */
export async function verifySigV4(request: SignedRequest, credentials: CredentialService, now: number = Date.now()): Promise<LiveSession> {
  const authorization = single(request.headers.authorization);
  if (authorization === undefined) {
    throw new GatewayError('MissingAuthenticationToken', 'Request is missing Authentication Token');
  }
  const match = AUTHORIZATION.exec(authorization);
  if (!match) {
    throw new GatewayError('IncompleteSignature', 'Authorization header requires a valid AWS4-HMAC-SHA256 Credential, SignedHeaders and Signature.');
  }
  const [, accessKeyId, shortDate, region, service, signedHeaderList, signature] = match as unknown as [string, string, string, string, string, string, string];
  const signedHeaders = signedHeaderList.split(';');
  if (service !== 'sts') throw new GatewayError('SignatureDoesNotMatch', `Credential should be scoped to correct service: 'sts'.`);
  if (!signedHeaders.includes('host')) throw new GatewayError('SignatureDoesNotMatch', "'Host' must be a signed header.");

  const amzDate = single(request.headers['x-amz-date']);
  const dateParts = amzDate === undefined ? null : AMZ_DATE.exec(amzDate);
  if (!dateParts || !signedHeaders.includes('x-amz-date')) {
    throw new GatewayError('IncompleteSignature', 'Authorization header requires existence of a signed X-Amz-Date header.');
  }
  const [, y, mo, d, h, mi, s] = dateParts.map(Number) as [number, number, number, number, number, number, number];
  const signingDate = new Date(Date.UTC(y, mo - 1, d, h, mi, s));
  if (amzDate!.slice(0, 8) !== shortDate) throw new GatewayError('SignatureDoesNotMatch', 'Credential should be scoped to a valid date.');
  if (Math.abs(now - signingDate.getTime()) > MAX_CLOCK_SKEW_MS) {
    throw new GatewayError('SignatureDoesNotMatch', `Signature expired: ${amzDate} is now earlier or later than allowed (15 minutes of clock skew).`);
  }

  // Who is calling: the access key id names the session, the session token must be the session's own.
  const sessionId = sessionIdFromAccessKeyId(accessKeyId);
  const sessionToken = single(request.headers['x-amz-security-token']);
  if (sessionId === undefined || sessionToken === undefined) {
    throw new GatewayError('InvalidClientTokenId', 'The security token included in the request is invalid.');
  }
  if (!signedHeaders.includes('x-amz-security-token')) {
    throw new GatewayError('SignatureDoesNotMatch', 'The X-Amz-Security-Token header must be signed.');
  }
  const token = credentials.readSessionToken(sessionToken);
  if (token === undefined || token.sessionId !== sessionId) {
    throw new GatewayError('InvalidClientTokenId', 'The security token included in the request is invalid.');
  }
  if (token.exp <= now / 1000) throw new GatewayError('ExpiredToken', 'The security token included in the request is expired');
  const session = await credentials.findSession(sessionId);
  if (!session || !credentials.sessionTokenMatches(session, sessionToken)) {
    throw new GatewayError('InvalidClientTokenId', 'The security token included in the request is invalid.');
  }

  const headers: Record<string, string> = {};
  for (const name of signedHeaders) {
    const value = request.headers[name];
    if (value === undefined) throw new GatewayError('SignatureDoesNotMatch', `Signed header ${name} is missing from the request.`);
    headers[name] = Array.isArray(value) ? value.join(',') : value;
  }
  // The signer takes a present x-amz-content-sha256 header as the payload hash instead of hashing the body
  // (that is how S3 streams and unsigned payloads work). Trusted as is, it would unbind the body from the
  // signature: a captured request could be replayed with another RoleArn or DurationSeconds. The header
  // must be the body's real hash; UNSIGNED-PAYLOAD and streaming forms mean nothing for STS.
  const claimedHash = request.headers['x-amz-content-sha256'];
  if (claimedHash !== undefined && claimedHash !== createHash('sha256').update(request.body).digest('hex')) {
    throw new GatewayError('SignatureDoesNotMatch', "The provided 'x-amz-content-sha256' header does not match what was computed.");
  }
  const signer = new SignatureV4({
    service,
    region,
    sha256: NodeSha256,
    applyChecksum: false,
    credentials: { accessKeyId, secretAccessKey: session.secrets.secretAccessKey, sessionToken },
  });
  const signed = await signer.sign(
    {
      method: request.method,
      protocol: 'https:',
      hostname: headers.host ?? '',
      path: request.path,
      query: parseQuery(request.querystring),
      headers,
      body: request.body,
    },
    { signingDate, signableHeaders: new Set(signedHeaders) },
  );
  const expected = /Signature=([0-9a-f]{64})$/.exec(String(signed.headers.authorization))?.[1] ?? '';
  const expectedList = /SignedHeaders=([^,]+),/.exec(String(signed.headers.authorization))?.[1];
  if (expectedList !== signedHeaderList || expected.length !== signature.length || !timingSafeEqual(Buffer.from(expected), Buffer.from(signature))) {
    throw new GatewayError(
      'SignatureDoesNotMatch',
      'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.',
    );
  }
  return session;
}

type SourceData = string | ArrayBuffer | ArrayBufferView;

/**
 * SHA-256 and HMAC-SHA-256 for the SDK's signer through node:crypto, the Checksum interface the AWS SDK
 * itself uses on Node (@smithy/hash-node). The pure-JavaScript @aws-crypto/sha256-js it replaces made
 * every verification slower (bench/README.md, "What changed").
 */
class NodeSha256 {
  readonly #secret: SourceData | undefined;
  #hash!: Hash | Hmac;

  constructor(secret?: SourceData) {
    this.#secret = secret;
    this.reset();
  }

  update(data: SourceData): void {
    this.#hash.update(toBuffer(data));
  }

  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.#hash.digest());
  }

  reset(): void {
    this.#hash = this.#secret === undefined ? createHash('sha256') : createHmac('sha256', toBuffer(this.#secret));
  }
}

function toBuffer(data: SourceData): Buffer {
  if (typeof data === 'string') return Buffer.from(data, 'utf8');
  if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return Buffer.from(data);
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? undefined : value;
}

function parseQuery(querystring: string): Record<string, string | string[]> {
  const query: Record<string, string | string[]> = {};
  for (const [key, value] of new URLSearchParams(querystring)) {
    const existing = query[key];
    query[key] = existing === undefined ? value : Array.isArray(existing) ? [...existing, value] : [existing, value];
  }
  return query;
}
