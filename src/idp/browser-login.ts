/**
 * The browser-login engine: the login transaction between `/login/:provider` and `/callback/:provider`
 * (stored ten minutes, taken once, bound to the browser that started it), and the browser session behind
 * the cookie. Store keys are built from SHA-256 of the state and of the cookie value, so a dump of the
 * store hands out neither.
 */
import { createHash } from 'node:crypto';
import type { BrowserConfig } from '../config/types.js';
import type { RevocationWatermarks } from '../credentials/revocations.js';
import type { Identity } from '../domain/types.js';
import { storeKeys } from '../store/keys.js';
import { guardStore, jsonRecord, Records, secretDigest } from '../store/records.js';
import type { Store } from '../store/store.js';
import { LoginFailure } from './login-failure.js';
import { equalSecretText, isOpaqueValue, newOpaqueValue } from '../util/secret-text.js';
import type { BrowserLoginProvider, VerifiedPassword } from './login-provider.js';
import { SamlLoginProvider } from './saml-provider.js';
import { checkReturnTo } from './return-to.js';
import { isRevoked, TerminalSessions, type TerminalRequest } from './terminal-login.js';

/** How long a started login may take to come back (design.md: ten minutes). */
export const LOGIN_TRANSACTION_TTL_MS = 10 * 60 * 1000;

/** What `/login` keeps for `/callback`, under the state. */
export interface LoginTransaction {
  v: 1;
  provider: string;
  state: string;
  nonce: string;
  codeVerifier: string;
  returnTo?: string;
  role?: string;
  /** Set for a terminal login (`/cli/login`): the answer goes to the command's loopback address. */
  terminal?: TerminalRequest;
  /** SHA-256 of the login cookie's value: the callback must come back to the browser that started. */
  bindingHash: string;
  startedAt: number;
  /**
   * A password provider's form accepted a username and password: the identity it made, waiting for the
   * callback, which must bring the one-time code whose SHA-256 this is.
   */
  verified?: VerifiedPassword;
}

/** A started login: where to send the browser, and the login cookie that binds the transaction to it. */
export interface StartedLogin {
  location: URL;
  /** Set it HttpOnly, SameSite=Lax, for LOGIN_TRANSACTION_TTL_MS; the callback reads it back. */
  cookie: { name: string; value: string };
}

/** A browser session, as stored behind the cookie. */
export interface BrowserSession {
  identity: Identity;
  provider: string;
  /** Epoch milliseconds. */
  createdAt: number;
  expiresAt: number;
  /** The logout form's token (a second CSRF defence next to the Origin check). */
  csrfToken: string;
}

/**
 * A callback matched to its login transaction (taken from the store, for this provider, in this browser);
 * `terminal` is set when the login was a terminal's, whose command then hears how it ended.
 */
export interface MatchedLogin {
  readonly provider: BrowserLoginProvider;
  readonly transaction: LoginTransaction;
  readonly terminal?: TerminalRequest;
}

/** A completed login: who signed in, and where they wanted to go. */
export interface CompletedLogin {
  identity: Identity;
  returnTo?: string;
  role?: string;
  terminal?: TerminalRequest;
}

/** Login transactions, under the hash of their state; ten minutes, taken once. */
const loginTransactions = jsonRecord<LoginTransaction>({ key: storeKeys.loginTransaction, secretId: true, ttlMs: LOGIN_TRANSACTION_TTL_MS });
/**
 * A SAML Response posted to the ACS, parked for a minute under a random handle: the POST comes from the
 * IdP's page (cross-site, so without the SameSite=Lax login cookie), and the 303 to `/callback/<id>` that
 * follows is a top-level GET, which carries it. The callback then checks the binding as for OAuth.
 */
interface ParkedSamlResponse {
  v: 1;
  provider: string;
  relayState: string;
  samlResponse: string;
}
const SAML_PARK_TTL_MS = 60 * 1000;
const parkedSamlResponses = jsonRecord<ParkedSamlResponse>({ key: storeKeys.samlResponse, secretId: true, ttlMs: SAML_PARK_TTL_MS });

