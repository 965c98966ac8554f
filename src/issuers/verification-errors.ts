/**
 * Turns a failed verification into the GatewayError a client sees. Public messages follow the wording
 * of AWS STS AssumeRoleWithWebIdentity; the private `debug` detail carries jose's error code. Neither
 * ever contains the token: jose's messages name claims, not values, and its `payload` is never read
 * into a message except for the numeric `exp`/`iat` the client already knows.
 */

import { errors } from 'jose';

import { GatewayError } from '../errors/gateway-error.js';
import { KeySourceError } from './key-sources.js';

/** What the error messages may mention about the issuer and the moment of verification. */
export interface VerificationContext {
  issuerId: string;
  issuer: string;
  nowSeconds: number;
  maxTokenAgeSeconds?: number;
}

/** Maps anything thrown while verifying a token against one issuer to a GatewayError. */
export function verificationFailure(err: unknown, context: VerificationContext): GatewayError {
  if (err instanceof GatewayError) return err;
  const debugPrefix = `issuer=${context.issuerId}`;

  if (err instanceof KeySourceError) {
    return new GatewayError('IDPCommunicationError', `Couldn't retrieve verification key from your identity provider (${context.issuer}).`, {
      debug: `${debugPrefix} key source: ${err.message}`,
      cause: err,
    });
  }

  if (!(err instanceof errors.JOSEError)) {
    // Not a token fault we know and not an IdP fault we know: a bug. Fail closed as a 500.
    return new GatewayError('InternalFailure', 'An internal error occurred.', {
      debug: `${debugPrefix} unexpected: ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`,
      cause: err,
    });
  }

  const debug = `${debugPrefix} jose=${err.code}: ${err.message}`;
  const invalid = (message: string) => new GatewayError('InvalidIdentityToken', message, { debug, cause: err });

  if (err instanceof errors.JWTExpired) {
    const payload = err.payload;
    if (err.claim === 'iat' && typeof payload['iat'] === 'number') {
      return new GatewayError(
        'ExpiredTokenException',
        `Token too old: issued at ${isoSeconds(payload['iat'])}, more than ${context.maxTokenAgeSeconds ?? '?'} seconds before the current date/time ${isoSeconds(context.nowSeconds)}.`,
        { debug, cause: err },
      );
    }
    const exp = typeof payload['exp'] === 'number' ? isoSeconds(payload['exp']) : 'unknown';
    return new GatewayError(
      'ExpiredTokenException',
      `Token expired: current date/time ${isoSeconds(context.nowSeconds)} must be before the expiration date/time ${exp}.`,
      { debug, cause: err },
    );
  }

  if (err instanceof errors.JWTClaimValidationFailed) {
    const { claim, reason } = err;
    if (reason === 'missing') return invalid(`Missing a required claim: ${claim}.`);
    if (reason === 'invalid') return invalid(`The ${claim} claim must be a NumericDate.`);
    switch (claim) {
      case 'aud':
        return invalid('Incorrect token audience.');
      case 'iss':
        return invalid('Incorrect token issuer.');
      case 'nbf': {
        const nbf = err.payload['nbf'];
        return invalid(
          `Token not yet valid: current date/time ${isoSeconds(context.nowSeconds)} must be at or after the not-before date/time ${typeof nbf === 'number' ? isoSeconds(nbf) : 'unknown'}.`,
        );
      }
      case 'iat':
        return invalid(issuedInFutureMessage(err.payload['iat'], context.nowSeconds));
      default:
        return invalid('The token claims could not be validated.');
    }
  }

  if (err instanceof errors.JOSEAlgNotAllowed) return invalid(`The token's signing algorithm is not allowed for this identity provider.`);
  if (err instanceof errors.JWKSNoMatchingKey || err instanceof errors.JWKSMultipleMatchingKeys) {
    return invalid(`No key in the identity provider's key set matches the token's kid and alg.`);
  }
  if (err instanceof errors.JWSSignatureVerificationFailed) return invalid('The token signature could not be verified.');
  if (err instanceof errors.JOSENotSupported) return invalid(`The token's signing algorithm or key type is not supported.`);
  // JWSInvalid, JWTInvalid and the rest: the token is not a usable JWS/JWT.
  return invalid('Invalid web identity token: the token is not a valid signed JWT.');
}

/** The message for an `iat` later than now plus the allowed clock skew. */
export function issuedInFutureMessage(iat: unknown, nowSeconds: number): string {
  return `Token issued in the future: issued-at date/time ${typeof iat === 'number' ? isoSeconds(iat) : 'unknown'} is after the current date/time ${isoSeconds(nowSeconds)}.`;
}

function isoSeconds(epochSeconds: number): string {
  const date = new Date(epochSeconds * 1000);
  return Number.isNaN(date.getTime()) ? String(epochSeconds) : date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}
