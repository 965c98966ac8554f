/**
 * Where a login may send the browser afterwards (`return_to`): only the gateway's own origin or an
 * origin the configuration allows. RFC 9700 §4.11 (open redirectors): anything else is refused, including
 * the forms browsers read as another host: `//host`, `/\host`, backslashes anywhere, percent-encoded
 * slashes and backslashes, control characters and whitespace, and any character outside ASCII: look-alike
 * slashes such as U+2215 or U+FF0F read as `/` to a person (and UTS #46 maps U+FF0F to `/` in a host),
 * and a link built by a browser or a URL library arrives percent-encoded anyway.
 */

const MAX_LENGTH = 2048;

/** Control characters, whitespace, backslashes and non-ASCII: browsers strip or reinterpret them in URLs (WHATWG URL, UTS #46). */
const UNSAFE_CHARACTER = /[^\u0021-\u007e]|\\/;
/** Percent-encoded `/`, `\` or `%` (double encoding): a later decode could turn a path into `//host`. */
const ENCODED_SEPARATOR = /%(?:2f|5c|25)/i;

/**
 * The URL to send the browser to, or undefined when `raw` would leave the allowed origins. A same-origin
 * target comes back as a path (`/page?x=1`), another allowed origin as an absolute URL.
 */
export function checkReturnTo(raw: string, publicUrl: string, allowedOrigins: readonly string[]): string | undefined {
  if (raw === '' || raw.length > MAX_LENGTH || UNSAFE_CHARACTER.test(raw) || ENCODED_SEPARATOR.test(raw)) return undefined;
  const own = new URL(publicUrl);
  if (raw.startsWith('/')) {
    // `//host` and `/\host` are network-path references to another host (RFC 3986 §4.2).
    if (raw.startsWith('//')) return undefined;
    const url = new URL(raw, own.origin);
    if (url.origin !== own.origin) return undefined;
    return `${url.pathname}${url.search}${url.hash}`;
  }
  // Anything else must be an absolute http(s) URL; a relative path without a leading slash is refused
  // rather than resolved against whatever page the browser is on.
  if (!/^https?:\/\//i.test(raw)) return undefined;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return undefined;
  }
  if (url.username !== '' || url.password !== '') return undefined;
  if (url.origin !== own.origin && !allowedOrigins.includes(url.origin)) return undefined;
  return url.origin === own.origin ? `${url.pathname}${url.search}${url.hash}` : url.href;
}
