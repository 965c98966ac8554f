/**
 * Logins for terminals (`stsgate login`), shaped like OAuth 2.0 for native apps (RFC 8252): the command
 * listens on a loopback port, sends the browser to `/cli/login` with its loopback redirect URI, a state
 * and a PKCE S256 challenge (RFC 7636), and after the normal browser login the gateway redirects to the
 * loopback URI with a one-time code. The command redeems the code with its PKCE verifier at `/cli/token`
 * for an opaque terminal session token, which `GET /v1/credentials` accepts as a bearer token
 * (RFC 6750 §2.1). A code read off the loopback redirect (by another local process, a browser extension,
 * the history) is useless without the verifier, which never left the command. A terminal without a browser
 * asks for `PASTED_CODE_REDIRECT` instead: the code is shown on the gateway's page, to be pasted.
 *
 * Store keys are SHA-256 of the code and of the token, so a dump of the store hands out neither.
 */
import { createHash } from 'node:crypto';
import type { RevocationWatermarks } from '../credentials/revocations.js';
import type { Identity } from '../domain/types.js';
import { GatewayError } from '../errors/gateway-error.js';
import { storeKeys } from '../store/keys.js';
import { jsonRecord, Records } from '../store/records.js';
import type { Store } from '../store/store.js';
import { LoginFailure } from './login-failure.js';
import { equalSecretText, isOpaqueValue, newOpaqueValue } from '../util/secret-text.js';

/**
 * The redirect URI of a terminal without a browser of its own (`stsgate login --paste-code`): the gateway
 * shows the one-time code on its page instead of redirecting, and the person pastes it into the terminal.
 * The out-of-band value Google's installed-app flow used; the code is bound to it like to a loopback URI.
 */
export const PASTED_CODE_REDIRECT = 'urn:ietf:wg:oauth:2.0:oob';

/** What `/cli/login` carries through the browser login, in the login transaction. */
export interface TerminalRequest {
  /** The command's loopback redirect URI, exactly as checked by `checkLoopbackRedirect`, or `PASTED_CODE_REDIRECT`. */
  redirectUri: string;
  /** BASE64URL(SHA256(verifier)) (RFC 7636 §4.2, S256 only). */
  codeChallenge: string;
  /** The command's own state, echoed back so it can tell its answer from an injected one (RFC 8252 §8.9). */
  state: string;
}

/** A terminal session, as stored behind the bearer token. */
export interface TerminalSession {
  identity: Identity;
  provider: string;
  /** Epoch milliseconds. */
  createdAt: number;
  expiresAt: number;
}

/** A redeemed code: the new session and its token (shown to the command once, never stored). */
export interface NewTerminalSession {
  token: string;
  session: TerminalSession;
}

interface StoredCode {
  v: 1;
  identity: Identity;
  provider: string;
  redirectUri: string;
  codeChallenge: string;
}

/**
 * How long a code may wait for its redemption. The command redeems it the moment its loopback server
 * receives it; RFC 6749 §4.1.2 recommends at most ten minutes, one is plenty.
 */
export const TERMINAL_CODE_TTL_MS = 60_000;

/** How long a code shown on the page may wait: the person copies it into a terminal on another machine. */
export const PASTED_CODE_TTL_MS = 5 * 60_000;

/** One-time codes, under the hash of the code; redeemed (taken) once. */
const terminalCodes = jsonRecord<StoredCode>({ key: storeKeys.terminalCode, secretId: true, ttlMs: TERMINAL_CODE_TTL_MS });
/** Terminal sessions, under the hash of the bearer token; they last as long as browser sessions. */
const terminalSessions = jsonRecord<TerminalSession>({ key: storeKeys.terminalSession, secretId: true });

