/**
 * Every store key stsgate uses, built here and nowhere else. The adapter adds the configured prefix.
 * Keys that one operation writes together share a hash tag (`{...}`) so the write is Cluster-safe.
 */

export const storeKeys = {
  /** The stored session behind a credential set, by session id. */
  session: (sessionId: string) => `sess:{${sessionId}}`,
  /** Access key id -> session id (SigV4 lookups). Tagged with the session id so it is written with the session. */
  accessKey: (sessionId: string, accessKeyId: string) => `ak:{${sessionId}}:${accessKeyId}`,
  /** Access key id -> session id index that does not need the session id to find. */
  accessKeyIndex: (accessKeyId: string) => `akidx:${accessKeyId}`,
  /** Revocation marker for a session, kept until the session would have expired. */
  revoked: (sessionId: string) => `revoked:${sessionId}`,
  /** Cache of the current credential set for (identity, role, scope, audience). */
  credentialCache: (cacheKey: string) => `cache:${cacheKey}`,
  /** A browser login transaction (state), single use. */
  loginTransaction: (state: string) => `login:${state}`,
  /** A browser session behind the cookie. */
  browserSession: (id: string) => `bsess:${id}`,
  /** Rate-limit counter for one window. */
  rateLimit: (bucket: string, window: number) => `rl:${bucket}:${window}`,
} as const;
