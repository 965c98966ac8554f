import { createHash, timingSafeEqual } from 'node:crypto';
import { errors as joseErrors, type JWTPayload } from 'jose';
import type { Claims, CredentialRequest, CredentialSet, Identity, SessionInfo } from '../domain/types.js';
import { GatewayError } from '../errors/gateway-error.js';
import { verifyJwt } from '../jwt/compact-jwt.js';
import { parseClaimPath, resolveClaim } from '../rules/claim-path.js';
import { storeKeys } from '../store/keys.js';
import { deepFreeze, RecentlyUsed } from '../util/recently-used.js';
import { guardStore } from '../store/records.js';
import type { Store } from '../store/store.js';
import type { RevocationWatermarks, Watermark } from './revocations.js';
import { accessKeyIdFor, isSessionId, newSecretAccessKey, newSessionId, newTokenId } from './identifiers.js';
import type { SecretBox } from './secret-box.js';
import type { SigningAlgorithm } from '../config/types.js';
import type { SigningKeySource } from './signing-keys.js';

/** The JWT `typ` of stsgate access tokens (RFC 9068 §2.1; explicit typing per RFC 8725 §3.11). */
export const ACCESS_TOKEN_TYPE = 'at+jwt';

/** Claim names a session tag may never overwrite. */
const RESERVED_CLAIMS = new Set(['iss', 'sub', 'aud', 'exp', 'nbf', 'iat', 'jti', 'sid', 'idp', 'role', 'scope', 'client_id', 'typ', 'cnf', 'act']);

export interface CredentialServiceOptions {
  store: Store;
  keys: SigningKeySource;
  box: SecretBox;
  /** The gateway's public URL: the `iss` of every token. */
  issuer: string;
  /**
   * The access token's algorithm (`signing.algorithm`): the keys file may hold keys of several (targets
   * sign with theirs); absent: the newest key of any algorithm.
   */
  algorithm?: SigningAlgorithm;
  accountId: string;
  /** A cached set is reused while at least this fraction of its lifetime remains (design.md: 0.5). */
  cacheMinRemainingFraction: number;
  now?: () => number;
  /** Told whether each cache lookup was answered (metrics). */
  onCacheLookup?: (hit: boolean) => void;
  /** Revocation watermarks, checked on every use of a session and every cache hit; absent: none (unit tests). */
  revocations?: RevocationWatermarks;
}

/** The secrets of a session, sealed together in the stored record. */
interface SessionSecrets {
  secretAccessKey: string;
  sessionToken: string;
  accessToken: string;
  /**
   * A root session's identity claims, so that each chain step can ask today's rules whether the root
   * identity still holds the role. Sealed, since claims may be personal data; never in the public info.
   */
  identityClaims?: Claims;
}

/** What the store holds for one credential set (JSON): the public facts and the sealed secrets. */
interface StoredSession {
  info: SessionInfo;
  sealed: string;
  cacheKey: string;
}

/**
 * The associated data the secrets are sealed with: the whole public record, not only its id. Whoever
 * can write to the store can then not widen a session (its role, scopes, audiences, expiry) or move it:
 * a record changed in any field no longer opens. JSON.stringify of a parsed record gives back the same
 * text, so the context can be rebuilt from what was read.
 */
function sealContext(infoJson: string, cacheKey: string): string {
  return `stsgate-session:${infoJson}:${cacheKey}`;
}

/**
 * JSON.stringify of a StoredSession, with its info already serialized (it is also the seal context's).
 * `sealed` (SecretBox: base64url parts joined by dots) and `cacheKey` (a base64url digest) hold nothing
 * JSON escapes, so they are quoted as they are: JSON.stringify of the 2 KB sealed text built it anew in
 * growing pieces, 6 KB of garbage per issuance. A record that did not parse would not open (fail closed).
 */
function recordJson(infoJson: string, sealed: string, cacheKey: string): string {
  return `{"info":${infoJson},"sealed":"${sealed}","cacheKey":"${cacheKey}"}`;
}

