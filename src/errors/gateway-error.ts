/**
 * One error type with a stable code. Handlers throw; one middleware serializes to the protocol's format
 * (AWS XML, OAuth JSON, HTML). The public message is shown to clients only when `expose` is true
 * (status < 500); `debug` is private detail for logs and never leaves the process.
 */

/** Every code stsgate can answer with, its HTTP status under AWS STS and its OAuth error code. */
export const ERROR_CODES = {
  // AWS STS codes, kept with AWS's names and statuses.
  InvalidIdentityToken: { status: 400, oauth: 'invalid_request', awsType: 'Sender' },
  ExpiredTokenException: { status: 400, oauth: 'invalid_request', awsType: 'Sender' },
  IDPRejectedClaim: { status: 403, oauth: 'invalid_request', awsType: 'Sender' },
  IDPCommunicationError: { status: 400, oauth: 'temporarily_unavailable', awsType: 'Sender' },
  AccessDenied: { status: 403, oauth: 'invalid_target', awsType: 'Sender' },
  ValidationError: { status: 400, oauth: 'invalid_request', awsType: 'Sender' },
  InvalidClientTokenId: { status: 403, oauth: 'invalid_token', awsType: 'Sender' },
  SignatureDoesNotMatch: { status: 403, oauth: 'invalid_token', awsType: 'Sender' },
  IncompleteSignature: { status: 400, oauth: 'invalid_request', awsType: 'Sender' },
  MissingAuthenticationToken: { status: 403, oauth: 'invalid_request', awsType: 'Sender' },
  RequestExpired: { status: 400, oauth: 'invalid_request', awsType: 'Sender' },
  ExpiredToken: { status: 403, oauth: 'invalid_token', awsType: 'Sender' },
  InvalidAction: { status: 400, oauth: 'invalid_request', awsType: 'Sender' },
  Throttling: { status: 400, oauth: 'slow_down', awsType: 'Sender' },
  PayloadTooLarge: { status: 413, oauth: 'invalid_request', awsType: 'Sender' },
  UnsupportedMediaType: { status: 415, oauth: 'invalid_request', awsType: 'Sender' },
  ServiceUnavailable: { status: 503, oauth: 'temporarily_unavailable', awsType: 'Receiver' },
  InternalFailure: { status: 500, oauth: 'server_error', awsType: 'Receiver' },
  NotFound: { status: 404, oauth: 'invalid_request', awsType: 'Sender' },
  // OAuth-only codes (RFC 6749 §5.2, RFC 8693 §2.2.2, RFC 7009 §2.2.1).
  invalid_request: { status: 400, oauth: 'invalid_request', awsType: 'Sender' },
  invalid_client: { status: 401, oauth: 'invalid_client', awsType: 'Sender' },
  invalid_grant: { status: 400, oauth: 'invalid_grant', awsType: 'Sender' },
  unsupported_grant_type: { status: 400, oauth: 'unsupported_grant_type', awsType: 'Sender' },
  unsupported_token_type: { status: 400, oauth: 'unsupported_token_type', awsType: 'Sender' },
  invalid_scope: { status: 400, oauth: 'invalid_scope', awsType: 'Sender' },
  invalid_target: { status: 400, oauth: 'invalid_target', awsType: 'Sender' },
} as const satisfies Record<string, { status: number; oauth: string; awsType: 'Sender' | 'Receiver' }>;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface GatewayErrorOptions {
  /** Private detail for logs; never sent to a client. */
  debug?: string;
  /** Overrides the code's default status. */
  status?: number;
  /** Extra response headers (e.g. Retry-After). */
  headers?: Record<string, string>;
  cause?: unknown;
  /** Who and what the refusal was about, when known: for the audit log and metrics, never for the client. */
  context?: DecisionContext;
  /**
   * The OAuth error where RFC 8693 tells apart refusals AWS answers alike: AccessDenied is invalid_target
   * for a role the caller may not reach (§2.2.2), invalid_grant for a subject token whose grant lapsed.
   */
  oauthCode?: OAuthErrorCode;
}

/** The OAuth error codes stsgate answers with. */
export type OAuthErrorCode = (typeof ERROR_CODES)[keyof typeof ERROR_CODES]['oauth'];

/** The parts of a refused request worth auditing. */
export interface DecisionContext {
  source?: string;
  subject?: string;
  /** The role asked for, when it exists (the audit log names it even when refused). */
  role?: string;
  /** True once the rules granted `role` to this identity: only then may a metric label name it. */
  granted?: boolean;
  /** A refusal by the rules: the rule that came closest, and its failing conditions as `stsgate explain` words them. */
  closestRule?: string;
  failing?: string[];
  /** Who the refused person signed in as, as the denial page named them (domain/account-label.ts). */
  account?: string;
}

export class GatewayError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  /** Whether `message` may be shown to the client. */
  readonly expose: boolean;
  readonly debug: string | undefined;
  readonly headers: Record<string, string>;
  readonly context: DecisionContext;
  readonly #oauthCode: OAuthErrorCode | undefined;

  constructor(code: ErrorCode, message: string, options: GatewayErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'GatewayError';
    this.code = code;
    this.status = options.status ?? ERROR_CODES[code].status;
    this.expose = this.status < 500;
    this.debug = options.debug;
    this.headers = options.headers ?? {};
    this.context = options.context ?? {};
    this.#oauthCode = options.oauthCode;
  }

  /** The same error with more audit context (the first value set wins). */
  withContext(context: DecisionContext): GatewayError {
    Object.assign(this.context, { ...context, ...this.context });
    return this;
  }

  /** The OAuth error code for this error (RFC 6749 §5.2 / RFC 8693 §2.2.2). */
  get oauthCode(): string {
    return this.#oauthCode ?? ERROR_CODES[this.code].oauth;
  }

  /**
   * The HTTP status under OAuth (RFC 6749 §5.2: 400, or 401 for client and token errors), where AWS's
   * status differs (AccessDenied is 403 under STS, invalid_target 400 under RFC 8693). Statuses about the
   * transport itself (413, 415, 429, 5xx) stay as they are.
   */
  get oauthStatus(): number {
    if ([413, 415, 429].includes(this.status) || this.status >= 500) return this.status;
    switch (this.oauthCode) {
      case 'temporarily_unavailable':
        return 503;
      case 'slow_down':
        return 429;
      case 'invalid_client':
      case 'invalid_token':
        return 401;
      default:
        return 400;
    }
  }

  /** The message a client may see: the real one below 500, a generic one otherwise. */
  get publicMessage(): string {
    return this.expose ? this.message : this.status === 503 ? 'The service is temporarily unavailable.' : 'An internal error occurred.';
  }
}

/** Wraps anything thrown into a GatewayError; unknown errors become 500 InternalFailure with no detail. */
export function toGatewayError(err: unknown): GatewayError {
  if (err instanceof GatewayError) return err;
  return new GatewayError('InternalFailure', 'An internal error occurred.', {
    debug: err instanceof Error ? `${err.name}: ${err.message}` : String(err),
    cause: err,
  });
}
