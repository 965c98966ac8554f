/**
 * stsgate as an OpenID Provider ("Sign in with stsgate" for Grafana, Argo CD, Vault, kubelogin...), built
 * on panva's oidc-provider, under the gateway's own issuer (`public_url`):
 *
 * - Its keys are stsgate's signing keys: the current key of `signing.algorithm` signs ID tokens, and the
 *   provider is rebuilt when a rotation makes another key current (every replica reads the same keys file,
 *   so every replica signs with the same key at the same time). The JWKS is the gateway's own route.
 * - Its storage is the Store (`store-adapter.ts`): every replica serves every step.
 * - Its people are stsgate's browser sessions. The account id (`sub`) is `<source>:<subject>`, as in
 *   stsgate's access tokens: stable per upstream account, the same for every client. An authorization
 *   request is answered for the browser's stsgate session only; without one (or with one for someone else)
 *   the login prompt asks, and the interaction (the http layer's `/oauth2/interaction/:uid`) sends the
 *   person to stsgate's sign-in page. `prompt=none` then fails with login_required.
 * - Every code and token is bound to that stsgate session through the OP session it was issued in (a link
 *   record, `op:link:<uid>`): when the session ends (logout, expiry) or `stsgate revoke` covers it, refresh
 *   tokens and userinfo stop working on every replica (findAccount finds no account).
 */
import { hkdfSync, KeyObject } from 'node:crypto';
import Provider, { interactionPolicy, type Grant, type OidcToken, type ProviderContext } from 'oidc-provider';
import { CLIENT_SCOPE_CLAIMS, type ClientClaim } from '../config/schema.js';
import type { OidcClientConfig, SigningAlgorithm } from '../config/types.js';
import type { SecretBox } from '../credentials/secret-box.js';
import type { SigningKey, SigningKeySource } from '../credentials/signing-keys.js';
import { DEVICE_CODE_GRANT, OP_CLIENT_AUTH_METHODS, OP_ROUTES } from '../domain/oauth-identifiers.js';
import type { Identity } from '../domain/types.js';
import type { BrowserLogin, BrowserSession } from '../idp/index.js';
import { storeKeys } from '../store/keys.js';
import type { Logger } from '../observability/logger.js';
import { jsonRecord, Records } from '../store/records.js';
import type { Store } from '../store/store.js';
import { clientClaims, subjectOf } from './claims.js';
import { storeAdapterFactory } from './store-adapter.js';

export { OP_ROUTES };

import { INTERACTION_PATH, SILENT_PARAMETER } from './protocol.js';

export { INTERACTION_PATH, OP_GRANT_TYPES, SILENT_PARAMETER } from './protocol.js';

const GRANT_TYPE_NAMES = { authorization_code: 'authorization_code', refresh_token: 'refresh_token', device_code: DEVICE_CODE_GRANT } as const;

/** Lifetimes (seconds) of what is not per client: a code is redeemed at once (RFC 6749 §4.1.2 says ten minutes at most). */
const CODE_TTL_SECONDS = 60;
const DEVICE_CODE_TTL_SECONDS = 600;
/** An interaction lasts through an upstream login, which may take its ten minutes. */
const INTERACTION_TTL_SECONDS = 900;

/** The OP's cookies (its own, beside stsgate's session cookie). */
const COOKIE_NAMES = { session: 'stsgate_op_session', interaction: 'stsgate_op_interaction', resume: 'stsgate_op_resume', state: 'stsgate_op_state' };

/** The pages the OP shows (rendered by the http layer, which owns the look of every page). */
export interface OpPages {
  /** The Content-Security-Policy of these pages. */
  readonly csp: string;
  /** Device flow (RFC 8628 §3.3): the form where a person types the user code; `error` when the last one was wrong. */
  deviceCodeInput(form: string, error?: string): string;
  /** Device flow: confirm signing in `clientName` on the device showing `userCode`. */
  deviceCodeConfirm(form: string, clientName: string, userCode: string): string;
  /** Device flow: done, back to the device. */
  deviceDone(clientName: string | undefined): string;
  /** RP-initiated logout: confirm signing out (the form's buttons post `logout=yes` to sign out of stsgate too). */
  logoutConfirm(form: string, clientName: string | undefined): string;
  /** After a logout without a redirect back to the client. */
  loggedOut(): string;
  /** An error the OP shows instead of redirecting (no valid redirect URI to send it to). */
  error(error: string, description: string | undefined): string;
}