/** How much of a stored record's end keys the memo of opened records (see #openRecord). */
const RECORD_TAIL_CHARS = 96;

/** A session found by one of its credentials, with its secrets opened. */
export interface OpenSession {
  info: SessionInfo;
  secrets: SessionSecrets;
}

/** A live session as `findSession` returns it: with the sessions it is chained from, each opened and live. */
export interface LiveSession extends OpenSession {
  /** Root first, parent last; empty for a root session. */
  readonly ancestors: readonly OpenSession[];
}

/** The identity a chain started from, with the claims sealed in its root session; undefined when none were stored. */
export function rootIdentityOf(session: LiveSession): Identity | undefined {
  const root = session.ancestors[0] ?? session;
  const claims = root.secrets.identityClaims;
  return claims === undefined ? undefined : { source: root.info.source, subject: root.info.subject, claims };
}

/** Mints, caches, finds and revokes credential sets. */
export class CredentialService {
  readonly #store: Store;
  readonly #keys: SigningKeySource;
  readonly #box: SecretBox;
  readonly #issuer: string;
  readonly #algorithm: SigningAlgorithm | undefined;
  readonly #accountId: string;
  readonly #minRemaining: number;
  readonly #now: () => number;
  readonly #onCacheLookup: (hit: boolean) => void;
  readonly #revocations: RevocationWatermarks | undefined;
  /** Records opened recently, by their stored text (see #openRecord). */
  readonly #opened = new RecentlyUsed<string, { raw: string; open: OpenSession }>(256);

  constructor(options: CredentialServiceOptions) {
    this.#store = options.store;
    this.#keys = options.keys;
    this.#box = options.box;
    this.#issuer = options.issuer;
    this.#algorithm = options.algorithm;
    this.#accountId = options.accountId;
    this.#minRemaining = options.cacheMinRemainingFraction;
    this.#now = options.now ?? Date.now;
    this.#onCacheLookup = options.onCacheLookup ?? (() => {});
    this.#revocations = options.revocations;
  }

  /** The ARN a session appears under (`GetCallerIdentity`, `AssumedRoleUser`). */
  assumedRoleArn(info: Pick<SessionInfo, 'role' | 'sessionName'>): string {
    return `arn:aws:sts::${this.#accountId}:assumed-role/${info.role}/${info.sessionName}`;
  }

