/**
 * Where a login may send the browser afterwards (`return_to`): only the gateway's own origin or an
 * origin the configuration allows. RFC 9700 §4.11 (open redirectors): anything else is refused, including
 * the forms browsers read as another host: `//host`, `/\host`, backslashes anywhere, percent-encoded
 * slashes and backslashes, control characters and whitespace, and any character outside ASCII: look-alike
 * slashes such as U+2215 or U+FF0F read as `/` to a person (and UTS #46 maps U+FF0F to `/` in a host),
 * and a link built by a browser or a URL library arrives percent-encoded anyway.
 *
 * Dot segments are refused, not resolved: `/.//evil.example` resolves (RFC 3986 §5.2.4) to
 * `//evil.example`, another host. And what is returned is checked again on its own, because a check of
 * the input says nothing about what parsing made of it.
 */

const MAX_LENGTH = 2048;

/** Control characters, whitespace, backslashes and non-ASCII: browsers strip or reinterpret them in URLs (WHATWG URL, UTS #46). */
const UNSAFE_CHARACTER = /[^\u0021-\u007e]|\\/;
/** Percent-encoded `/`, `\` or `%` (double encoding): a later decode could turn a path into `//host`. */
const ENCODED_SEPARATOR = /%(?:2f|5c|25)/i;
/** A `.` or `..` path segment, also percent-encoded: WHATWG URL reads `%2e` (any case) in a segment as `.`. */
const DOT_SEGMENT = /^(?:\.|%2e){1,2}$/i;
/** A path on this origin as a browser reads it: one leading `/`, not followed by `/` or `\` (a network-path reference). */
const SAME_ORIGIN_PATH = /^\/(?![/\\])/;

/**
 * The URL to send the browser to, or undefined when `raw` would leave the allowed origins. A same-origin
 * target comes back as a path (`/page?x=1`), another allowed origin as an absolute URL.
 */
export function checkReturnTo(raw: string, publicUrl: string, allowedOrigins: readonly string[]): string | undefined {
  if (raw === '' || raw.length > MAX_LENGTH || UNSAFE_CHARACTER.test(raw) || ENCODED_SEPARATOR.test(raw)) return undefined;
  const own = new URL(publicUrl).origin;
  let url: URL;
  if (raw.startsWith('/')) {
    // `//host` and `/\host` are network-path references to another host (RFC 3986 §4.2).
    if (!SAME_ORIGIN_PATH.test(raw) || hasDotSegment(raw)) return undefined;
    url = new URL(raw, own);
  } else {
    // Anything else must be an absolute http(s) URL; a relative path without a leading slash is refused
    // rather than resolved against whatever page the browser is on.
    const authority = /^https?:\/\/[^/?#]*/i.exec(raw);
    if (authority === null || hasDotSegment(raw.slice(authority[0].length))) return undefined;
    try {
      url = new URL(raw);
    } catch {
      return undefined;
    }
    if (url.username !== '' || url.password !== '') return undefined;
  }
  if (url.origin === own) return sameOriginPath(url, own);
  return allowedOrigins.includes(url.origin) ? url.href : undefined;
}

/** Whether the path of a reference (up to its query or fragment) has a `.` or `..` segment. */
function hasDotSegment(reference: string): boolean {
  const path = reference.split(/[?#]/, 1)[0]!;
  return path.split('/').some((segment) => DOT_SEGMENT.test(segment));
}

/** The path, query and fragment of an own-origin URL, or undefined unless that path alone still leads to `own`. */
function sameOriginPath(url: URL, own: string): string | undefined {
  const path = `${url.pathname}${url.search}${url.hash}`;
  if (!SAME_ORIGIN_PATH.test(path) || new URL(path, own).origin !== own) return undefined;
  return path;
}
