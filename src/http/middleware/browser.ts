/**
 * What the browser-facing routes (login.ts, terminal.ts) share: cache and page headers, strict query
 * parameters, the cookie attributes, where a request came from, and starting a login bound to this
 * browser. One file, so the route files never borrow from each other.
 */
import type { Context, Next } from 'koa';
import { LOGIN_TRANSACTION_TTL_MS, LoginFailure, type BrowserLogin, type TerminalRequest } from '../../idp/index.js';
import { PAGE_CSP, type PageOptions } from '../pages.js';
import { equalSecretText, isOpaqueValue, newOpaqueValue, opaqueBearerToken } from '../../util/secret-text.js';

/**
 * Pages show credentials and carry sessions, and token responses carry tokens: never cached
 * (RFC 9111 §5.2.2.5; RFC 6749 §5.1).
 */
export async function noStore(ctx: Context, next: Next): Promise<void> {
  ctx.set('Cache-Control', 'no-store');
  ctx.set('Pragma', 'no-cache');
  await next();
}

/** The pages' own headers: a strict CSP, no framing (clickjacking), no opener across origins. */
export async function pageHeaders(ctx: Context, next: Next): Promise<void> {
  ctx.set('Content-Security-Policy', PAGE_CSP);
  ctx.set('X-Frame-Options', 'DENY');
  ctx.set('Cross-Origin-Opener-Policy', 'same-origin');
  await next();
}

/** One value of a query parameter; given twice is refused (which copy wins is what parameter pollution hopes to choose). */
export function queryParam(ctx: Context, name: string): string | undefined {
  const value = ctx.query[name];
  if (Array.isArray(value)) throw new LoginFailure('bad_request', `The parameter ${name} was given more than once.`);
  return value === undefined || value === '' ? undefined : value;
}

/**
 * Every cookie stsgate sets (the session, login and form cookies): opaque, HttpOnly (no script reads it),
 * SameSite=Lax (not sent on cross-site POSTs or subresource requests; sent on the provider's top-level
 * redirect back to `/callback`), Path=/, no Domain (this host only), and Secure unless the public URL is
 * plain http (development only); under https their names carry the `__Host-` prefix (`hostOnlyCookieName`),
 * which makes the browser hold them to exactly these attributes.
 */
export function setCookie(ctx: Context, publicUrl: string, name: string, value: string, maxAgeSeconds: number): void {
  const secure = new URL(publicUrl).protocol === 'https:';
  ctx.append('Set-Cookie', `${name}=${value}; Path=/; Max-Age=${maxAgeSeconds}; HttpOnly; SameSite=Lax${secure ? '; Secure' : ''}`);
}

/**
 * A terminal session's bearer token (RFC 6750 §2.1; the scheme is case-insensitive): one of ours
 * (43 base64url characters), or undefined.
 */
export function bearerToken(ctx: Context): string | undefined {
  return opaqueBearerToken(ctx.get('authorization'));
}

/** Starts a login (browser or terminal) and sets the login cookie that binds it to this browser. */
export async function startBoundLogin(ctx: Context, deps: { login: BrowserLogin; publicUrl: string }, providerId: string, request: { returnTo?: string; role?: string; terminal?: TerminalRequest }): Promise<URL> {
  const started = await deps.login.start(providerId, { ...request, clientAddress: ctx.ip });
  setCookie(ctx, deps.publicUrl, started.cookie.name, started.cookie.value, LOGIN_TRANSACTION_TTL_MS / 1000);
  return started.location;
}

/**
 * Where a state-changing POST came from, by Fetch Metadata (`Sec-Fetch-Site`) and its `Origin` header
 * (RFC 6454 §7): `cross` when either names another origin, `same` when one says same-origin and none
 * says otherwise, `unknown` when neither tells (old browsers, non-browser clients). `Origin: null` tells
 * nothing: browsers send it for every POST from a page whose Referrer-Policy is no-referrer (Fetch,
 * "serializing a request origin"), as the gateway's own pages are; an opaque-origin attacker page
 * (a sandboxed frame) still says `Sec-Fetch-Site: cross-site`.
 */
export function requestSite(ctx: Context, publicUrl: string): 'same' | 'cross' | 'unknown' {
  const ownOrigin = new URL(publicUrl).origin;
  const origin = ctx.get('origin');
  const site = ctx.get('sec-fetch-site');
  const namedOrigin = origin !== '' && origin !== 'null';
  if ((namedOrigin && origin !== ownOrigin) || (site !== '' && site !== 'same-origin')) return 'cross';
  return namedOrigin || site === 'same-origin' ? 'same' : 'unknown';
}

/** The options every page of this gateway is rendered with. */
export function pageOptions(deps: { pageNotice?: string }): PageOptions {
  return deps.pageNotice !== undefined ? { notice: deps.pageNotice } : {};
}

/** The form cookie's name: the session cookie's, with `_form`. */
export function formCookieName(login: Pick<BrowserLogin, 'cookieName'>): string {
  return `${login.cookieName}_form`;
}

/**
 * The form token for a page's form (double submit): one per browser, kept while it stays in use, so forms
 * in two tabs both work; set in the form cookie and returned for the page's hidden `form_token` field.
 */
export function issueFormToken(ctx: Context, deps: { login: Pick<BrowserLogin, 'cookieName'>; publicUrl: string }): string {
  const cookie = ctx.cookies.get(formCookieName(deps.login));
  const formToken = isOpaqueValue(cookie) ? cookie : newOpaqueValue();
  setCookie(ctx, deps.publicUrl, formCookieName(deps.login), formToken, LOGIN_TRANSACTION_TTL_MS / 1000);
  return formToken;
}

/**
 * Whether a form POST carries this browser's form token (the parsed form's `form_token` equals the form
 * cookie, which another site can neither read nor set) and does not come from another site.
 */
export function formTokenCheck(ctx: Context, deps: { login: Pick<BrowserLogin, 'cookieName'>; publicUrl: string }): 'ok' | 'cross-site' | 'no-token' {
  const token = (ctx.state.form as Map<string, string>).get('form_token');
  const cookie = ctx.cookies.get(formCookieName(deps.login));
  const tokenMatches = token !== undefined && isOpaqueValue(cookie) && equalSecretText(token, cookie);
  if (!tokenMatches) return 'no-token';
  return requestSite(ctx, deps.publicUrl) === 'cross' ? 'cross-site' : 'ok';
}
