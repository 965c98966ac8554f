/**
 * Shape checks on a token before anything trusts it. Only the compact JWS serialization of a signed
 * JWT is accepted: three base64url segments, a JSON-object header and a JSON-object payload. JWE (five
 * segments), the JSON serializations, unsecured JWTs (empty signature), `crit` headers and JSON that
 * repeats a member name are refused here, before any key is looked up or fetched.
 */

import { GatewayError } from '../errors/gateway-error.js';

/** The header and claims of a token whose signature has NOT been checked yet. */
export interface UntrustedJwt {
  readonly header: Readonly<Record<string, unknown>>;
  readonly payload: Readonly<Record<string, unknown>>;
}

/** RFC 7515 §2 / RFC 4648 §5: base64url without padding; empty segments are refused. */
const BASE64URL_SEGMENT = /^[A-Za-z0-9_-]+$/;

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Splits and decodes a compact JWT without verifying it, throwing InvalidIdentityToken when it is not
 * shaped like one. The result may only be used to pick the issuer whose keys will verify it.
 */
export function decodeUntrustedJwt(token: unknown, maxLength: number): UntrustedJwt {
  if (typeof token !== 'string' || token.length === 0) throw malformed('the token is missing or not a string');
  // AWS caps WebIdentityToken at 20000 characters; the cap also bounds the work done on a hostile input.
  if (token.length > maxLength) throw malformed(`the token is longer than ${maxLength} characters`, `length ${token.length}`);

  const segments = token.split('.');
  if (segments.length !== 3) {
    // RFC 7516 §9: five segments is a JWE. Encrypted tokens are not accepted by this gateway.
    throw malformed('the token must be a signed JWT in compact serialization (three base64url segments)', `${segments.length} segments`);
  }
  const [headerSegment, payloadSegment, signatureSegment] = segments as [string, string, string];
  if (![headerSegment, payloadSegment, signatureSegment].every((segment) => BASE64URL_SEGMENT.test(segment))) {
    // An empty third segment is an unsecured JWT (RFC 7519 §6); RFC 8725 §3.1 forbids accepting it.
    throw malformed('the token must be a signed JWT in compact serialization (three base64url segments)', 'a segment is empty or not base64url');
  }

  const header = decodeJsonObject(headerSegment, 'header');
  const payload = decodeJsonObject(payloadSegment, 'payload');

  // RFC 7515 §4.1.11: a recipient must refuse critical extensions it does not understand, and stsgate
  // understands none.
  if ('crit' in header) throw malformed('the token header carries "crit" extensions, which are not supported', 'crit present');
  if (typeof header['alg'] !== 'string' || header['alg'] === '') throw malformed('the token header has no "alg"', 'alg missing');
  return { header, payload };
}

function decodeJsonObject(segment: string, part: 'header' | 'payload'): Record<string, unknown> {
  let value: unknown;
  let text: string;
  try {
    text = utf8.decode(Buffer.from(segment, 'base64url'));
    value = JSON.parse(text);
  } catch {
    throw malformed(`the token ${part} is not base64url-encoded JSON`, `${part} not JSON`);
  }
  // RFC 7519 §7.2 steps 4 and 10: the JOSE header and the claims set are JSON objects.
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw malformed(`the token ${part} is not a JSON object`, `${part} not an object`);
  }
  // RFC 7515 §5.2 and RFC 7519 §4 let a parser either refuse duplicate member names or keep the last one.
  // Keeping the last one makes `{"alg":"none",...,"alg":"RS256"}` or a claim named twice mean one thing
  // here and another to any reader that keeps the first, so a token that repeats a name is refused.
  if (repeatsMemberName(text)) throw malformed(`the token ${part} repeats a member name`, `${part} duplicate member`);
  return value as Record<string, unknown>;
}

/**
 * Whether JSON text (already known to parse) has an object that names one member twice. Names are compared
 * after unescaping, so `"ref"` and `"r\u0065f"` are the same name. One pass, no recursion.
 */
export function repeatsMemberName(text: string): boolean {
  // One entry per open container: the member names seen so far for an object, null for an array.
  const open: (Set<string> | null)[] = [];
  let expectName = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === '"') {
      let end = i + 1;
      let escaped = false;
      while (text[end] !== '"') {
        if (text[end] === '\\') {
          escaped = true;
          end++;
        }
        end++;
      }
      const names = open.at(-1);
      if (expectName && names) {
        const raw = text.slice(i, end + 1);
        const name = escaped ? (JSON.parse(raw) as string) : raw.slice(1, -1);
        if (names.has(name)) return true;
        names.add(name);
        expectName = false;
      }
      i = end;
    } else if (ch === '{') {
      open.push(new Set());
      expectName = true;
    } else if (ch === '[') {
      open.push(null);
      expectName = false;
    } else if (ch === '}' || ch === ']') {
      open.pop();
      expectName = false;
    } else if (ch === ',') {
      expectName = open.at(-1) instanceof Set;
    }
  }
  return false;
}

function malformed(reason: string, debug: string = reason): GatewayError {
  return new GatewayError('InvalidIdentityToken', `Invalid web identity token: ${reason}.`, { debug: `malformed token: ${debug}` });
}
