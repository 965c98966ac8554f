/**
 * Finishing a login at `/callback/:provider`: the provider's answer becomes an identity, the rules must
 * grant it a role (no role, no session), and the login ends in a browser session or, for a terminal's
 * login (`stsgate login`), in a one-time code for the command's loopback address. The outcome is a tagged
 * result the route renders; nothing is routed by mutating an error on its way up.
 */
import { accountLabel } from '../domain/account-label.js';
import type { Identity } from '../domain/types.js';
import { GatewayError, type DecisionContext } from '../errors/gateway-error.js';
import type { BrowserLogin, CompletedLogin } from './browser-login.js';
import { LoginFailure } from './login-failure.js';
import { PASTED_CODE_REDIRECT, type TerminalRequest } from './terminal-login.js';

/** What a callback asks of the flow: the provider, the callback's query, and this browser's cookies. */
export interface CallbackRequest {
  providerId: string;
  parameters: URLSearchParams;
  /** Reads a cookie of this request (the login cookie that binds the transaction to the browser). */
  cookie(name: string): string | undefined;
  /** The browser session cookie it already has, ended when a new session begins (no session fixation). */
  previousSessionCookie: string | undefined;
  /** The request's id, named in a refusal sent to a terminal's loopback address. */
  requestId: string;
}

/** A refusal by the rules, for the audit line only: the closest rule, what it lacked, and the account the page named. */
export type LoginRefusal = Pick<DecisionContext, 'closestRule' | 'failing' | 'account'>;

/** How a callback ended; the route renders each kind. */
export type LoginOutcome =
  /** A new browser session: set its cookie and send the browser on (303) to `redirectTo`. */
  | { kind: 'browser_session'; provider: string; identity: Identity; cookieValue: string; redirectTo: string }
  /** A terminal login: no cookie; the browser goes on (303) to the command's loopback address with a one-time code. */
  | { kind: 'terminal_code'; provider: string; identity: Identity; redirectTo: string }
  /** A terminal login without a loopback address (`--paste-code`): the page shows the one-time code to paste. */
  | { kind: 'terminal_code_shown'; provider: string; identity: Identity; code: string }
  /** A refused terminal login: the command hears why at its loopback address (RFC 6749 §4.1.2.1) instead of waiting. */
  | { kind: 'terminal_refused'; provider: string; identity?: Identity; reason: string; redirectTo: string; refusal?: LoginRefusal }
  /** A refused or failed browser login: `error` is rendered as the error page. */
  | { kind: 'failed'; provider: string; identity?: Identity; reason: string; error: unknown; refusal?: LoginRefusal };

/** Finishes browser and terminal logins: rules, the no-role refusal, session or terminal code. */
export class LoginFlow {
  readonly #login: BrowserLogin;
  readonly #grantedRoles: (identity: Identity) => string[];
  readonly #explainRefusal: ((identity: Identity) => Pick<DecisionContext, 'closestRule' | 'failing'> | undefined) | undefined;

  /** `explainRefusal`: the rule that came closest for an identity no rule grants anything (for the audit line). */
  constructor(options: { login: BrowserLogin; grantedRoles(identity: Identity): string[]; explainRefusal?(identity: Identity): Pick<DecisionContext, 'closestRule' | 'failing'> | undefined }) {
    this.#login = options.login;
    this.#grantedRoles = options.grantedRoles;
    this.#explainRefusal = options.explainRefusal;
  }

