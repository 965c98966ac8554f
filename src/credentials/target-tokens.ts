/**
 * Target tokens: the JWTs stsgate mints, as an OIDC issuer, for relying parties outside it (an AWS
 * account's IAM OIDC provider, a GCP workload identity pool, an Azure app's federated credential, Vault,
 * a Kubernetes API server). Which identity may get which target is decided by `TokenExchange` (the rules
 * and the role's `targets`); this mints: claims from rules/target-claims.ts, signed with the key of the
 * algorithm the target's verifier takes.
 *
 * Nothing is stored: a cloud checks a target token against the JWKS alone, so there is nothing a
 * revocation here could reach, and the lifetimes are short (and never past the session they came from).
 */
import type { Identity, Role } from '../domain/types.js';
import { GatewayError } from '../errors/gateway-error.js';
import { TARGET_TOKEN_TYPE, TargetProblem, targetClaims, tokenLengthProblem, type TargetSpec } from '../rules/target-claims.js';
import { newTokenId } from './identifiers.js';
import type { SigningKeySource } from './signing-keys.js';

/** A minted target token and what the audit log and the responses need. */
export interface TargetToken {
  token: string;
  target: TargetSpec;
  role: Role;
  identity: Identity;
  issuedAt: Date;
  expiresAt: Date;
}

/** What a token for `target` would carry, or the limit it breaks (explain, the page). */
export type TargetPreview = { claims: Record<string, unknown> } | { problem: string };

export interface TargetTokenOptions {
  keys: SigningKeySource;
  /** The gateway's public URL: the `iss` of every token. */
  issuer: string;
  targets: readonly TargetSpec[];
  now?: () => number;
}

/** The configured targets, and the mint. */
export class TargetTokens {
  readonly #keys: SigningKeySource;
  readonly #issuer: string;
  readonly #byName: ReadonlyMap<string, TargetSpec>;
  readonly #now: () => number;

  constructor(options: TargetTokenOptions) {
    this.#keys = options.keys;
    this.#issuer = options.issuer;
    this.#byName = new Map(options.targets.map((target) => [target.name, target]));
    this.brokerRoleArns = new Set(options.targets.flatMap((target) => (target.broker?.cloud === 'aws' ? [target.broker.roleArn] : [])));
    this.#now = options.now ?? Date.now;
  }

  /** The AWS role ARNs broker targets trade for. */
  readonly brokerRoleArns: ReadonlySet<string>;

  byName(name: string): TargetSpec | undefined {
    return this.#byName.get(name);
  }

  /** The algorithms the targets sign with (each needs a key in the keys file). */
  get algorithms(): string[] {
    return [...new Set([...this.#byName.values()].map((target) => target.algorithm))];
  }

  /** The claims a token for `target` would carry for this identity and role, or the problem. */
  preview(target: TargetSpec, identity: Identity, role: Role): TargetPreview {
    try {
      return { claims: targetClaims(target, { identity, role: role.name }) };
    } catch (err) {
      if (err instanceof TargetProblem) return { problem: err.message };
      throw err;
    }
  }

  /**
   * Mints a token for `target`, which the caller has checked `role` lists and the rules grant `identity`.
   * It lives the target's lifetime, at most the role's maximum session, and never past `notAfter` (epoch
   * seconds: the end of the session it came from). A value that breaks a limit is ValidationError naming
   * the target and the limit; nothing is signed then.
   */
  mint(target: TargetSpec, identity: Identity, role: Role, notAfter = Infinity): TargetToken {
    const nowMs = this.#now();
    const iat = Math.floor(nowMs / 1000);
    const cap = Math.min(iat + target.lifetimeSeconds, iat + role.maxSessionSeconds, notAfter);
    if (cap - iat < 1) throw new GatewayError('AccessDenied', `The session has no time left for a token for target ${target.name}.`, { debug: 'session ending' });
    let claims: Record<string, unknown>;
    try {
      claims = targetClaims(target, { identity, role: role.name });
    } catch (err) {
      if (err instanceof TargetProblem) throw new GatewayError('ValidationError', err.message);
      throw err;
    }
    let key;
    try {
      key = this.#keys.set.current(nowMs, target.algorithm);
    } catch (err) {
      // Checked at start and at every reload of the keys file; reaching this is a configuration gone wrong.
      throw new GatewayError('ServiceUnavailable', 'No signing key for this target.', { debug: (err as Error).message, status: 503 });
    }
    // Not `{ ...claims, iss, ... }`: members written after a spread are slow on Node 20 (bench/README.md).
    // The same members in the same order; targetClaims builds `claims` by assignment (no own `__proto__`).
    const payload = Object.assign({}, claims, { iss: this.#issuer, iat, nbf: iat, exp: cap, jti: newTokenId() });
    const token = key.signer.sign({ alg: key.alg, kid: key.kid, typ: TARGET_TOKEN_TYPE }, payload);
    const tooLong = tokenLengthProblem(target, token);
    if (tooLong !== undefined) throw new GatewayError('ValidationError', tooLong);
    // What is handed out must end within its cap; anything else is a bug, and fails closed.
    if (payload.exp > notAfter || payload.exp - iat > target.lifetimeSeconds) {
      throw new GatewayError('InternalFailure', 'An internal error occurred.', { debug: `target token for ${target.name} outlives its cap` });
    }
    return { token, target, role, identity, issuedAt: new Date(iat * 1000), expiresAt: new Date(payload.exp * 1000) };
  }
}
