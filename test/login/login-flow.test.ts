/**
 * The login-flow service (src/idp/login-flow.ts) on its own: a real BrowserLogin on the memory store, a
 * real OIDC provider double on loopback, and a rules stand-in that grants alice and nobody else. Each way
 * a callback can end is one tagged outcome; only a refusal after the transaction matched goes to a
 * terminal's loopback address (a terminal waiting for a pasted code gets the code, or the error page).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_BROWSER_CONFIG } from '../../src/config/types.js';
import type { Identity } from '../../src/domain/types.js';
import { BrowserLogin, createLoginProviders, LoginFailure, LoginFlow, PASTED_CODE_REDIRECT, pkceChallenge, type LoginOutcome, type TerminalRequest } from '../../src/idp/index.js';
import { MemoryStore } from '../../src/store/memory/memory-store.js';
import { TestBrowser } from '../support/browser.js';
import { providerConfig } from '../support/browser-login.js';
import { OidcDouble } from '../support/oidc-double.js';

const PUBLIC_URL = 'http://127.0.0.1:9';
const TERMINAL: TerminalRequest = { redirectUri: 'http://127.0.0.1:50123/callback', codeChallenge: pkceChallenge('v'.repeat(43)), state: 'terminal-state-0123456789' };

let idp: OidcDouble;
let login: BrowserLogin;
let flow: LoginFlow;

beforeAll(async () => {
  idp = await OidcDouble.start({ alice: { sub: 'a-1', email: 'alice@example.com' }, bob: { sub: 'b-1', email: 'bob@example.com' } });
  idp.addClient({ clientId: 'idp-client', clientSecret: 'idp-secret', redirectUri: `${PUBLIC_URL}/callback/idp` });
  login = new BrowserLogin({
    store: new MemoryStore({ prefix: 't:' }),
    providers: await createLoginProviders([providerConfig('idp', 'oidc', { issuer: idp.issuer, displayName: 'Test IdP' })], { publicUrl: PUBLIC_URL, allowInsecureHttp: true }),
    publicUrl: PUBLIC_URL,
    browser: DEFAULT_BROWSER_CONFIG,
  });
  flow = new LoginFlow({
    login,
    grantedRoles: (identity: Identity) => (identity.subject === 'a-1' ? ['deployer', 'reader'] : []),
    explainRefusal: (identity: Identity) => ({ closestRule: 'alice only', failing: [`FAIL sub equals "a-1": found string ${JSON.stringify(identity.subject)}`] }),
  });
});

afterAll(async () => {
  await idp?.close();
});

/** Starts a login, signs `user` in at the double, and hands the callback to the flow (with or without the login cookie). */
async function finishAs(user: string, request: { role?: string; terminal?: TerminalRequest }, options: { sameBrowser?: boolean } = {}): Promise<LoginOutcome> {
  const started = await login.start('idp', { ...request, clientAddress: '127.0.0.1' });
  const back = await idp.signIn(new TestBrowser(), started.location, user);
  const sameBrowser = options.sameBrowser ?? true;
  return flow.finish({
    providerId: 'idp',
    parameters: back.searchParams,
    cookie: (name) => (sameBrowser && name === started.cookie.name ? started.cookie.value : undefined),
    previousSessionCookie: undefined,
    requestId: 'req-1',
  });
}

