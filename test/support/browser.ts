/**
 * A tiny browser for tests: fetch with `redirect: 'manual'`, a cookie jar per host (host:port), and
 * helpers to follow redirects one hop at a time, so a test sees every Location a real browser would.
 *
 *   const browser = new TestBrowser();
 *   const res = await browser.get(`${gateway.url}/login/google`);      // 302, Location at the provider
 *   const { response, url } = await browser.follow(url, { until: (u) => u.pathname.startsWith('/callback/') });
 *   browser.cookie(gateway.url, 'stsgate_session');                     // the session cookie, if set
 */

export interface RequestOptions {
  method?: string;
  /** Sent as application/x-www-form-urlencoded (method defaults to POST). */
  form?: Record<string, string>;
  headers?: Record<string, string>;
}

/** One Set-Cookie header, parsed. */
export interface SetCookie {
  name: string;
  value: string;
  attributes: Record<string, string>;
}

/** Parses a Set-Cookie header (RFC 6265 §5.2), keeping attribute names lower-cased. */
export function parseSetCookie(header: string): SetCookie {
  const [pair, ...attributes] = header.split(';');
  const eq = pair!.indexOf('=');
  const out: SetCookie = { name: pair!.slice(0, eq).trim(), value: pair!.slice(eq + 1).trim(), attributes: {} };
  for (const attribute of attributes) {
    const [key, ...rest] = attribute.split('=');
    out.attributes[key!.trim().toLowerCase()] = rest.join('=').trim();
  }
  return out;
}

export class TestBrowser {
  /** host:port -> cookie name -> value. */
  readonly jar = new Map<string, Map<string, string>>();
  /** Every URL requested, in order (for asserting where the browser went). */
  readonly visited: URL[] = [];
  /** Headers sent with every request (e.g. the X-Forwarded-For a load balancer would add). */
  readonly #headers: Record<string, string>;

  constructor(options: { headers?: Record<string, string> } = {}) {
    this.#headers = { ...options.headers };
  }

  /** The cookie `name` held for the host of `url`. */
  cookie(url: string | URL, name: string): string | undefined {
    return this.jar.get(new URL(url).host)?.get(name);
  }

  /** Sets a cookie for the host of `url` (to play an attacker's or a stale browser's part). */
  setCookie(url: string | URL, name: string, value: string): void {
    const host = new URL(url).host;
    if (!this.jar.has(host)) this.jar.set(host, new Map());
    this.jar.get(host)!.set(name, value);
  }

  /** One request, no redirect followed; cookies sent and stored. */
  async request(url: string | URL, options: RequestOptions = {}): Promise<Response> {
    const target = new URL(url);
    this.visited.push(target);
    const headers: Record<string, string> = { ...this.#headers, ...options.headers };
    const cookies = this.jar.get(target.host);
    if (cookies && cookies.size > 0) headers.cookie = [...cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    let body: string | undefined;
    if (options.form) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      body = new URLSearchParams(options.form).toString();
    }
    const response = await fetch(target, { method: options.method ?? (options.form ? 'POST' : 'GET'), headers, redirect: 'manual', ...(body !== undefined ? { body } : {}) });
    for (const header of response.headers.getSetCookie()) {
      const cookie = parseSetCookie(header);
      if (!this.jar.has(target.host)) this.jar.set(target.host, new Map());
      const expired = cookie.attributes['max-age'] === '0' || (cookie.attributes.expires !== undefined && Date.parse(cookie.attributes.expires) < Date.now());
      if (expired || cookie.value === '') this.jar.get(target.host)!.delete(cookie.name);
      else this.jar.get(target.host)!.set(cookie.name, cookie.value);
    }
    return response;
  }

  /** GET without following redirects. */
  get(url: string | URL, headers: Record<string, string> = {}): Promise<Response> {
    return this.request(url, { headers });
  }

  /**
   * Follows redirects from `url` (GET each Location) until a response is not a redirect, or until the
   * next Location satisfies `until` (that URL is returned unrequested), at most `maxHops` hops.
   */
  async follow(url: string | URL, options: { until?: (next: URL) => boolean; maxHops?: number; first?: RequestOptions } = {}): Promise<{ response: Response | undefined; url: URL }> {
    let current = new URL(url);
    let response = await this.request(current, options.first);
    for (let hop = 0; hop < (options.maxHops ?? 10); hop++) {
      const location = response.headers.get('location');
      if (response.status < 300 || response.status >= 400 || location === null) return { response, url: current };
      await response.body?.cancel();
      const next = new URL(location, current);
      if (options.until?.(next)) return { response: undefined, url: next };
      current = next;
      response = await this.request(current);
    }
    throw new Error(`more than ${options.maxHops ?? 10} redirects from ${String(url)}`);
  }
}
