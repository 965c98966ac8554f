import { GatewayError, type ErrorCode } from '../errors/gateway-error.js';

/** Why a browser login failed: a stable code for the audit log and tests, never shown as the only explanation. */
export type LoginFailureReason =
  | 'unknown_provider'
  | 'bad_request'
  | 'return_to_refused'
  | 'state_missing'
  | 'state_unknown'
  | 'provider_mismatch'
  | 'browser_mismatch'
  | 'provider_error'
  | 'code_missing'
  | 'code_rejected'
  | 'response_invalid'
  | 'id_token_invalid'
  | 'profile_invalid'
  | 'provider_unreachable'
  | 'provider_failed'
  | 'no_role'
  /** SAML (idp/saml-checks.ts): not a response stsgate accepts (DTD, comment, wrapping, several assertions...). */
  | 'saml_malformed'
  /** SAML: a required signature missing, not by the IdP's certificates, or with an algorithm not allowed. */
  | 'saml_signature_invalid'
  /** SAML: Destination or Recipient is not this ACS URL. */
  | 'saml_destination'
  /** SAML: expired, not yet valid, another audience or issuer. */
  | 'saml_conditions'
  /** SAML: InResponseTo is not this login's AuthnRequest (a replayed or foreign answer). */
  | 'saml_in_response_to'
  /** SAML: an IdP-initiated answer where they are not allowed, or one used before. */
  | 'saml_unsolicited'
  /** A directory provider's form: a wrong password or an unknown user (one reason, one message). */
  | 'credentials_rejected'
  /** Active Directory: userAccountControl has ACCOUNTDISABLE, or accountExpires has passed. */
  | 'account_disabled'
  | 'account_expired';

/**
 * A refused or failed browser login. The message is what the person sees (HTML-escaped); `reason` goes to
 * the audit log; `debug` stays in the process log. Below 500 the message is shown as written.
 */
export class LoginFailure extends GatewayError {
  readonly reason: LoginFailureReason;

  constructor(reason: LoginFailureReason, message: string, options: { code?: ErrorCode; status?: number; debug?: string; cause?: unknown } = {}) {
    super(options.code ?? 'invalid_request', message, {
      ...(options.status !== undefined ? { status: options.status } : {}),
      ...(options.debug !== undefined ? { debug: options.debug } : {}),
      ...(options.cause !== undefined ? { cause: options.cause } : {}),
    });
    this.name = 'LoginFailure';
    this.reason = reason;
  }
}

/** The provider could not be reached at all (connection refused, DNS, timeout): 503, try again later. */
export function providerUnreachable(provider: string, debug: string, cause?: unknown): LoginFailure {
  return new LoginFailure('provider_unreachable', `${provider} could not be reached. Try again in a moment.`, { code: 'IDPCommunicationError', status: 503, debug, cause });
}

/** The provider answered, but not with anything usable (5xx, not JSON, broken metadata): 502. */
export function providerFailed(provider: string, debug: string, cause?: unknown): LoginFailure {
  return new LoginFailure('provider_failed', `${provider} gave an answer stsgate could not use. Try again later.`, { code: 'IDPCommunicationError', status: 502, debug, cause });
}
