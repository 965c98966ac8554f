/**
 * Bounded HTTP GETs to an identity provider (discovery documents and JWKS). Every byte that comes from
 * an issuer's host is untrusted: the response must be 200, arrive before the deadline, and fit in a
 * size limit, so a broken or hostile IdP can cost us one bounded request and nothing more.
 */

/** A discovery or JWKS request that failed on the IdP's side (unreachable, non-200, too big, not JSON). */
export class IdpFetchError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'IdpFetchError';
  }
}

export interface IdpFetchOptions {
  signal: AbortSignal;
  maxBytes: number;
  headers?: Headers | Record<string, string>;
}

/** The User-Agent stsgate sends to identity providers. */
export const IDP_USER_AGENT = 'stsgate';

/**
 * GETs `url` and returns its body, refusing redirects, any status but 200 and bodies over `maxBytes`.
 * Redirects are refused rather than followed: a key set is trusted because of where it lives, and a
 * 3xx would let that place change without the configuration saying so.
 */
export async function fetchIdpBody(url: string, options: IdpFetchOptions): Promise<Uint8Array> {
  let response: Response;
  try {
    response = await fetch(url, { method: 'GET', redirect: 'manual', signal: options.signal, headers: options.headers });
  } catch (err) {
    throw rethrowable(err, options.signal, `request to ${url} failed`);
  }
  if (response.status !== 200) {
    await response.body?.cancel().catch(() => undefined);
    throw new IdpFetchError(`${url} answered HTTP ${response.status}, expected 200`);
  }
  const declared = Number(response.headers.get('content-length'));
  if (Number.isFinite(declared) && declared > options.maxBytes) {
    await response.body?.cancel().catch(() => undefined);
    throw new IdpFetchError(`${url} declared ${declared} bytes, more than the ${options.maxBytes}-byte limit`);
  }
  let body: Buffer | undefined;
  try {
    body = await readCappedBody(response.body, options.maxBytes);
  } catch (err) {
    throw rethrowable(err, options.signal, `reading the response of ${url} failed`);
  }
  if (body === undefined) throw new IdpFetchError(`${url} sent more than the ${options.maxBytes}-byte limit`);
  return body;
}

/**
 * Reads a response body, stopping as soon as it passes `maxBytes`: then the stream is cancelled and the
 * answer is undefined. Read errors are thrown as they come, for the caller to name.
 */
export async function readCappedBody(stream: ReadableStream<Uint8Array> | null, maxBytes: number): Promise<Buffer | undefined> {
  if (!stream) return Buffer.alloc(0);
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      await reader.cancel().catch(() => undefined);
      return undefined;
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks);
}

/** GETs `url` and parses it as a JSON object (OpenID Connect Discovery 1.0 §4.2: a JSON object). */
export async function fetchIdpJsonObject(url: string, options: IdpFetchOptions): Promise<Record<string, unknown>> {
  const body = await fetchIdpBody(url, options);
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(body));
  } catch (cause) {
    throw new IdpFetchError(`${url} did not return JSON`, { cause });
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new IdpFetchError(`${url} did not return a JSON object`);
  }
  return parsed as Record<string, unknown>;
}

/**
 * Timeouts keep their DOMException name (`TimeoutError`) so jose can report them as `JWKSTimeout`;
 * everything else becomes an IdpFetchError.
 */
function rethrowable(err: unknown, signal: AbortSignal, what: string): Error {
  if (signal.aborted) {
    const reason: unknown = signal.reason;
    if (reason instanceof Error && reason.name === 'TimeoutError') return reason;
    return new IdpFetchError(`${what}: aborted`, { cause: err });
  }
  const detail = err instanceof Error ? (err.cause instanceof Error ? err.cause.message : err.message) : String(err);
  return new IdpFetchError(`${what}: ${detail}`, { cause: err });
}