export interface OpenIdProviderOptions {
  publicUrl: string;
  clients: readonly OidcClientConfig[];
  store: Store;
  /** Seals what the OP stores; the same key on every replica (`credentials.encryption_key`). */
  box: SecretBox;
  /** A secret shared by every replica, from which the OP's cookie keys are derived (the encryption key). */
  cookieSecret: Buffer;
  keys: SigningKeySource;
  /** The algorithm ID tokens are signed with (`signing.algorithm`). */
  algorithm: SigningAlgorithm;
  login: BrowserLogin;
  /** Every role the rules grant an identity (the `roles` claim, narrowed to what a client may see). */
  grantedRoles(identity: Identity): string[];
  /** `browser.session_ttl_seconds`: the OP session and a refresh token last no longer by default. */
  browserSessionTtlSeconds: number;
  pages: OpPages;
  /** Where oidc-provider's own failures go: it answers them (server_error, invalid_grant…) without logging. */
  logger?: Logger;
  now?: () => number;
}

export { clientClaims, identityClaims, subjectOf, upstreamGroups } from './claims.js';

/** What the link from an OP session to the stsgate browser session holds. */
interface SessionLink {
  /** `BrowserLogin.sessionReference` of the stsgate session cookie. */
  session: string;
  sub: string;
}

/** Links from a provider session (by its uid, hashed) to the stsgate session; as long as that session lives. */
const sessionLinks = jsonRecord<SessionLink>({ key: storeKeys.opSessionLink, secretId: true });
/** When stsgate's sign-in page was shown for an interaction asking for a fresh sign-in (epoch ms). */
const signInShown = jsonRecord<number>({ key: storeKeys.opSignInShown, secretId: true, ttlMs: INTERACTION_TTL_SECONDS * 1000 });

/** A started interaction, as the interaction page needs it. */
export interface InteractionView {
  uid: string;
  clientId: string;
  clientName: string;
  /** The prompt oidc-provider asks for (`login`, or `consent` when a grant lacks something). */
  prompt: string;
  /**
   * The client asked for a fresh sign-in (`prompt=login`, or a `max_age` the session is older than): a
   * stsgate session older than the interaction does not answer it; the person signs in upstream again.
   */
  freshLogin: boolean;
  /** The request was `prompt=none` (see SILENT_PARAMETER): nothing may be shown. */
  silent: boolean;
}

/** The OpenID Provider: builds oidc-provider for the current key and answers its interactions. */
export class OpenIdProvider {
  readonly #options: OpenIdProviderOptions;
  readonly #clients: ReadonlyMap<string, OidcClientConfig>;
  readonly #now: () => number;
  readonly #cookieKeys: string[];
  readonly #maxTtlSeconds: number;
  /** The OP's own records (session links, sign-in marks); a store failure is ServiceUnavailable. */
  readonly #records: Records;
  #built: BuiltProvider | undefined;
  #building: Promise<BuiltProvider> | undefined;

  constructor(options: OpenIdProviderOptions) {
    this.#options = options;
    this.#clients = new Map(options.clients.map((client) => [client.id, client]));
    this.#now = options.now ?? Date.now;
    this.#records = new Records(options.store, 'session');
    // Derived, not the encryption key itself: a cookie key that leaks through the OP opens nothing else.
    this.#cookieKeys = [Buffer.from(hkdfSync('sha256', options.cookieSecret, 'stsgate', 'oidc-provider cookie keys', 32)).toString('base64url')];
    const refreshLifetimes = options.clients.map((client) => client.lifetimes.refreshTokenSeconds ?? options.browserSessionTtlSeconds);
    this.#maxTtlSeconds = Math.max(options.browserSessionTtlSeconds, DEVICE_CODE_TTL_SECONDS, INTERACTION_TTL_SECONDS, ...refreshLifetimes, ...options.clients.map((c) => c.lifetimes.accessTokenSeconds));
  }

  /** Whether any client may use the device flow (RFC 8628): its endpoints are served only then. */
  get deviceFlow(): boolean {
    return this.#options.clients.some((client) => client.grantTypes.includes('device_code'));
  }