  /**
   * Finishes the login a callback answers. Throws only for an unknown provider (a 404, nothing to audit);
   * every other end, success or not, is an outcome.
   */
  async finish(request: CallbackRequest): Promise<LoginOutcome> {
    return this.#conclude(request.providerId, request, async () => {
      const matched = await this.#login.match(request.providerId, request.parameters, request.cookie);
      return { terminal: matched.terminal, complete: () => this.#login.completeMatched(matched, request.parameters) };
    });
  }

  /**
   * Finishes an IdP-initiated SAML login posted to the ACS: no transaction, so no return_to, role or
   * terminal; refused unless the provider allows them (`BrowserLogin.completeUnsolicited`).
   */
  async finishUnsolicited(request: { providerId: string; samlResponse: string; previousSessionCookie: string | undefined; requestId: string }): Promise<LoginOutcome> {
    return this.#conclude(request.providerId, request, async () => ({ terminal: undefined, complete: () => this.#login.completeUnsolicited(request.providerId, request.samlResponse) }));
  }

  /** The rules, the no-role refusal, and the session or terminal code, after `begin` matched and `complete` verified the answer. */
  async #conclude(
    providerId: string,
    request: { previousSessionCookie: string | undefined; requestId: string },
    begin: () => Promise<{ terminal: TerminalRequest | undefined; complete: () => Promise<CompletedLogin> }>,
  ): Promise<LoginOutcome> {
    const provider = this.#login.requireProvider(providerId);
    let identity: Identity | undefined;
    let terminal: TerminalRequest | undefined;
    let refusal: LoginRefusal | undefined;
    try {
      const begun = await begin();
      terminal = begun.terminal;
      const completed = await begun.complete();
      identity = completed.identity;
      const roles = this.#grantedRoles(identity);
      if (roles.length === 0) {
        // Which rule came close is never said: that would teach someone which claims to go and get. Only
        // the audit line names it, for the administrators the page sends this person to.
        refusal = { ...this.#explainRefusal?.(identity), account: accountLabel(identity) };
        throw new LoginFailure('no_role', `You signed in with ${provider.displayName} as ${accountLabel(identity)}, but this account is not allowed any role here. If you expected access, ask the gateway's administrators, naming this account.`, {
          code: 'AccessDenied',
        });
      }
      if (completed.terminal) {
        const code = await this.#login.terminal.issueCode(identity, providerId, completed.terminal);
        if (completed.terminal.redirectUri === PASTED_CODE_REDIRECT) return { kind: 'terminal_code_shown', provider: providerId, identity, code };
        return { kind: 'terminal_code', provider: providerId, identity, redirectTo: loopbackRedirect(completed.terminal, { code }) };
      }
      const { cookieValue } = await this.#login.createSession(identity, providerId, request.previousSessionCookie);
      // On to the role asked for, granted or not: the page shows it chosen, or says in words that this
      // account lacks it and which roles it has (rather than a start page that leaves the person guessing).
      const wanted = completed.role !== undefined ? `/?role=${encodeURIComponent(completed.role)}` : '/';
      return { kind: 'browser_session', provider: providerId, identity, cookieValue, redirectTo: completed.returnTo ?? wanted };
    } catch (err) {
      const reason = err instanceof LoginFailure ? err.reason : err instanceof GatewayError ? err.code : 'internal';
      const who = { ...(identity ? { identity } : {}), ...(refusal ? { refusal } : {}) };
      // Only a refusal (a LoginFailure) after the transaction matched goes to the terminal: a login that
      // did not match is not this browser's to report, and a store failure is the gateway's error page.
      // A terminal waiting for a pasted code has no address to hear it at: the error page says it.
      if (err instanceof LoginFailure && terminal && terminal.redirectUri !== PASTED_CODE_REDIRECT) {
        const error = err.status >= 500 ? 'temporarily_unavailable' : 'access_denied';
        return { kind: 'terminal_refused', provider: providerId, ...who, reason, redirectTo: loopbackRedirect(terminal, { error, error_description: `${oauthText(err.message)} (request id ${request.requestId})` }) };
      }
      return { kind: 'failed', provider: providerId, ...who, reason, error: err };
    }
  }
}

/** The command's loopback redirect URI with the answer's parameters and its own state (RFC 6749 §4.1.2). */
function loopbackRedirect(request: TerminalRequest, parameters: Record<string, string>): string {
  return `${request.redirectUri}?${new URLSearchParams({ ...parameters, state: request.state }).toString()}`;
}

/** RFC 6749 §4.1.2.1: error_description is printable ASCII without `"` and `\`. */
function oauthText(text: string): string {
  return text.replace(/[‘’]/g, "'").replace(/[—–]/g, '-').replace(/…/g, '...').replace(/[^\x20\x21\x23-\x5b\x5d-\x7e]/g, '').slice(0, 500);
}
