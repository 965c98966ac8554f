/**
 * The parts of oidc-provider 9 (which ships no types) that stsgate uses: src/demo/development-idp.ts (the
 * development identity provider) and src/op/ (stsgate's own OpenID Provider).
 */
declare module 'oidc-provider' {
  import type { IncomingMessage, ServerResponse } from 'node:http';
  import type Koa from 'koa';

  export interface Interaction {
    uid: string;
    prompt: { name: string; reasons: string[]; details: Record<string, unknown> };
    params: Record<string, unknown>;
    session?: { accountId: string; uid?: string };
    returnTo: string;
    grantId?: string;
    /** When it was created (epoch seconds). */
    iat?: number;
  }

  export interface Grant {
    jti?: string;
    accountId?: string;
    clientId?: string;
    addOIDCScope(scope: string): void;
    addOIDCClaims(claims: string[]): void;
    getOIDCScope(): string;
    save(): Promise<string>;
  }

  export interface OidcClient {
    clientId: string;
    clientAuthMethod: string;
    grantTypeAllowed(type: string): boolean;
  }

  /** A token or code as findAccount and the lifetimes see it. */
  export interface OidcToken {
    kind?: string;
    sessionUid?: string;
    accountId?: string;
    grantId?: string;
    clientId?: string;
  }

  export interface OidcContext {
    oidc: {
      client: { clientId: string };
      session: { accountId: string; uid?: string; grantIdFor(clientId: string): string | undefined };
      provider: Provider;
      account?: { accountId: string };
      route?: string;
      params?: Record<string, unknown>;
      requestParamOIDCScopes: Set<string>;
      result?: Record<string, unknown>;
      entities: Record<string, unknown>;
      promptPending(name: string): boolean;
    };
  }

  /** The Koa context oidc-provider hands to configuration functions. */
  export type ProviderContext = Koa.Context & OidcContext;

  export class OIDCProviderError extends Error {
    constructor(message?: string, description?: string);
    error: string;
    error_description?: string;
    status: number;
  }

  export const errors: {
    OIDCProviderError: typeof OIDCProviderError;
    InvalidGrant: typeof OIDCProviderError;
    InvalidRequest: typeof OIDCProviderError;
    LoginRequired: typeof OIDCProviderError;
    AccessDenied: typeof OIDCProviderError;
  };

  export interface PolicyCheck {
    reason: string;
  }
  export interface PolicyPrompt {
    name: string;
    checks: PolicyCheck[] & { add(check: PolicyCheck, index?: number): void; get(reason: string): PolicyCheck | undefined };
  }
  export const interactionPolicy: {
    base(): PolicyPrompt[] & { get(name: string): PolicyPrompt | undefined };
    Check: new (reason: string, description: string, error: string, check: (ctx: ProviderContext) => boolean | Promise<boolean>) => PolicyCheck;
  };

  export default class Provider {
    constructor(issuer: string, configuration: Record<string, unknown>);
    issuer: string;
    proxy: boolean;
    callback(): (req: IncomingMessage, res: ServerResponse) => Promise<void>;
    interactionDetails(req: IncomingMessage, res: ServerResponse): Promise<Interaction>;
    interactionFinished(req: IncomingMessage, res: ServerResponse, result: Record<string, unknown>, options?: { mergeWithLastSubmission?: boolean }): Promise<void>;
    interactionResult(req: IncomingMessage, res: ServerResponse, result: Record<string, unknown>, options?: { mergeWithLastSubmission?: boolean }): Promise<string>;
    Grant: (new (init: { accountId: string; clientId: string }) => Grant) & { find(id: string): Promise<Grant | undefined> };
    Client: { find(id: string): Promise<{ clientId: string; clientName?: string } | undefined> };
    AccessToken: { find(value: string): Promise<{ accountId?: string; clientId: string; sessionUid?: string; isExpired: boolean } | undefined> };
    on(event: string, listener: (...args: unknown[]) => void): this;
    use(middleware: (ctx: ProviderContext, next: () => Promise<void>) => Promise<void>): this;
  }
}