  /**
   * oidc-provider's request handler for the key that signs now (the http layer decides which requests are
   * the OP's). Getting it may fail (no usable key); once called, the handler answers every request itself.
   */
  async requestHandler(): Promise<ReturnType<Provider['callback']>> {
    return (await this.#current()).callback;
  }

  /** Hands a request to oidc-provider, which answers it. */
  async handle(req: Parameters<ReturnType<Provider['callback']>>[0], res: Parameters<ReturnType<Provider['callback']>>[1]): Promise<void> {
    await (await this.requestHandler())(req, res);
  }

  /** The interaction the browser's interaction cookie names. Throws (oidc-provider's SessionNotFound) when there is none. */
  async interaction(req: Parameters<Provider['interactionDetails']>[0], res: Parameters<Provider['interactionDetails']>[1]): Promise<InteractionView> {
    const { provider } = await this.#current();
    const details = await provider.interactionDetails(req, res);
    const clientId = String(details.params.client_id ?? '');
    const reasons = details.prompt.reasons;
    return {
      uid: details.uid,
      clientId,
      clientName: this.#clients.get(clientId)?.name ?? clientId,
      prompt: details.prompt.name,
      freshLogin: reasons.includes('login_prompt') || reasons.includes('max_age'),
      silent: details.params[SILENT_PARAMETER] === '1',
    };
  }

  /**
   * For an interaction that asks for a fresh sign-in: records that the sign-in page is shown for it now
   * (kept as long as the interaction). A stsgate session begun since then is a fresh sign-in; one from
   * before is not.
   */
  async markSignInShown(uid: string): Promise<void> {
    await this.#records.put(signInShown, uid, this.#now());
  }

  /** When the sign-in page was last shown for this interaction (epoch ms), or undefined. */
  async signInShownAt(uid: string): Promise<number | undefined> {
    return this.#records.get(signInShown, uid);
  }

  /**
   * Finishes an interaction for a signed-in stsgate session: the login is the session's identity (its
   * `sub`), timed when the person signed in upstream. Returns where to send the browser (oidc-provider's
   * resume URL); consent is the client's configured scopes (`loadExistingGrant`), never a screen.
   */
  async finishLogin(req: Parameters<Provider['interactionResult']>[0], res: Parameters<Provider['interactionResult']>[1], session: BrowserSession): Promise<string> {
    const { provider } = await this.#current();
    return provider.interactionResult(req, res, { login: { accountId: subjectOf(session.identity), ts: Math.floor(session.createdAt / 1000), remember: true } }, { mergeWithLastSubmission: false });
  }

  /** Ends an interaction with an OAuth error the client hears (RFC 6749 §4.1.2.1), e.g. access_denied. */
  async abort(req: Parameters<Provider['interactionResult']>[0], res: Parameters<Provider['interactionResult']>[1], error: string, description: string): Promise<string> {
    const { provider } = await this.#current();
    return provider.interactionResult(req, res, { error, error_description: description }, { mergeWithLastSubmission: false });
  }

  /**
   * The person behind an access token of a `terminal_login` client (`stsgate login --device`), while the
   * token is live, the client is one that may open terminal sessions, and the stsgate browser session
   * that approved the device is live and still the token's subject; else undefined.
   */
  async terminalIdentity(accessToken: string): Promise<{ identity: Identity; provider: string; clientId: string } | undefined> {
    if (!/^[\w-]{20,200}$/.test(accessToken)) return undefined;
    const { provider } = await this.#current();
    const token = await provider.AccessToken.find(accessToken);
    if (token === undefined || token.isExpired || typeof token.accountId !== 'string' || typeof token.sessionUid !== 'string') return undefined;
    const client = this.#clients.get(token.clientId);
    if (client === undefined || !client.terminalLogin || !client.grantTypes.includes('device_code')) return undefined;
    const session = await this.#linkedSession(token.sessionUid, token.accountId);
    return session === undefined ? undefined : { identity: session.identity, provider: session.provider, clientId: client.id };
  }

  /** The provider for the key that signs now; rebuilt (once, however many requests wait) when another key became current. */
  async #current(): Promise<BuiltProvider> {
    // The key object itself: a reloaded keys file gives new objects, even for a key of the same kid.
    const key = this.#options.keys.set.current(this.#now(), this.#options.algorithm);
    if (this.#built?.key === key) return this.#built;
    if (!this.#building) {
      this.#building = Promise.resolve().then(() => {
        const provider = this.#build(key);
        return { key, provider, callback: provider.callback() };
      });
      this.#building.then(
        (built) => {
          this.#built = built;
          this.#building = undefined;
        },
        () => {
          this.#building = undefined;
        },
      );
    }
    return this.#building;
  }

  #build(key: SigningKey): Provider {
    const options = this.#options;
    const privateKey = key.privateKey instanceof KeyObject ? key.privateKey : KeyObject.from(key.privateKey as unknown as Parameters<typeof KeyObject.from>[0]);
    const jwk = { ...privateKey.export({ format: 'jwk' }), kid: key.kid, alg: key.alg, use: 'sig' };
    const secure = new URL(options.publicUrl).protocol === 'https:';
    const cookieOptions = { signed: true, secure, sameSite: 'lax', httpOnly: true };
    const clients = this.#clients;
    const lifetime = (client: { clientId: string } | undefined, pick: (config: OidcClientConfig) => number) => {
      const config = client === undefined ? undefined : clients.get(client.clientId);
      return config === undefined ? DEFAULT_TOKEN_SECONDS : pick(config);
    };
    const policy = interactionPolicy.base();
    // The login prompt also asks when the OP session's account is no longer backed by a live stsgate
    // session (signed out, expired, revoked, or another person signed in): findAccount found none.
    policy.get('login')!.checks.add(
      new interactionPolicy.Check('stsgate_session', 'End-User authentication is required', 'login_required', (ctx) => Boolean(ctx.oidc.session.accountId) && ctx.oidc.account === undefined),
      0,
    );

    const provider = new Provider(options.publicUrl, {
      adapter: storeAdapterFactory({ store: options.store, box: options.box, maxTtlSeconds: this.#maxTtlSeconds }),
      clients: options.clients.map((client) => clientMetadata(client, options.algorithm)),
      jwks: { keys: [jwk] },
      cookies: { keys: this.#cookieKeys, names: COOKIE_NAMES, long: cookieOptions, short: cookieOptions },
      routes: OP_ROUTES,
      responseTypes: ['code'],
      extraParams: [SILENT_PARAMETER],
      clientAuthMethods: [...OP_CLIENT_AUTH_METHODS],
      scopes: Object.keys(CLIENT_SCOPE_CLAIMS),
      claims: Object.fromEntries(Object.entries(CLIENT_SCOPE_CLAIMS).filter(([, claims]) => claims.length > 0).map(([scope, claims]) => [scope, [...claims]])),
      // The scopes' claims go into the ID token too: Grafana, Argo CD and Vault read email and groups there.
      conformIdTokenClaims: false,
      pkce: { required: (_ctx: unknown, client: { clientAuthMethod: string }) => client.clientAuthMethod === 'none' },
      // A refresh token for every client allowed the grant (offline_access is not required: the token ends
      // with the stsgate session anyway); rotated at every use (RFC 9700 §4.14.2).
      issueRefreshToken: async (_ctx: unknown, client: { grantTypeAllowed(type: string): boolean }) => client.grantTypeAllowed('refresh_token'),
      rotateRefreshToken: true,
      ttl: {
        AccessToken: (_ctx: unknown, _token: unknown, client: { clientId: string } | undefined) => lifetime(client, (c) => c.lifetimes.accessTokenSeconds),
        IdToken: (_ctx: unknown, _token: unknown, client: { clientId: string } | undefined) => lifetime(client, (c) => c.lifetimes.idTokenSeconds),
        RefreshToken: (_ctx: unknown, _token: unknown, client: { clientId: string } | undefined) => lifetime(client, (c) => c.lifetimes.refreshTokenSeconds ?? options.browserSessionTtlSeconds),
        AuthorizationCode: CODE_TTL_SECONDS,
        DeviceCode: DEVICE_CODE_TTL_SECONDS,
        Interaction: INTERACTION_TTL_SECONDS,
        Session: options.browserSessionTtlSeconds,
        Grant: this.#maxTtlSeconds,
      },
      features: {
        devInteractions: { enabled: false },
        userinfo: { enabled: true },
        rpInitiatedLogout: {
          enabled: true,
          logoutSource: async (ctx: ProviderContext, form: string) => {
            renderPage(ctx, options.pages, options.pages.logoutConfirm(form, clientNameOf(ctx, clients)));
          },
          postLogoutSuccessSource: async (ctx: ProviderContext) => {
            renderPage(ctx, options.pages, options.pages.loggedOut());
          },
        },
        deviceFlow: {
          enabled: this.deviceFlow,
          userCodeInputSource: async (ctx: ProviderContext, form: string, _out: unknown, err: { userCode?: string; message?: string } | undefined) => {
            renderPage(ctx, options.pages, options.pages.deviceCodeInput(form, err === undefined ? undefined : err.userCode !== undefined ? 'That code is not valid or has expired. Check it and try again.' : 'That did not work. Try again.'));
          },
          userCodeConfirmSource: async (ctx: ProviderContext, form: string, client: { clientId: string }, _deviceInfo: unknown, userCode: string) => {
            renderPage(ctx, options.pages, options.pages.deviceCodeConfirm(form, clients.get(client.clientId)?.name ?? client.clientId, userCode));
          },
          successSource: async (ctx: ProviderContext) => {
            renderPage(ctx, options.pages, options.pages.deviceDone(clientNameOf(ctx, clients)));
          },
        },
        // Off: stsgate's own /oauth2/introspect and /oauth2/revoke serve its tokens; the OP's tokens end with
        // the browser session, RP-initiated logout or `stsgate revoke`.
        introspection: { enabled: false },
        revocation: { enabled: false },
        registration: { enabled: false },
        pushedAuthorizationRequests: { enabled: false },
        resourceIndicators: { enabled: false },
        dPoP: { enabled: false },
        claimsParameter: { enabled: false },
      },
      enabledJWA: { idTokenSigningAlgValues: [options.algorithm] },
      interactions: { url: (_ctx: unknown, interaction: { uid: string }) => `${INTERACTION_PATH}${interaction.uid}`, policy },
      findAccount: (ctx: ProviderContext, sub: string, token?: OidcToken) => this.#findAccount(ctx, sub, token),
      loadExistingGrant: (ctx: ProviderContext) => this.#grantFor(ctx),
      renderError: async (ctx: ProviderContext, out: { error: string; error_description?: string }) => {
        renderPage(ctx, options.pages, options.pages.error(out.error, out.error_description));
      },
    });
    // Behind the gateway's own listener: oidc-provider must take the request as the public URL's scheme
    // (its Secure cookies), which the forwarding code in the http layer states in X-Forwarded-Proto.
    provider.proxy = true;
    // oidc-provider answers its errors itself; the gateway's log hears of them (codes and messages only:
    // never a token, a code or a body).
    const logger = options.logger;
    if (logger) {
      provider.on('server_error', (_ctx: unknown, err: unknown) => logger.error({ op: 'server_error', err: err instanceof Error ? err.message : String(err) }, 'OpenID Provider server error'));
      for (const event of ['grant.error', 'authorization.error', 'userinfo.error', 'end_session.error', 'device_authorization.error', 'code_verification.error']) {
        provider.on(event, (ctx: unknown, err: unknown) => {
          const refusal = err as { error?: string; error_description?: string } | undefined;
          const clientId = (ctx as { oidc?: { client?: { clientId?: string } } } | undefined)?.oidc?.client?.clientId;
          logger.info({ op: event, error: refusal?.error, description: refusal?.error_description, clientId }, 'OpenID Provider refused a request');
        });
      }
    }
    // RP-initiated logout that signs out everywhere (`logout=yes`) ends the stsgate session in this browser
    // too. Not the logout oidc-provider runs itself when another person signs in over an old provider
    // session (it then resumes the authorization): that person's stsgate session is the new one.
    const resumePaths = [OP_ROUTES.authorization, OP_ROUTES.code_verification].map((path) => `${options.publicUrl}${path}/`);
    provider.use(async (ctx, next) => {
      await next();
      const location = ctx.response.get('Location');
      if (ctx.oidc?.route === 'end_session_confirm' && ctx.status === 303 && ctx.oidc.params?.logout && !resumePaths.some((path) => location.startsWith(path))) {
        const cookie = ctx.cookies.get(options.login.cookieName, { signed: false });
        if (cookie !== undefined) {
          await options.login.endSession(cookie);
          ctx.append('Set-Cookie', `${options.login.cookieName}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax${secure ? '; Secure' : ''}`);
        }
      }
    });
    return provider;
  }

  /**
   * oidc-provider's findAccount. With a token (a code, refresh or access token, a device code), the account
   * lives only while the stsgate session linked to the token's OP session does. Without one (an
   * authorization request in the browser), only while this browser's stsgate session is for `sub`; the
   * link from the OP session to it is written then.
   */
  async #findAccount(ctx: ProviderContext, sub: string, token: OidcToken | undefined) {
    const options = this.#options;
    let session: BrowserSession | undefined;
    if (token !== undefined) {
      if (typeof token.sessionUid !== 'string') return undefined;
      session = await this.#linkedSession(token.sessionUid, sub);
    } else {
      const cookie = ctx.cookies.get(options.login.cookieName, { signed: false });
      session = await options.login.session(cookie);
      const uid = ctx.oidc.session?.uid;
      const reference = options.login.sessionReference(cookie);
      if (session !== undefined && subjectOf(session.identity) === sub && uid !== undefined && reference !== undefined) {
        const link: SessionLink = { session: reference, sub };
        await this.#records.put(sessionLinks, uid, link, Math.max(1, Math.min(session.expiresAt - this.#now(), this.#maxTtlSeconds * 1000)));
      }
    }
    if (session === undefined || subjectOf(session.identity) !== sub) return undefined;
    const identity = session.identity;
    return {
      accountId: sub,
      claims: async () => {
        const client = this.#clients.get(ctx.oidc.client?.clientId ?? '');
        if (client === undefined) return { sub };
        return clientClaims(client, identity, options.grantedRoles(identity));
      },
    };
  }

  /** The stsgate browser session an OP session is linked to, while it lives and is still `sub`'s. */
  async #linkedSession(sessionUid: string, sub: string): Promise<BrowserSession | undefined> {
    const link = await this.#records.get(sessionLinks, sessionUid);
    if (link === undefined || link.sub !== sub) return undefined;
    const session = await this.#options.login.sessionByReference(link.session);
    return session !== undefined && subjectOf(session.identity) === sub ? session : undefined;
  }

  /**
   * The grant for this client and account: the scopes it asked for among those it is allowed (a first-party
   * client: no consent screen). The session's existing grant is reused, so RP-initiated logout revokes it.
   */
  async #grantFor(ctx: ProviderContext): Promise<Grant | undefined> {
    const { oidc } = ctx;
    const client = this.#clients.get(oidc.client.clientId);
    const accountId = oidc.account?.accountId ?? oidc.session.accountId;
    if (client === undefined || accountId === undefined) return undefined;
    const existingId = oidc.session.grantIdFor(client.id);
    let grant = existingId === undefined ? undefined : await oidc.provider.Grant.find(existingId);
    if (grant === undefined || grant.accountId !== accountId || grant.clientId !== client.id) grant = new oidc.provider.Grant({ accountId, clientId: client.id });
    const scopes = [...oidc.requestParamOIDCScopes].filter((scope) => client.scopes.includes(scope as never));
    if (scopes.length > 0) grant.addOIDCScope(scopes.join(' '));
    await grant.save();
    return grant;
  }
}