/** Browser sessions, under the hash of the cookie value; they last `browser.session_ttl_seconds`. */
const browserSessions = jsonRecord<BrowserSession>({ key: storeKeys.browserSession, secretId: true });
/** The same records, by the hash itself (`sessionReference`). */
const browserSessionsByReference = jsonRecord<BrowserSession>({ key: storeKeys.browserSession, secretId: false });

/** A new session and the cookie value that names it. */
export interface NewSession {
  cookieValue: string;
  session: BrowserSession;
}

export interface BrowserLoginOptions {
  store: Store;
  providers: readonly BrowserLoginProvider[];
  publicUrl: string;
  browser: BrowserConfig;
  /** Called before a login transaction is stored, with the client's address; throws to refuse (the pending-login cap). */
  admitLogin?: (clientAddress: string) => Promise<void>;
  /** Revocation watermarks: a browser or terminal session of a revoked subject is over. Absent: none. */
  revocations?: RevocationWatermarks;
  now?: () => number;
}

/** A role name (IAM characters) or a role ARN, as `/login?role=` may carry. */
const ROLE = /^(?:arn:aws:iam::\d{12}:role\/)?[A-Za-z0-9+=,.@_-]{1,64}$/;

/**
 * The configured cookie name as set under this public URL: with the `__Host-` prefix when it is https
 * (RFC 6265bis §4.1.3.2: the browser then keeps the cookie only if it is Secure, Path=/ and without
 * Domain, so a sibling subdomain cannot set or overwrite it), the configured name as is under plain http
 * (development), where a prefixed cookie could not be set at all. A configured `__Secure-` prefix gives
 * way to `__Host-`, the stricter one.
 */
export function hostOnlyCookieName(publicUrl: string, configured: string): string {
  if (new URL(publicUrl).protocol !== 'https:') return configured;
  return `__Host-${configured.replace(/^__(?:Secure|Host)-/i, '')}`;
}

/** Starts and completes browser logins, and keeps browser sessions. */
export class BrowserLogin {
  readonly #records: Records;
  readonly #store: Store;
  readonly #providers: ReadonlyMap<string, BrowserLoginProvider>;
  readonly #publicUrl: string;
  readonly #browser: BrowserConfig;
  readonly #now: () => number;
  readonly #admitLogin: ((clientAddress: string) => Promise<void>) | undefined;
  readonly #revocations: RevocationWatermarks | undefined;
  /** The codes and sessions of terminal logins (`stsgate login`); they last as long as browser sessions. */
  readonly terminal: TerminalSessions;
  /** The session cookie's name, and the start of every other cookie's (`hostOnlyCookieName`). */
  readonly cookieName: string;

  constructor(options: BrowserLoginOptions) {
    this.#records = new Records(options.store, 'session');
    this.#store = options.store;
    this.#providers = new Map(options.providers.map((p) => [p.id, p]));
    this.#publicUrl = options.publicUrl;
    this.#browser = options.browser;
    this.#now = options.now ?? Date.now;
    this.#admitLogin = options.admitLogin;
    this.cookieName = hostOnlyCookieName(options.publicUrl, options.browser.cookieName);
    this.#revocations = options.revocations;
    this.terminal = new TerminalSessions({
      store: options.store,
      sessionTtlSeconds: options.browser.sessionTtlSeconds,
      now: this.#now,
      ...(options.revocations ? { revocations: options.revocations } : {}),
    });
  }