/** RFC 7636 §4.1: a verifier is 43-128 unreserved characters; §4.2: an S256 challenge is 43 base64url characters. */
const VERIFIER = /^[A-Za-z0-9._~-]{43,128}$/;
const CHALLENGE = /^[A-Za-z0-9_-]{43}$/;
/** The command's state: unreserved characters, long enough to be unguessable, short enough to be harmless. */
const STATE = /^[A-Za-z0-9._~-]{16,128}$/;
/**
 * RFC 8252 §7.3: a loopback redirect URI names the IP literal (not `localhost`, §8.3) and any port, which
 * the command picks at random. Only 127.0.0.1 and [::1] over plain http, an explicit port, and a plain path
 * (segments of unreserved characters that cannot be `.` or `..`); no query, fragment or user info. The raw
 * text is matched, not a parsed URL: parsers turn `127.1` or `0x7f.0.0.1` into 127.0.0.1, and what the
 * gateway checks must be what the browser is sent to.
 */
const LOOPBACK_REDIRECT = /^http:\/\/(?:127\.0\.0\.1|\[::1\]):([1-9][0-9]{0,4})((?:\/[A-Za-z0-9_~-][A-Za-z0-9._~-]{0,63}){0,8}\/?)$/;

/** The loopback redirect URI `raw` when RFC 8252 §7.3 allows it for the terminal flow, else undefined. */
export function checkLoopbackRedirect(raw: string): string | undefined {
  const match = LOOPBACK_REDIRECT.exec(raw);
  if (!match || Number(match[1]) > 65_535) return undefined;
  return raw;
}

/** The S256 challenge of a PKCE verifier (RFC 7636 §4.2). */
export function pkceChallenge(verifier: string): string {
  return createHash('sha256').update(verifier, 'ascii').digest('base64url');
}

/**
 * Validates `/cli/login`'s parameters into a TerminalRequest; a LoginFailure (shown on the gateway's
 * error page, nothing redirected) for anything else. `plain` PKCE is refused (RFC 7636 §7.2: S256 only
 * when the client can do it, and the stsgate command can).
 */
export function parseTerminalRequest(parameters: { redirectUri?: string; codeChallenge?: string; codeChallengeMethod?: string; state?: string }): TerminalRequest {
  const redirectUri = parameters.redirectUri === PASTED_CODE_REDIRECT ? PASTED_CODE_REDIRECT : parameters.redirectUri === undefined ? undefined : checkLoopbackRedirect(parameters.redirectUri);
  if (redirectUri === undefined) {
    throw new LoginFailure('bad_request', `This terminal sign-in link does not name a loopback address (http://127.0.0.1:PORT/… or http://[::1]:PORT/…) to return to, nor ${PASTED_CODE_REDIRECT} (show the code), so it was not followed.`);
  }
  if (parameters.codeChallengeMethod !== 'S256' || parameters.codeChallenge === undefined || !CHALLENGE.test(parameters.codeChallenge)) {
    throw new LoginFailure('bad_request', 'This terminal sign-in link has no valid PKCE S256 code challenge. Run stsgate login again.');
  }
  if (parameters.state === undefined || !STATE.test(parameters.state)) {
    throw new LoginFailure('bad_request', 'This terminal sign-in link has no valid state. Run stsgate login again.');
  }
  return { redirectUri, codeChallenge: parameters.codeChallenge, state: parameters.state };
}

/** The one-time codes and the sessions of terminal logins. */
export class TerminalSessions {
  readonly #records: Records;
  readonly #ttlMs: number;
  readonly #now: () => number;
  readonly #revocations: RevocationWatermarks | undefined;

  constructor(options: { store: Store; sessionTtlSeconds: number; now?: () => number; revocations?: RevocationWatermarks }) {
    this.#records = new Records(options.store, 'session');
    this.#ttlMs = options.sessionTtlSeconds * 1000;
    this.#now = options.now ?? Date.now;
    this.#revocations = options.revocations;
  }

  /** Session lifetime in seconds (the token response's `expires_in`). */
  get ttlSeconds(): number {
    return this.#ttlMs / 1000;
  }