/** oidc-provider built for one signing key. */
interface BuiltProvider {
  key: SigningKey;
  provider: Provider;
  callback: ReturnType<Provider['callback']>;
}

/** An access or ID token's lifetime for a client that is not configured (never issued; oidc-provider asks anyway). */
const DEFAULT_TOKEN_SECONDS = 600;

/** Answers with one of the OP's pages (HTML, its CSP, never framed). */
function renderPage(ctx: ProviderContext, pages: OpPages, body: string): void {
  ctx.type = 'html';
  ctx.set('Content-Security-Policy', pages.csp);
  ctx.set('X-Frame-Options', 'DENY');
  ctx.body = body;
}

function clientNameOf(ctx: ProviderContext, clients: ReadonlyMap<string, OidcClientConfig>): string | undefined {
  const id = ctx.oidc?.client?.clientId;
  return id === undefined ? undefined : (clients.get(id)?.name ?? id);
}

/** A configured client as oidc-provider's client metadata (RFC 7591 names). */
function clientMetadata(client: OidcClientConfig, algorithm: SigningAlgorithm): Record<string, unknown> {
  const grantTypes = client.grantTypes.map((grant) => GRANT_TYPE_NAMES[grant]);
  return {
    client_id: client.id,
    client_name: client.name,
    ...(client.secret !== undefined ? { client_secret: client.secret } : {}),
    token_endpoint_auth_method: client.authMethod,
    redirect_uris: client.redirectUris,
    post_logout_redirect_uris: client.postLogoutRedirectUris,
    grant_types: grantTypes,
    response_types: client.grantTypes.includes('authorization_code') ? ['code'] : [],
    scope: client.scopes.join(' '),
    id_token_signed_response_alg: algorithm,
    application_type: 'web',
  };
}