  /** The configured providers, in configuration order (the page's login buttons). */
  get providers(): BrowserLoginProvider[] {
    return [...this.#providers.values()];
  }

  get browser(): BrowserConfig {
    return this.#browser;
  }

  /** The provider with this id, or undefined. */
  provider(id: string): BrowserLoginProvider | undefined {
    return this.#providers.get(id);
  }

  /**
   * Starts a login: checks `return_to` and `role`, builds the authorization request, and stores the
   * transaction (provider, PKCE verifier, nonce, return_to, role, terminal request, the hash of the login
   * cookie) under the state for ten minutes. Nothing is stored when any of that fails, or when
   * `admitLogin` refuses the client's address. A terminal request (already checked by
   * `parseTerminalRequest`) replaces `return_to`: the login ends at the command's loopback address.
   */
  async start(providerId: string, request: { returnTo?: string; role?: string; terminal?: TerminalRequest; clientAddress?: string }): Promise<StartedLogin> {
    const provider = this.requireProvider(providerId);
    if (request.terminal !== undefined && request.returnTo !== undefined) throw new LoginFailure('bad_request', 'A terminal sign-in cannot also ask to return to a page.');
    let returnTo: string | undefined;
    if (request.returnTo !== undefined) {
      returnTo = checkReturnTo(request.returnTo, this.#publicUrl, this.#browser.allowedReturnOrigins);
      if (returnTo === undefined) {
        throw new LoginFailure('return_to_refused', 'The sign-in link asks to go back to a place outside this site afterwards, so it was not followed. Start again from this site.');
      }
    }
    if (request.role !== undefined && !ROLE.test(request.role)) throw new LoginFailure('bad_request', 'The role in the sign-in link is not a role name.');
    // RFC 9700 §4.7.1 / OAuth 2.0 for Browser-Based Apps §6.1.3.2: the state alone does not stop login
    // CSRF (an attacker's own finished login delivered to a victim's browser); a random value kept in this
    // browser's cookie, and only its hash in the transaction, does.
    const binding = newOpaqueValue();
    const transaction: LoginTransaction = {
      v: 1,
      provider: provider.id,
      // 32 random bytes, base64url, each (what openid-client's randomState, randomNonce and
      // randomPKCECodeVerifier make; a 43-character verifier is within RFC 7636 §4.1's 43 to 128).
      state: newOpaqueValue(),
      nonce: newOpaqueValue(),
      codeVerifier: newOpaqueValue(),
      ...(returnTo !== undefined ? { returnTo } : {}),
      ...(request.role !== undefined ? { role: request.role } : {}),
      ...(request.terminal !== undefined ? { terminal: request.terminal } : {}),
      bindingHash: secretDigest(binding),
      startedAt: this.#now(),
    };
    const location = await provider.authorizationUrl(transaction);
    if (this.#admitLogin) await this.#admitLogin(request.clientAddress ?? '');
    await this.#records.put(loginTransactions, transaction.state, transaction);
    return { location, cookie: { name: this.loginCookieName(transaction.state)!, value: binding } };
  }

  /**
   * The name of the login cookie for a state (one per login, so sign-ins in two tabs do not undo each
   * other), or undefined when `state` is not one of ours. It carries a hash of the state, not the state.
   */
  loginCookieName(state: string | null | undefined): string | undefined {
    if (!isOpaqueValue(state)) return undefined;
    return `${this.cookieName}_login_${createHash('sha256').update(`login-cookie\u0000${state}`).digest('base64url').slice(0, 12)}`;
  }

  /**
   * The first half of a login at `/callback/:provider`: the transaction is taken (deleted) before anything
   * else is checked, so a state works once whatever happens next. A transaction started for another
   * provider is refused (RFC 9700 §4.4, mix-up), and so is one started in another browser (`cookie` reads
   * this request's cookies; login CSRF, RFC 9700 §4.7). `completeMatched` does the rest.
   */
  async match(providerId: string, parameters: URLSearchParams, cookie: (name: string) => string | undefined): Promise<MatchedLogin> {
    const provider = this.requireProvider(providerId);
    for (const name of ['state', 'code', 'error', 'iss', 'saml_response']) {
      if (parameters.getAll(name).length > 1) throw new LoginFailure('bad_request', `The sign-in answer carries ${name} more than once.`);
    }
    const state = parameters.get('state');
    if (state === null || state === '') {
      throw new LoginFailure('state_missing', 'The sign-in answer has no state, so it cannot be matched to a sign-in started here. Start again.');
    }
    const transaction = isOpaqueValue(state) ? await this.#records.take(loginTransactions, state) : undefined;
    if (transaction === undefined || transaction.state !== state) {
      throw new LoginFailure('state_unknown', 'This sign-in answer does not belong to a sign-in in progress: it expired, was already used, or was started elsewhere. Start again.');
    }
    if (transaction.provider !== provider.id) {
      throw new LoginFailure('provider_mismatch', 'This sign-in answer came back for a different identity provider than the one the sign-in was started with. Start again.', {
        debug: `transaction for ${transaction.provider}, callback for ${provider.id}`,
      });
    }
    const binding = cookie(this.loginCookieName(state)!);
    if (binding === undefined || typeof transaction.bindingHash !== 'string' || !equalSecretText(secretDigest(binding), transaction.bindingHash)) {
      // Not sent to a terminal's loopback address either: this browser is not the one whose login it was.
      throw new LoginFailure('browser_mismatch', 'This sign-in answer arrived in a different browser from the one that started the sign-in, so it was not accepted. Start again from this site, in one browser.', {
        debug: binding === undefined ? 'no login cookie' : 'login cookie does not match',
      });
    }
    return { provider, transaction, ...(transaction.terminal !== undefined ? { terminal: transaction.terminal } : {}) };
  }

  /**
   * The second half: the provider's answer for a matched transaction, turned into an identity. A provider
   * error is reported only now, after the transaction matched, so a forged link cannot put a made-up
   * message on the gateway's page.
   */
  async completeMatched({ provider, transaction }: MatchedLogin, parameters: URLSearchParams): Promise<CompletedLogin> {
    const error = parameters.get('error');
    if (error !== null) {
      const description = parameters.get('error_description');
      // RFC 6749 §4.1.2.1: error and error_description are ASCII; anything longer is cut, and the page escapes it.
      const shown = [error, description].filter((v): v is string => v !== null && v !== '').map((v) => v.replace(/[^\x20-\x7e]/g, '').slice(0, 300));
      throw new LoginFailure('provider_error', `${provider.displayName} did not sign you in: ${shown.join(' — ')}`, { debug: `error=${error.slice(0, 64)}` });
    }
    const answer = parameters.get(provider.answerParameter);
    if (!answer) {
      throw new LoginFailure(
        'code_missing',
        provider.protocol === 'password' ? `This sign-in with ${provider.displayName} was not finished on its form. Start again.` : `${provider.displayName} sent no ${provider.protocol === 'saml' ? 'SAML response' : 'authorization code'}. Start again.`,
      );
    }
    const identity = await provider.complete(provider.protocol === 'saml' ? await this.#takeParkedResponse(provider, answer, transaction.state) : parameters, transaction);
    // Checked again on the way out: a transaction stored before this check existed (a replica on an older
    // version, during an upgrade) may hold a target that the check now refuses; the start page is used then.
    const returnTo = transaction.returnTo === undefined ? undefined : checkReturnTo(transaction.returnTo, this.#publicUrl, this.#browser.allowedReturnOrigins);
    return {
      identity,
      ...(returnTo !== undefined ? { returnTo } : {}),
      ...(transaction.role !== undefined ? { role: transaction.role } : {}),
      ...(transaction.terminal !== undefined ? { terminal: transaction.terminal } : {}),
    };
  }

  /**
   * Parks a SAML Response posted to a provider's ACS (`RelayState` must be a state stsgate handed out) and
   * returns where the browser goes next: `/callback/<id>` with the state and the parked response's handle.
   */
  async parkSamlResponse(providerId: string, samlResponse: string, relayState: string): Promise<string> {
    const provider = this.requireProvider(providerId);
    if (!isOpaqueValue(relayState)) throw new LoginFailure('state_unknown', 'This sign-in answer does not belong to a sign-in in progress. Start again.');
    const handle = newOpaqueValue();
    await this.#records.put(parkedSamlResponses, handle, { v: 1, provider: provider.id, relayState, samlResponse });
    return `/callback/${encodeURIComponent(provider.id)}?${new URLSearchParams({ state: relayState, saml_response: handle }).toString()}`;
  }

  /** The parked answer a callback names, for this provider and this transaction's state only; taken once. */
  async #takeParkedResponse(provider: BrowserLoginProvider, handle: string, state: string): Promise<URLSearchParams> {
    const parked = isOpaqueValue(handle) ? await this.#records.take(parkedSamlResponses, handle) : undefined;
    if (parked === undefined || parked.provider !== provider.id || parked.relayState !== state) {
      throw new LoginFailure('saml_in_response_to', `The sign-in answer from ${provider.displayName} is gone or belongs to another sign-in. Start again.`, { debug: parked === undefined ? 'no parked SAML response' : 'parked SAML response for another provider or state' });
    }
    return new URLSearchParams({ SAMLResponse: parked.samlResponse });
  }

  /**
   * An IdP-initiated SAML login (no AuthnRequest, no transaction): refused unless the provider allows it
   * (`saml.allow_idp_initiated`); else verified, and its assertion ID recorded until it expires so the
   * same answer signs nobody in twice.
   */
  async completeUnsolicited(providerId: string, samlResponse: string): Promise<CompletedLogin> {
    const provider = this.requireProvider(providerId);
    if (!(provider instanceof SamlLoginProvider) || !provider.allowsIdpInitiated) {
      throw new LoginFailure('saml_unsolicited', `${provider.displayName} sent a sign-in that was not started here, and this gateway accepts only sign-ins it started. Start again from this site.`, { debug: 'IdP-initiated answer, not allowed' });
    }
    const login = await provider.completeUnsolicited(samlResponse);
    const ttlMs = Math.max(1_000, login.notOnOrAfterMs + provider.settings.clockSkewSeconds * 1000 - this.#now());
    const digest = secretDigest(`${provider.id}\u0000${login.assertionId}`);
    const value = await guardStore('session', () => this.#store.increment(storeKeys.samlAssertion(digest), ttlMs));
    if (value !== 1) throw new LoginFailure('saml_unsolicited', `This sign-in answer from ${provider.displayName} was used already. Start again.`, { debug: 'IdP-initiated assertion replayed' });
    return { identity: login.identity };
  }

  /**
   * Creates a browser session with a new random id (never one the browser brought: no session fixation),
   * ending the session the browser had before, if any.
   */
  async createSession(identity: Identity, providerId: string, previousCookie: string | undefined): Promise<NewSession> {
    if (isOpaqueValue(previousCookie)) await this.#records.delete(browserSessions, previousCookie);
    const cookieValue = newOpaqueValue();
    const createdAt = this.#now();
    const ttlMs = this.#browser.sessionTtlSeconds * 1000;
    const session: BrowserSession = { identity, provider: providerId, createdAt, expiresAt: createdAt + ttlMs, csrfToken: newOpaqueValue() };
    await this.#records.put(browserSessions, cookieValue, session, ttlMs);
    return { cookieValue, session };
  }

  /**
   * The live session a cookie names, or undefined (no cookie, unknown, expired, or its subject's sessions
   * revoked by a watermark since it began: the browser then sees itself signed out).
   */
  async session(cookieValue: string | undefined): Promise<BrowserSession | undefined> {
    if (!isOpaqueValue(cookieValue)) return undefined;
    const session = await this.#records.get(browserSessions, cookieValue);
    if (session === undefined || session.expiresAt <= this.#now()) return undefined;
    return (await this.#records.guard(() => isRevoked(this.#revocations, session))) ? undefined : session;
  }

  /**
   * A reference to the session a cookie names that is not the cookie (its SHA-256, the key part the
   * store uses): what another record keeps to follow the session (the OpenID Provider's session link)
   * without holding the cookie itself. Undefined when the value is not one of ours.
   */
  sessionReference(cookieValue: string | undefined): string | undefined {
    return isOpaqueValue(cookieValue) ? secretDigest(cookieValue) : undefined;
  }

  /** The live session a reference names (`sessionReference`), with the same checks as `session`. */
  async sessionByReference(reference: string): Promise<BrowserSession | undefined> {
    const session = await this.#records.get(browserSessionsByReference, reference);
    if (session === undefined || session.expiresAt <= this.#now()) return undefined;
    return (await this.#records.guard(() => isRevoked(this.#revocations, session))) ? undefined : session;
  }

  /** Ends the session a cookie names; returns it when there was one. */
  async endSession(cookieValue: string | undefined): Promise<BrowserSession | undefined> {
    return isOpaqueValue(cookieValue) ? this.#records.take(browserSessions, cookieValue) : undefined;
  }

  /**
   * The pending login a password provider's form belongs to (checked as the callback checks it: this
   * provider, this browser), without taking it: the form may be sent again after a wrong password.
   */
  async pendingPasswordLogin(providerId: string, state: string | undefined, cookie: (name: string) => string | undefined): Promise<LoginTransaction> {
    const provider = this.requirePasswordProvider(providerId);
    const transaction = isOpaqueValue(state) ? await this.#records.get(loginTransactions, state) : undefined;
    if (transaction === undefined || transaction.state !== state || transaction.startedAt + LOGIN_TRANSACTION_TTL_MS <= this.#now()) {
      throw new LoginFailure('state_unknown', 'This sign-in form does not belong to a sign-in in progress: it expired, was already used, or was started elsewhere. Start again.');
    }
    if (transaction.provider !== provider.id) throw new LoginFailure('provider_mismatch', 'This sign-in form is for a different identity provider than the one the sign-in was started with. Start again.');
    const binding = cookie(this.loginCookieName(state)!);
    if (binding === undefined || !equalSecretText(secretDigest(binding), transaction.bindingHash)) {
      throw new LoginFailure('browser_mismatch', 'This sign-in form was opened in a different browser from the one that started the sign-in. Start again from this site, in one browser.', {
        debug: binding === undefined ? 'no login cookie' : 'login cookie does not match',
      });
    }
    return transaction;
  }

  /**
   * A password provider's form: checks the username and password, keeps the identity in the login
   * transaction (its remaining lifetime) under a new one-time code, and returns the callback path that
   * finishes the login with it. A wrong password leaves the transaction as it was.
   */
  async checkPassword(providerId: string, form: { state: string | undefined; username: string; password: string }, cookie: (name: string) => string | undefined): Promise<string> {
    const transaction = await this.pendingPasswordLogin(providerId, form.state, cookie);
    const provider = this.requirePasswordProvider(providerId);
    const identity = await provider.checkPassword!(form.username, form.password);
    const code = newOpaqueValue();
    const remainingMs = transaction.startedAt + LOGIN_TRANSACTION_TTL_MS - this.#now();
    if (remainingMs <= 0) throw new LoginFailure('state_unknown', 'This sign-in took too long and expired. Start again.');
    await this.#records.put(loginTransactions, transaction.state, { ...transaction, verified: { identity, codeHash: secretDigest(code) } }, remainingMs);
    return `/callback/${encodeURIComponent(provider.id)}?${new URLSearchParams({ state: transaction.state, code }).toString()}`;
  }

  /** A provider with a sign-in form; a 404 LoginFailure for any other. */
  requirePasswordProvider(providerId: string): BrowserLoginProvider {
    const provider = this.requireProvider(providerId);
    if (provider.protocol !== 'password' || provider.checkPassword === undefined) throw new LoginFailure('unknown_provider', 'There is no such sign-in form here.', { code: 'NotFound' });
    return provider;
  }

  /** The provider named in a login's path; a 404 LoginFailure when there is none. */
  requireProvider(providerId: string): BrowserLoginProvider {
    const provider = this.#providers.get(providerId);
    if (!provider) throw new LoginFailure('unknown_provider', 'There is no such identity provider here.', { code: 'NotFound' });
    return provider;
  }
}

