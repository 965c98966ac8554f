/**
 * Every store key stsgate uses, built here and nowhere else. The adapter adds the configured prefix.
 * Keys that one operation writes together share a hash tag (`{...}`) so the write is Cluster-safe.
 */

export const storeKeys = {
  /**
   * The stored session behind a credential set. The session id is the random part of its AccessKeyId,
   * so a SigV4 request, an access token (`sid`) and a session token all find it in one lookup.
   */
  session: (sessionId: string) => `sess:{${sessionId}}`,
  /** Cache of the current credential set for (identity, role, scope, audience). */
  credentialCache: (cacheKey: string) => `cache:${cacheKey}`,
  /** Cache of real cloud credentials a broker target fetched for (identity, role, target, request); sealed. */
  brokered: (cacheKey: string) => `brk:${cacheKey}`,
  /** The replica fetching a brokered set from its cloud holds this while it does: the others wait for its result. */
  brokeredFetch: (cacheKey: string) => `brkf:${cacheKey}`,
  /** A browser login transaction (state), single use. */
  loginTransaction: (state: string) => `login:${state}`,
  /** A SAML Response posted to the ACS, parked for the callback that runs in the browser's own context; single use. */
  samlResponse: (handle: string) => `samlr:${handle}`,
  /** An IdP-initiated SAML assertion's ID (hashed with its provider), kept until it expires so it is used once. */
  samlAssertion: (digest: string) => `samla:${digest}`,
  /** A browser session behind the cookie. */
  browserSession: (id: string) => `bsess:${id}`,
  /** A terminal login's one-time code (`stsgate login`), single use. */
  terminalCode: (code: string) => `tcode:${code}`,
  /** A terminal session behind a bearer token (`stsgate login`). */
  terminalSession: (id: string) => `tsess:${id}`,
  /**
   * Revocation watermarks (src/credentials/revocations.ts). All share one hash tag: the few that can cover
   * one session are read with one MGET on one node, and `revocationPrefix` finds them all for a listing.
   * Role, source and subject are URI-encoded, so no value can run into the next part of the key.
   */
  revocationAll: () => 'rev:{rev}:all',
  revocationRole: (role: string) => `rev:{rev}:role:${encodeURIComponent(role)}`,
  revocationSubject: (source: string, subject: string) => `rev:{rev}:sub:${encodeURIComponent(source)}:${encodeURIComponent(subject)}`,
  revocationSubjectAnySource: (subject: string) => `rev:{rev}:anysub:${encodeURIComponent(subject)}`,
  revocationPrefix: () => 'rev:{rev}:',
  /** A client assertion's `jti` (hashed), kept until the assertion expires so it is used once (RFC 7523 §3). */
  clientAssertion: (clientId: string, jtiDigest: string) => `cjti:${clientId}:${jtiDigest}`,
  /**
   * What the OpenID Provider (src/op/) stores through its adapter: one record per model and id (the id's
   * SHA-256: ids are tokens, codes and cookie values), its "consumed" mark, the indexes from a session's
   * uid and a device flow's user code to a record, a revoked grant's tombstone, and the link from an OP
   * session to the stsgate browser session it rests on.
   */
  opRecord: (model: string, idDigest: string) => `op:${model}:{${idDigest}}`,
  opConsumed: (model: string, idDigest: string) => `op:${model}:{${idDigest}}:consumed`,
  opSessionUid: (uidDigest: string) => `op:uid:${uidDigest}`,
  opUserCode: (userCodeDigest: string) => `op:ucode:${userCodeDigest}`,
  opRevokedGrant: (grantId: string) => `op:revgrant:${encodeURIComponent(grantId)}`,
  opSessionLink: (sessionUidDigest: string) => `op:link:${sessionUidDigest}`,
  /** When stsgate's sign-in page was shown for an interaction that asks for a fresh sign-in (`prompt=login`). */
  opSignInShown: (interactionUidDigest: string) => `op:signin:${interactionUidDigest}`,
  /** Rate-limit counter for one window. */
  rateLimit: (bucket: string, window: number) => `rl:${bucket}:${window}`,
} as const;
