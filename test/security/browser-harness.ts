/**
 * Shared pieces of the browser half of the hostile-input suite (`browser-*.test.ts`): the login
 * environment (google by oidc-provider, okta, github, facebook, a forging OIDC double) on the security
 * suite's own Redis database under a fresh prefix, and the one check every hostile browser request ends
 * with: the exact status, no session cookie (nor any other cookie given a value), no record created in
 * the store (every key under the gateway's prefix but rate-limit counters is compared, so a refused request
 * may take a record, never add one), no Location (so none off-site), and no `issued` audit event.
 */
import { createHash, randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { expect } from 'vitest';
import type { BrowserConfig, GatewayConfig } from '../../src/config/types.js';
import { TestBrowser } from '../support/browser.js';
import { startLogin } from '../support/browser-login.js';
import { startLoginEnvironment, type LoginEnvironment } from '../support/login-environment.js';
import { securityStore } from './harness.js';

export const SESSION_COOKIE = 'stsgate_session';

export interface BrowserSecurityEnvironment {
  env: LoginEnvironment;
  /** Where the gateway listens (also its public URL). */
  url: string;
  prefix: string;
  redis: Redis;
  /** Every key under the gateway's prefix but rate-limit counters. */
  keys(): Promise<Set<string>>;
  /** Keys of one kind (`login`, `bsess`, `tcode`, `tsess`, `sess`...). */
  count(kind: string): Promise<number>;
  /** `issued` audit events so far. */
  issuedCount(): number;
  close(): Promise<void>;
}

/** The login environment on the security suite's Redis database, with a client to look into the store. */
export async function startBrowserSecurityEnvironment(options: { browser?: Partial<BrowserConfig>; gateway?: Partial<GatewayConfig> } = {}): Promise<BrowserSecurityEnvironment> {
  const store = securityStore();
  const env = await startLoginEnvironment({ store, ...options });
  const redis = new Redis(store.kind === 'standalone' ? store.url : '', { maxRetriesPerRequest: 1 });
  redis.on('error', () => {});
  const prefix = store.prefix;
  return {
    env,
    url: env.gateway.url,
    prefix,
    redis,
    async keys() {
      return new Set((await redis.keys(`${prefix}*`)).filter((k) => !k.startsWith(`${prefix}rl:`)));
    },
    async count(kind) {
      return (await redis.keys(`${prefix}${kind}:*`)).length;
    },
    issuedCount() {
      return env.gateway.logs().filter((l) => l.log === 'audit' && l.event === 'issued').length;
    },
    async close() {
      await env.close();
      redis.disconnect();
    },
  };
}

/** What a refused browser request must also be, besides its status. */
export interface RefusalShape {
  /** `html` (an error page with the page headers), `json` (/v1/credentials) or `oauth` (/cli/token); default html. */
  format?: 'html' | 'json' | 'oauth';
  /** The JSON `error` (json and oauth formats). */
  error?: string;
  /** The audit reason of the `login_failed` event this request wrote. */
  reason?: string;
}

/**
 * Sends one hostile request and checks the whole outcome: exact status, format, no cookie set to a value,
 * no new store record, no Location, nothing issued. Returns the response and its body.
 */
export async function expectBrowserRefused(g: BrowserSecurityEnvironment, status: number, send: () => Promise<Response>, shape: RefusalShape = {}): Promise<{ response: Response; text: string }> {
  const before = await g.keys();
  const issued = g.issuedCount();
  const response = await send();
  const text = await response.text();
  const shown = `${response.status} ${text.slice(0, 600)}`;
  expect(response.status, shown).toBe(status);
  expect(response.headers.get('location'), 'no Location').toBeNull();
  const setCookies = response.headers.getSetCookie();
  expect(setCookies.filter((c) => c.startsWith(`${SESSION_COOKIE}=`) && !c.startsWith(`${SESSION_COOKIE}=;`)), 'no session cookie').toEqual([]);
  expect(setCookies.filter((c) => !/^[^=]+=;/.test(c)), 'no cookie set to a value').toEqual([]);
  const after = await g.keys();
  expect([...after].filter((k) => !before.has(k)), 'no record created').toEqual([]);
  expect(g.issuedCount(), 'nothing issued').toBe(issued);
  expect(text, 'no credentials').not.toMatch(/ASIA[A-Z2-7]{16}|"SecretAccessKey"|session_token/);
  const format = shape.format ?? 'html';
  if (format === 'html') {
    expect(response.headers.get('content-type'), shown).toMatch(/^text\/html/);
    expectPageHeaders(response);
  } else {
    expect(response.headers.get('content-type'), shown).toMatch(/^application\/json/);
    expect(response.headers.get('cache-control')).toBe('no-store');
    if (shape.error !== undefined) expect((JSON.parse(text) as { error: string }).error, shown).toBe(shape.error);
  }
  if (shape.reason !== undefined) {
    const requestId = response.headers.get('x-request-id');
    expect(g.env.gateway.logs().find((l) => l.requestId === requestId && l.event === 'login_failed'), `audit reason for ${shown}`).toMatchObject({ reason: shape.reason });
  }
  return { response, text };
}

/** The headers every HTML page carries: a strict CSP that forbids framing, X-Frame-Options, no caching. */
export function expectPageHeaders(response: Response): void {
  const csp = response.headers.get('content-security-policy') ?? '';
  expect(csp).toContain("frame-ancestors 'none'");
  expect(csp).toContain("default-src 'none'");
  expect(csp).toContain("script-src 'self'");
  expect(csp).toContain("form-action 'self'");
  expect(csp).not.toContain('unsafe-inline');
  expect(response.headers.get('x-frame-options')).toBe('DENY');
  expect(response.headers.get('x-content-type-options')).toBe('nosniff');
  expect(response.headers.get('cache-control')).toBe('no-store');
  expect(response.headers.get('referrer-policy')).toBe('no-referrer');
}

/** A random opaque value shaped like stsgate's (43 base64url characters). */
export const opaque = (): string => randomBytes(32).toString('base64url');

/** The login cookie's name for a state (as src/idp/browser-login.ts names it). */
export function loginCookieName(state: string): string {
  return `${SESSION_COOKIE}_login_${createHash('sha256').update(`login-cookie\u0000${state}`).digest('base64url').slice(0, 12)}`;
}

/** Starts a login in `browser` and signs in at the provider; returns the callback URL, not yet delivered. */
export async function callbackFor(g: BrowserSecurityEnvironment, browser: TestBrowser, provider: 'google' | 'okta' | 'github' | 'facebook' | 'forged', user: string, query: Record<string, string> = {}): Promise<URL> {
  const login = await startLogin(browser, g.url, provider, query);
  return g.env[provider].signIn(browser, login, user);
}

/** The URL with its path or parameters changed. */
export function withParams(url: URL, change: (params: URLSearchParams) => void, path?: string): URL {
  const out = new URL(url);
  if (path !== undefined) out.pathname = path;
  change(out.searchParams);
  return out;
}

/**
 * Every secret the browser flows hand out (state, nonce, PKCE verifier, login and terminal codes, login,
 * form and session cookie values, terminal session tokens) is 43 base64url characters: no log line may
 * hold a run like that, whole or as the tail of a longer run. Returns how many lines were read.
 */
export function expectNoOpaqueValuesLogged(g: BrowserSecurityEnvironment): number {
  const lines = g.env.gateway.logs();
  // Left out: signing key ids (public JWK thumbprints, also 43 characters), and the provider's own error
  // code, which the rows above fill with long runs of letters on purpose.
  const readable = (key: string, value: unknown) => (key === 'kid' || (key === 'debug' && typeof value === 'string' && value.startsWith('error=')) ? undefined : value);
  const leaks = lines.map((line) => JSON.stringify(line, readable)).filter((text) => /[A-Za-z0-9_-]{43}/.test(text));
  expect(leaks).toEqual([]);
  return lines.length;
}