describe('LoginFlow.finish', () => {
  it.each([
    { name: 'a granted browser login: a session, on to the role it asked for', user: 'alice', request: { role: 'reader' }, kind: 'browser_session', redirect: /^\/\?role=reader$/ },
    { name: 'a granted browser login asking for a role it lacks: the page, which says so', user: 'alice', request: { role: 'admin' }, kind: 'browser_session', redirect: /^\/\?role=admin$/ },
    { name: 'a granted browser login asking for no role: the start page', user: 'alice', request: {}, kind: 'browser_session', redirect: /^\/$/ },
    { name: 'a granted terminal login: a one-time code at the loopback address', user: 'alice', request: { terminal: TERMINAL }, kind: 'terminal_code', redirect: /^http:\/\/127\.0\.0\.1:50123\/callback\?code=[A-Za-z0-9_-]{43}&state=terminal-state-0123456789$/ },
    { name: 'a terminal login no rule grants: access_denied at the loopback address, naming the request', user: 'bob', request: { terminal: TERMINAL }, kind: 'terminal_refused', redirect: /^http:\/\/127\.0\.0\.1:50123\/callback\?error=access_denied&error_description=.*request\+id\+req-1.*&state=terminal-state-0123456789$/ },
  ] as const)('$name', async ({ user, request, kind, redirect }) => {
    const outcome = await finishAs(user, request);
    expect(outcome.kind).toBe(kind);
    expect('redirectTo' in outcome && outcome.redirectTo).toMatch(redirect);
    expect(outcome.identity?.subject).toBe(user === 'alice' ? 'a-1' : 'b-1');
    if (outcome.kind === 'browser_session') expect(await login.session(outcome.cookieValue)).toMatchObject({ provider: 'idp', identity: { subject: 'a-1' } });
  });

  it.each([
    { name: 'a browser login no rule grants', user: 'bob', request: {}, sameBrowser: true, reason: 'no_role', subject: 'b-1' },
    { name: 'a terminal login from another browser (not this browser’s to report)', user: 'alice', request: { terminal: TERMINAL }, sameBrowser: false, reason: 'browser_mismatch', subject: undefined },
  ])('$name fails with $reason and no session, nothing sent to a loopback address', async ({ user, request, sameBrowser, reason, subject }) => {
    const outcome = await finishAs(user, request, { sameBrowser });
    expect(outcome).toMatchObject({ kind: 'failed', provider: 'idp', reason });
    expect(outcome.identity?.subject).toBe(subject);
    expect(outcome.kind === 'failed' && outcome.error).toBeInstanceOf(LoginFailure);
    // Only a refusal by the rules says, for the audit line, which rule came closest and who was refused.
    expect(outcome.kind === 'failed' && outcome.refusal).toEqual(
      reason === 'no_role' ? { closestRule: 'alice only', failing: ['FAIL sub equals "a-1": found string "b-1"'], account: 'bob@example.com (idp:b-1)' } : undefined,
    );
  });

  it('a granted terminal login without a loopback address (stsgate login --paste-code): the code to show, redeemable with the verifier', async () => {
    const pasted: TerminalRequest = { ...TERMINAL, redirectUri: PASTED_CODE_REDIRECT };
    const outcome = await finishAs('alice', { terminal: pasted });
    expect(outcome).toMatchObject({ kind: 'terminal_code_shown', provider: 'idp', identity: { subject: 'a-1' }, code: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/) });
    expect(outcome).not.toHaveProperty('redirectTo');
    const code = outcome.kind === 'terminal_code_shown' ? outcome.code : '';
    const redeemed = await login.terminal.redeem({ code, codeVerifier: 'v'.repeat(43), redirectUri: PASTED_CODE_REDIRECT });
    expect(redeemed.session).toMatchObject({ provider: 'idp', identity: { subject: 'a-1' } });
  });

  it('a pasted-code terminal login no rule grants: failed (the error page), nothing to redirect to', async () => {
    const outcome = await finishAs('bob', { terminal: { ...TERMINAL, redirectUri: PASTED_CODE_REDIRECT } });
    expect(outcome).toMatchObject({ kind: 'failed', reason: 'no_role', identity: { subject: 'b-1' } });
  });

  it('throws for an unknown provider (a 404; nothing to finish)', async () => {
    await expect(flow.finish({ providerId: 'nope', parameters: new URLSearchParams(), cookie: () => undefined, previousSessionCookie: undefined, requestId: 'r' })).rejects.toMatchObject({ reason: 'unknown_provider', status: 404 });
  });
});