  /**
   * Issues a credential set for one identity and role, or returns the cached one when the same request
   * was answered before and that set still has enough of its lifetime left (no new signing then).
   * The set is stored before it is returned: a store failure yields ServiceUnavailable, never credentials.
   * `admitted`, when given, must resolve before anything is returned or stored; its rejection is thrown.
   */
  async issue(request: CredentialRequest, admitted?: Promise<void>): Promise<CredentialSet> {
    const { identity, role } = request;
    const ancestorSessionIds = request.ancestorSessionIds ?? [];
    const parentSessionId = ancestorSessionIds.at(-1);
    const scopes = narrow(role.scopes, request.scopes);
    const audiences = narrow(role.audiences, request.audiences);
    const sessionTags = resolveSessionTags(role.sessionTags, identity);
    const cacheKey = createHash('sha256')
      .update(JSON.stringify([identity.source, identity.subject, role.name, scopes, audiences, request.sessionName, sessionTags, parentSessionId ?? null]))
      .digest('base64url');

    const nowMs = this.#now();
    // The cache entry and the watermarks that could cover this identity and role, in one round trip: a
    // covered cached set is never handed out, and a new one is stamped after the latest cut-off.
    const watermarkKeys = this.#revocations?.keysCovering({ source: identity.source, subject: identity.subject, role: role.name }) ?? [];
    const lookup = guardStore('credential', () => this.#store.getMany([storeKeys.credentialCache(cacheKey), ...watermarkKeys]));
    if (admitted) {
      // The admission check (a rate-limit count) and the cache read share one store round trip; its
      // refusal wins, and nothing is returned or stored before it has passed.
      lookup.catch(() => {});
      await admitted;
    }
    const [cached, ...watermarks] = await lookup;
    if (cached !== undefined) {
      const open = this.#openRecord(cached);
      if (open && !this.#revocations?.coveringAmong(watermarks, issuedAtMs(open.info))) {
        const lifetime = open.info.exp - open.info.iat;
        const remaining = open.info.exp - nowMs / 1000;
        if (
          remaining >= lifetime * this.#minRemaining &&
          remaining <= request.durationSeconds &&
          open.info.exp <= (request.notAfter ?? Infinity) &&
          (await this.#ancestorsLiveAndUncovered(open.info))
        ) {
          this.#onCacheLookup(true);
          return toCredentialSet(open, true);
        }
      }
    }
    this.#onCacheLookup(false);

    const sessionId = newSessionId();
    const iat = Math.floor(nowMs / 1000);
    // A chained session ends with the earliest session on its path, whatever duration it was given.
    const exp = Math.min(iat + request.durationSeconds, request.notAfter ?? Infinity);
    if (exp <= iat) {
      // RFC 8693 §2.2.2: a subject token that is invalid for any reason is invalid_request.
      throw new GatewayError('ExpiredToken', 'The security token included in the request is expired', { debug: 'the chain this session would join ends now', oauthCode: 'invalid_request' });
    }
    // Issued after every cut-off just read, whatever this replica's clock says: the revocation was already
    // written when this set was made, so it must not void it (a clock a little behind the writer's would).
    const cutOff = this.#revocations?.latestCutOff(watermarks);
    const iatMs = cutOff === undefined ? nowMs : Math.max(nowMs, cutOff);
    const info: SessionInfo = {
      sessionId,
      sub: `${identity.source}:${identity.subject}`,
      source: identity.source,
      subject: identity.subject,
      role: role.name,
      roleArn: role.arn,
      scopes,
      audiences,
      sessionName: request.sessionName,
      sessionTags,
      accessKeyId: accessKeyIdFor(sessionId),
      jti: newTokenId(),
      iat,
      iatMs,
      exp,
      ...(parentSessionId === undefined ? {} : { parentSessionId, ancestorSessionIds }),
      chainDepth: ancestorSessionIds.length,
    };
    const key = this.#keys.set.current(nowMs, this.#algorithm);
    // Header and claims in the order jose's SignJWT wrote them (test/jwt/compact-jwt.test.ts compares
    // the two byte for byte); node:crypto signs (see src/jwt/compact-jwt.ts for why). The session tags
    // first, by Object.assign: `{ ...sessionTags, role, ... }` cost 15 µs per issuance on Node 20 (each
    // member written after a spread is slow in V8 11; see bench/README.md), this 1. The same members in the
    // same order: a tag never has a reserved claim's name (resolveSessionTags), nor an own `__proto__`
    // (it is built by assignment).
    const accessToken = key.signer.sign(
      { alg: key.alg, kid: key.kid, typ: ACCESS_TOKEN_TYPE },
      Object.assign({}, sessionTags, {
        role: role.name,
        scope: scopes.join(' '),
        sid: sessionId,
        idp: identity.source,
        iss: this.#issuer,
        sub: info.sub,
        aud: [...audiences],
        iat,
        nbf: iat,
        exp,
        jti: info.jti,
      }),
    );
    const secrets: SessionSecrets = {
      secretAccessKey: newSecretAccessKey(),
      sessionToken: this.#box.seal(JSON.stringify({ sid: sessionId, exp }), 'session-token'),
      accessToken,
      // Only a root session keeps the claims; chained sessions are checked against their root's.
      ...(parentSessionId === undefined ? { identityClaims: identity.claims } : {}),
    };
    const infoJson = JSON.stringify(info);
    const record = recordJson(infoJson, this.#box.seal(JSON.stringify(secrets), sealContext(infoJson, cacheKey)), cacheKey);
    const ttlMs = (exp - iat) * 1000;
    await guardStore('credential', () =>
      this.#store.setMany([
        { key: storeKeys.session(sessionId), value: record, ttlMs },
        { key: storeKeys.credentialCache(cacheKey), value: record, ttlMs },
      ]),
    );
    return toCredentialSet({ info, secrets }, false);
  }

  /**
   * Finds a live session by id; undefined when unknown, expired or revoked by RFC 7009, or when any
   * session it was chained from is (revoking a session ends every session chained from it, on every
   * replica at once). A session a revocation watermark covers, itself or through an ancestor, throws
   * ExpiredToken, AWS's answer for session credentials that no longer work (the watermark is read from
   * the store on every call, never remembered).
   */
  async findSession(sessionId: string): Promise<LiveSession | undefined> {
    if (!isSessionId(sessionId)) return undefined;
    const raw = await guardStore('credential', () => this.#store.get(storeKeys.session(sessionId)));
    const open = raw === undefined ? undefined : this.#openLive(sessionId, raw);
    if (!open) return undefined;
    const ancestors = await this.#ancestorsOf(open.info);
    if (!ancestors) return undefined;
    const watermark = await this.#coveringAny([open, ...ancestors]);
    if (watermark) {
      throw new GatewayError('ExpiredToken', 'The security token included in the request is expired', {
        debug: `revoked by the ${watermark.kind} watermark issued_before ${watermark.issued_before}`,
        context: { source: open.info.source, subject: open.info.subject, role: open.info.role },
      });
    }
    return { info: open.info, secrets: open.secrets, ancestors };
  }

  /**
   * The sessions `info` is chained from, read in one round trip and each opened by #openLive, as the
   * session itself was; undefined when any of them is no longer live.
   */
  async #ancestorsOf(info: SessionInfo): Promise<OpenSession[] | undefined> {
    const ids = info.ancestorSessionIds ?? [];
    if (ids.length === 0) return [];
    const raws = await guardStore('credential', () => this.#store.getMany(ids.map((id) => storeKeys.session(id))));
    const ancestors: OpenSession[] = [];
    for (const [i, id] of ids.entries()) {
      const raw = raws[i];
      const open = raw === undefined ? undefined : this.#openLive(id, raw);
      if (!open) return undefined;
      ancestors.push(open);
    }
    return ancestors;
  }

  /** Whether every session `info` is chained from is live and covered by no watermark (a cached set's path). */
  async #ancestorsLiveAndUncovered(info: SessionInfo): Promise<boolean> {
    const ancestors = await this.#ancestorsOf(info);
    return ancestors !== undefined && (await this.#coveringAny(ancestors)) === undefined;
  }

  /**
   * Opens the stored record of session `sessionId` when it is still live (sealed intact, its own id, not
   * expired). findSession adds the rest for a session and every session it is chained from alike: each
   * must still be stored (RFC 7009), and none covered by a revocation watermark (#coveringAny).
   */
  #openLive(sessionId: string, raw: string): OpenSession | undefined {
    const open = this.#openRecord(raw);
    if (!open || open.info.sessionId !== sessionId || open.info.exp <= this.#now() / 1000) return undefined;
    return open;
  }

  /**
   * The watermark that voids any of `sessions` (a session and the sessions it is chained from), if any:
   * every watermark that could cover one of them, read in one store round trip, on every use.
   */
  async #coveringAny(sessions: readonly OpenSession[]): Promise<Watermark | undefined> {
    const revocations = this.#revocations;
    if (!revocations || sessions.length === 0) return undefined;
    const parties = sessions.map(({ info }) => ({ source: info.source, subject: info.subject, role: info.role, issuedAtMs: issuedAtMs(info) }));
    const keys = [...new Set(parties.flatMap((party) => revocations.keysCovering(party)))];
    const values = await guardStore('credential', () => this.#store.getMany(keys));
    const byKey = new Map(keys.map((key, i) => [key, values[i]]));
    for (const party of parties) {
      const watermark = revocations.coveringAmong(revocations.keysCovering(party).map((key) => byKey.get(key)), party.issuedAtMs);
      if (watermark) return watermark;
    }
    return undefined;
  }

  /**
   * Reads an AWS session token: its session id and expiry, when it is one stsgate sealed. The token is
   * authenticated (AES-GCM), so its expiry can be trusted to tell "expired" from "invalid".
   */
  readSessionToken(token: string): { sessionId: string; exp: number } | undefined {
    if (token.length > 1024) return undefined;
    const plain = this.#box.open(token, 'session-token');
    if (plain === undefined) return undefined;
    const parsed = JSON.parse(plain) as { sid: unknown; exp: unknown };
    if (!isSessionId(parsed.sid) || typeof parsed.exp !== 'number') return undefined;
    return { sessionId: parsed.sid, exp: parsed.exp };
  }

  /**
   * Verifies an access token stsgate issued: signature against its own keys, `typ`, `iss`, time claims,
   * and that its session is still live (not revoked). Throws InvalidIdentityToken / ExpiredTokenException.
   */
  async verifyAccessToken(token: string): Promise<{ payload: JWTPayload; session: LiveSession }> {
    let payload: JWTPayload;
    try {
      const keys = this.#keys.set;
      ({ payload } = await verifyJwt(token, keys.verifier(this.#now()), {
        issuer: this.#issuer,
        typ: ACCESS_TOKEN_TYPE,
        algorithms: keys.algorithms,
        requiredClaims: ['exp', 'iat', 'sid', 'jti'],
        currentDate: new Date(this.#now()),
      }));
    } catch (err) {
      if (err instanceof joseErrors.JWTExpired) throw new GatewayError('ExpiredTokenException', 'Token expired.', { debug: err.code });
      throw new GatewayError('InvalidIdentityToken', 'The access token is not a valid stsgate token.', { debug: (err as { code?: string }).code ?? String(err) });
    }
    let session: LiveSession | undefined;
    try {
      session = typeof payload.sid === 'string' ? await this.findSession(payload.sid) : undefined;
    } catch (err) {
      // RFC 6749 §5.2: a grant (here the subject token) that was revoked is invalid_grant; introspection
      // reports any refusal below 500 as inactive (RFC 7662 §2.2).
      if (err instanceof GatewayError && err.code === 'ExpiredToken') {
        throw new GatewayError('invalid_grant', 'The access token has been revoked.', { debug: err.debug, context: err.context });
      }
      throw err;
    }
    if (!session || session.info.jti !== payload.jti) {
      throw new GatewayError('InvalidIdentityToken', 'The access token has been revoked or its session has ended.');
    }
    return { payload, session };
  }

  /** Finds the session id an access token or AWS session token names, verifying it is one of stsgate's (expired is fine). */
  async sessionIdOf(token: string): Promise<string | undefined> {
    if (token.split('.').length === 3 && token.startsWith('ey')) {
      try {
        const keys = this.#keys.set;
        const { payload } = await verifyJwt(token, keys.verifier(this.#now()), {
          issuer: this.#issuer,
          typ: ACCESS_TOKEN_TYPE,
          algorithms: keys.algorithms,
          // Revoking an expired token is harmless and RFC 7009 asks for 200 either way.
          currentDate: new Date(0),
          clockTolerance: Number.MAX_SAFE_INTEGER,
        });
        return isSessionId(payload.sid) ? payload.sid : undefined;
      } catch {
        return undefined;
      }
    }
    return this.readSessionToken(token)?.sessionId;
  }

  /** Revokes a session everywhere: its stored record and its cache entry go, so no replica can use or hand it out again. */
  async revoke(sessionId: string): Promise<boolean> {
    if (!isSessionId(sessionId)) return false;
    const raw = await guardStore('credential', () => this.#store.get(storeKeys.session(sessionId)));
    const keys = [storeKeys.session(sessionId)];
    if (raw !== undefined) {
      const stored = JSON.parse(raw) as StoredSession;
      keys.unshift(storeKeys.credentialCache(stored.cacheKey));
    }
    // The cache entry goes first so that no request can be handed the set between the two deletes.
    let removed = 0;
    for (const key of keys) removed += await guardStore('credential', () => this.#store.delete(key));
    return removed > 0;
  }

  /** Compares a presented session token with the session's own, in constant time. */
  sessionTokenMatches(session: OpenSession, presented: string): boolean {
    const a = createHash('sha256').update(session.secrets.sessionToken).digest();
    const b = createHash('sha256').update(presented).digest();
    return timingSafeEqual(a, b);
  }

  /**
   * Opens a stored record. A record read before, byte for byte, opens to the same session: the result is
   * remembered (frozen, shared) so that a cache hit or a repeated introspection skips the JSON and the
   * AES-GCM work. A record changed in any byte is a different key and is opened, and checked, in full;
   * a revoked session is never read at all, since the store is asked every time.
   */
  #openRecord(raw: string): OpenSession | undefined {
    // Looked up by the record's tail (the end of its sealed secrets, unique per seal, and its cache key), then
    // compared in full: hashing a 2.5 KB key on every read cost more than the comparison.
    const tail = raw.slice(-RECORD_TAIL_CHARS);
    const remembered = this.#opened.get(tail);
    if (remembered?.raw === raw) return remembered.open;
    const open = this.#openRecordNow(raw);
    if (open) this.#opened.set(tail, { raw, open: deepFreeze(open) });
    return open;
  }

  #openRecordNow(raw: string): OpenSession | undefined {
    let stored: StoredSession;
    try {
      stored = JSON.parse(raw) as StoredSession;
    } catch {
      return undefined;
    }
    if (typeof stored?.info?.sessionId !== 'string' || typeof stored.sealed !== 'string') return undefined;
    const plain = this.#box.open(stored.sealed, sealContext(JSON.stringify(stored.info), stored.cacheKey));
    if (plain === undefined) return undefined;
    return { info: stored.info, secrets: JSON.parse(plain) as SessionSecrets };
  }
}

/** When a session was issued, in ms; records from before `iatMs` existed fall back to their whole second. */
function issuedAtMs(info: SessionInfo): number {
  return typeof info.iatMs === 'number' ? info.iatMs : info.iat * 1000;
}

/** The role's values, narrowed to the requested ones (never wider); callers check the request is a subset first. */
function narrow(allowed: readonly string[], requested: readonly string[] | undefined): string[] {
  if (requested === undefined) return [...allowed];
  const wanted = new Set(requested);
  return allowed.filter((v) => wanted.has(v));
}

/**
 * Session tag values from the identity: `claims.<claim path>` (with `\.` for a dot inside a claim name,
 * as rules write it), `subject` or `source`; only scalar values are copied.
 */
function resolveSessionTags(spec: Readonly<Record<string, string>>, identity: Identity): Record<string, string> {
  const tags: Record<string, string> = {};
  for (const [name, path] of Object.entries(spec)) {
    if (RESERVED_CLAIMS.has(name)) continue;
    const value = resolveTagSource(identity, path);
    if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') tags[name] = String(value);
  }
  return tags;
}

function resolveTagSource(identity: Identity, path: string): unknown {
  if (path === 'subject' || path === 'source') return identity[path];
  if (!path.startsWith('claims.')) return undefined;
  const parsed = parseClaimPath(path.slice('claims.'.length));
  return 'error' in parsed ? undefined : resolveClaim(identity.claims, parsed.segments);
}

function toCredentialSet(open: OpenSession, cached: boolean): CredentialSet {
  return {
    sessionId: open.info.sessionId,
    accessToken: open.secrets.accessToken,
    accessKeyId: open.info.accessKeyId,
    secretAccessKey: open.secrets.secretAccessKey,
    sessionToken: open.secrets.sessionToken,
    issuedAt: new Date(open.info.iat * 1000),
    expiresAt: new Date(open.info.exp * 1000),
    session: open.info,
    cached,
  };
}
