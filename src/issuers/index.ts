/** Verification of incoming web-identity JWTs from trusted issuers. */
export { TrustedIssuers, type TrustedIssuersOptions, type VerifiedWebIdentity } from './trusted-issuers.js';
export { ACCEPTABLE_ALGORITHMS } from './trusted-issuer.js';
export { discoveryUrlFor } from './key-sources.js';
export { jwkProblem, type DroppedJwk, type JwkDropReason } from '../jwt/jwk-usability.js';
