/**
 * Bounded JSON GETs to a provider's API (GitHub REST, Facebook Graph) with the user's access token. Every
 * byte is untrusted: 200 only, no redirects (the token must not follow one elsewhere), a deadline and a
 * size cap. Failures become LoginFailure: unreachable (503) or unusable answer (502).
 */
import { readCappedBody } from '../issuers/idp-fetch.js';
import { LoginFailure, providerFailed, providerUnreachable } from './login-failure.js';

export interface ProviderApiOptions {
  /** Shown to the person when the API fails ("GitHub could not be reached"). */
  displayName: string;
  allowInsecureHttp: boolean;
  timeoutMs?: number;
  maxBytes?: number;
  /** Pages followed at most by `getAllPages`; beyond that the login fails rather than see a partial list. */
  maxPages?: number;
}

/** A JSON response and its headers. */
export interface ApiResponse {
  json: unknown;
  headers: Headers;
}

/** GETs provider API resources for one login. */
export class ProviderApi {
  readonly #options: Required<ProviderApiOptions>;

  constructor(options: ProviderApiOptions) {
    this.#options = { timeoutMs: 10_000, maxBytes: 1024 * 1024, maxPages: 20, ...options };
  }

  /** GETs `url` and parses its JSON body. */
  async getJson(url: string, headers: Record<string, string>): Promise<ApiResponse> {
    const { displayName } = this.#options;
    const target = new URL(url);
    if (target.protocol !== 'https:' && !(target.protocol === 'http:' && this.#options.allowInsecureHttp)) {
      throw providerFailed(displayName, `refusing to send an access token to ${target.origin} (not https)`);
    }
    let response: Response;
    try {
      response = await fetch(target, { headers: { 'user-agent': 'stsgate', ...headers }, redirect: 'manual', signal: AbortSignal.timeout(this.#options.timeoutMs) });
    } catch (err) {
      throw providerUnreachable(displayName, `GET ${target.origin}${target.pathname} failed: ${err instanceof Error ? (err.cause instanceof Error ? err.cause.message : err.message) : String(err)}`, err);
    }
    if (response.status !== 200) {
      await response.body?.cancel().catch(() => undefined);
      throw providerFailed(displayName, `GET ${target.origin}${target.pathname} answered HTTP ${response.status}`);
    }
    const text = await this.#readCapped(response, target);
    try {
      return { json: JSON.parse(text) as unknown, headers: response.headers };
    } catch (cause) {
      throw providerFailed(displayName, `GET ${target.origin}${target.pathname} did not return JSON`, cause);
    }
  }

  /**
   * GETs every page of a list, following `Link: <...>; rel="next"` (RFC 8288) on the same origin only: a
   * next link elsewhere would receive the access token.
   */
  async getAllPages(url: string, headers: Record<string, string>): Promise<unknown[]> {
    const items: unknown[] = [];
    const origin = new URL(url).origin;
    let next: string | undefined = url;
    for (let page = 0; next !== undefined; page++) {
      if (page >= this.#options.maxPages) {
        throw new LoginFailure('profile_invalid', `${this.#options.displayName} listed more than stsgate reads for one login.`, { status: 502, code: 'IDPCommunicationError', debug: `more than ${this.#options.maxPages} pages at ${url}` });
      }
      const { json, headers: responseHeaders } = await this.getJson(next, headers);
      if (!Array.isArray(json)) throw providerFailed(this.#options.displayName, `${url} did not return a list`);
      items.push(...json);
      next = nextLink(responseHeaders.get('link'));
      if (next !== undefined && new URL(next, url).origin !== origin) throw providerFailed(this.#options.displayName, `a pagination link leads off ${origin}`);
      if (next !== undefined) next = new URL(next, url).href;
    }
    return items;
  }

  async #readCapped(response: Response, target: URL): Promise<string> {
    const max = this.#options.maxBytes;
    let body: Buffer | undefined;
    try {
      body = await readCappedBody(response.body, max);
    } catch (err) {
      throw providerUnreachable(this.#options.displayName, `reading ${target.origin}${target.pathname} failed`, err);
    }
    if (body === undefined) throw providerFailed(this.#options.displayName, `${target.origin}${target.pathname} sent more than ${max} bytes`);
    return body.toString('utf8');
  }
}

/** The `rel="next"` target of a Link header (RFC 8288 §3), as GitHub paginates. */
export function nextLink(header: string | null): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(',')) {
    const match = /^\s*<([^>]*)>\s*;(.*)$/.exec(part);
    if (match && /(?:^|;)\s*rel\s*=\s*"?(?:[^";]*\s)?next(?:\s[^";]*)?"?\s*(?:;|$)/i.test(match[2]!)) return match[1];
  }
  return undefined;
}