  /** A one-time code for a completed login, bound to the request's redirect URI and PKCE challenge; kept one minute (five when it is to be pasted). */
  async issueCode(identity: Identity, provider: string, request: TerminalRequest): Promise<string> {
    const code = newOpaqueValue();
    const ttlMs = request.redirectUri === PASTED_CODE_REDIRECT ? PASTED_CODE_TTL_MS : TERMINAL_CODE_TTL_MS;
    await this.#records.put(terminalCodes, code, { v: 1, identity, provider, redirectUri: request.redirectUri, codeChallenge: request.codeChallenge }, ttlMs);
    return code;
  }

  /**
   * Redeems a code (RFC 6749 §4.1.3 with RFC 7636 §4.6): the code is taken before anything is checked,
   * so it works once whatever happens next, and a wrong verifier burns it. The redirect URI must be the
   * one the code was issued for. Every refusal is `invalid_grant`, without saying which check failed.
   */
  async redeem(request: { code: string; codeVerifier: string; redirectUri: string }): Promise<NewTerminalSession> {
    const refused = (debug: string) => new GatewayError('invalid_grant', 'The code is invalid, expired, already used, or was issued for another verifier or redirect URI.', { debug });
    if (!isOpaqueValue(request.code)) throw refused('malformed code');
    if (!VERIFIER.test(request.codeVerifier)) throw new GatewayError('invalid_request', 'code_verifier must be 43-128 unreserved characters (RFC 7636 §4.1).');
    const stored = await this.#records.take(terminalCodes, request.code);
    if (stored === undefined) throw refused('unknown, expired or used code');
    if (!equalSecretText(pkceChallenge(request.codeVerifier), stored.codeChallenge)) throw refused('PKCE verifier does not match the challenge');
    if (request.redirectUri !== stored.redirectUri) throw refused('redirect_uri differs from the one the code was issued for');
    const token = newOpaqueValue();
    const createdAt = this.#now();
    const session: TerminalSession = { identity: stored.identity, provider: stored.provider, createdAt, expiresAt: createdAt + this.#ttlMs };
    await this.#records.put(terminalSessions, token, session, this.#ttlMs);
    return { token, session };
  }

  /**
   * A terminal session for an identity a caller has already established (`stsgate login --device`: a
   * device grant approved in a signed-in browser, checked by the OpenID Provider).
   */
  async create(identity: Identity, provider: string): Promise<NewTerminalSession> {
    const token = newOpaqueValue();
    const createdAt = this.#now();
    const session: TerminalSession = { identity, provider, createdAt, expiresAt: createdAt + this.#ttlMs };
    await this.#records.put(terminalSessions, token, session, this.#ttlMs);
    return { token, session };
  }

  /**
   * The live session a bearer token names, or undefined (unknown, expired, or its subject's sessions revoked
   * by a watermark since it began: the command is told to log in again).
   */
  async session(token: string | undefined): Promise<TerminalSession | undefined> {
    if (!isOpaqueValue(token)) return undefined;
    const session = await this.#records.get(terminalSessions, token);
    if (session === undefined || session.expiresAt <= this.#now()) return undefined;
    return (await this.#records.guard(() => isRevoked(this.#revocations, session))) ? undefined : session;
  }

  /** Ends the session a bearer token names; returns it when there was one. */
  async end(token: string | undefined): Promise<TerminalSession | undefined> {
    return isOpaqueValue(token) ? this.#records.take(terminalSessions, token) : undefined;
  }
}

/**
 * Whether a revocation watermark voids a browser or terminal session (they belong to an identity, not a
 * role): one store round trip, on every use.
 */
export async function isRevoked(revocations: RevocationWatermarks | undefined, session: { identity: Identity; createdAt: number }): Promise<boolean> {
  if (!revocations) return false;
  const { source, subject } = session.identity;
  return (await revocations.covering({ source, subject, issuedAtMs: session.createdAt })) !== undefined;
}
