/** Plain types shared by every part of stsgate. No I/O, no imports. */

/** JSON-like claims of a verified token or a login. */
export type Claims = Readonly<Record<string, unknown>>;

/** The normalized result of a login or a verified JWT. `source` is the provider or issuer id. */
export interface Identity {
  readonly source: string;
  readonly subject: string;
  readonly claims: Claims;
}

/** A named grant, as configured. */
export interface Role {
  readonly name: string;
  /** `arn:aws:iam::<account_id>:role/<name>` */
  readonly arn: string;
  /** A stable AWS-style role id (`AROA` + 17 characters), as in `AssumedRoleId`. */
  readonly id: string;
  readonly scopes: readonly string[];
  readonly audiences: readonly string[];
  /** 900..43200 */
  readonly maxSessionSeconds: number;
  /** Roles this role's credentials may chain to with AssumeRole. */
  readonly canAssume: readonly string[];
  /** Tag name -> dot path into the identity (`claims.repository`, `subject`, `source`). */
  readonly sessionTags: Readonly<Record<string, string>>;
  /** The targets (relying parties that trust stsgate as an issuer) this role may get a token for. */
  readonly targets: readonly string[];
  /** What the role is for, in a sentence (`roles[].description`); absent: none. */
  readonly description?: string;
}

/** What was asked for: one role, optionally narrowed. */
export interface CredentialRequest {
  readonly identity: Identity;
  readonly role: Role;
  /** Seconds; already validated against the role. */
  readonly durationSeconds: number;
  /** Requested scopes; undefined means all of the role's scopes. */
  readonly scopes?: readonly string[];
  /** Requested audience; undefined means all of the role's audiences. */
  readonly audiences?: readonly string[];
  /** AWS RoleSessionName, or a generated one. */
  readonly sessionName: string;
  /** The rule that granted the role (for audit). */
  readonly matchedRule?: string;
  /**
   * For a chained session (AssumeRole, token exchange of an stsgate token): the sessions it is chained
   * from, root first, parent last. Absent for a root session.
   */
  readonly ancestorSessionIds?: readonly string[];
  /** Epoch seconds the session may not outlive (a chained session: the earliest expiry on its path). */
  readonly notAfter?: number;
}

/** What stsgate issues for one identity and one role. */
export interface CredentialSet {
  /** Session id (`sid` claim). */
  readonly sessionId: string;
  readonly accessToken: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken: string;
  readonly issuedAt: Date;
  readonly expiresAt: Date;
  readonly session: SessionInfo;
  /** True when this set came from the cache rather than a new signing. */
  readonly cached: boolean;
}

/** The non-secret facts of a credential set, as kept in the store and shown by introspection. */
export interface SessionInfo {
  readonly sessionId: string;
  /** `<source>:<subject>` */
  readonly sub: string;
  readonly source: string;
  readonly subject: string;
  readonly role: string;
  readonly roleArn: string;
  readonly scopes: readonly string[];
  readonly audiences: readonly string[];
  readonly sessionName: string;
  readonly sessionTags: Readonly<Record<string, string>>;
  readonly accessKeyId: string;
  readonly jti: string;
  /** Epoch seconds. */
  readonly iat: number;
  /**
   * When it was issued, in epoch milliseconds, as revocation watermarks compare it (a set issued after a
   * revocation is not refused even within the same second). Absent in records written before it existed:
   * `iat * 1000` then, which errs towards refusing.
   */
  readonly iatMs?: number;
  readonly exp: number;
  readonly parentSessionId?: string;
  /**
   * Every session this one is chained from, root first, parent last (absent for a root session); this
   * one is live only while all of them are.
   */
  readonly ancestorSessionIds?: readonly string[];
  /** How many AssumeRole hops led here (0 for a direct exchange). */
  readonly chainDepth: number;
}
