/**
 * oidc-provider's storage on stsgate's Store (memory or Redis), so that every replica serves every step of
 * a flow: authorization on one, token on another, refresh on a third.
 *
 * Shaped after oidc-provider's example Redis adapter (example/adapters/redis.js), on the narrow Store
 * interface instead of Redis commands:
 *
 * - Ids are secrets (codes, tokens, the session cookie, the interaction cookie): keys hold their SHA-256
 *   only, and payloads are sealed (AES-GCM, bound to their key), so a dump of the store hands out neither.
 * - Every record has a TTL: the one oidc-provider gives, else the longest any record may live.
 * - `consume` is an atomic counter beside the record (Store.increment), not a read-modify-write: of two
 *   redemptions racing with one code, exactly one is first; the second revokes the grant (RFC 9700 §4.5.3).
 * - `revokeByGrantId` writes a tombstone for the grant instead of walking a list of its tokens: a find of
 *   any token of a revoked grant answers nothing, on every replica, from the next request on.
 */
import { errors } from 'oidc-provider';
import type { SecretBox } from '../credentials/secret-box.js';
import { storeKeys } from '../store/keys.js';
import { secretDigest } from '../store/records.js';
import type { Store } from '../store/store.js';

/** A stored model's payload, as oidc-provider hands it over and expects it back. */
export type AdapterPayload = Record<string, unknown> & { grantId?: string; uid?: string; userCode?: string; consumed?: unknown };

/** The models whose records belong to a grant (oidc-provider revokes them together). */
const GRANTABLE = new Set(['AccessToken', 'AuthorizationCode', 'RefreshToken', 'DeviceCode', 'BackchannelAuthenticationRequest']);

export interface StoreAdapterOptions {
  store: Store;
  box: SecretBox;
  /** The longest any record may live (seconds): the TTL of a record given none, and of a grant's tombstone. */
  maxTtlSeconds: number;
}

/** oidc-provider's Adapter contract (its documented `Adapter` class) for one model, on the Store. */
export class StoreAdapter {
  readonly #model: string;
  readonly #store: Store;
  readonly #box: SecretBox;
  readonly #maxTtlMs: number;

  constructor(model: string, options: StoreAdapterOptions) {
    this.#model = model;
    this.#store = options.store;
    this.#box = options.box;
    this.#maxTtlMs = options.maxTtlSeconds * 1000;
  }

  /** Stores (or replaces) a record for `expiresIn` seconds, with its uid and user-code indexes in the same write. */
  async upsert(id: string, payload: AdapterPayload, expiresIn?: number): Promise<void> {
    const digest = secretDigest(id);
    const key = storeKeys.opRecord(this.#model, digest);
    const ttlMs = expiresIn !== undefined && Number.isFinite(expiresIn) && expiresIn > 0 ? Math.min(Math.ceil(expiresIn * 1000), this.#maxTtlMs) : this.#maxTtlMs;
    // The consumed mark lives beside the record, never in it: a rewrite of the record must not undo it.
    const { consumed: _consumed, ...kept } = payload;
    const entries = [{ key, value: this.#box.seal(JSON.stringify(kept), key), ttlMs }];
    if (this.#model === 'Session' && typeof payload.uid === 'string') entries.push({ key: storeKeys.opSessionUid(secretDigest(payload.uid)), value: digest, ttlMs });
    if (typeof payload.userCode === 'string') entries.push({ key: storeKeys.opUserCode(secretDigest(payload.userCode)), value: digest, ttlMs });
    await this.#store.setMany(entries);
  }

  /** The record with this id, or undefined (absent, expired, unreadable, or of a revoked grant). */
  async find(id: string): Promise<AdapterPayload | undefined> {
    return this.#findByDigest(secretDigest(id));
  }

  /** The session with this uid (oidc-provider finds sessions by uid for logout and interactions). */
  async findByUid(uid: string): Promise<AdapterPayload | undefined> {
    const digest = await this.#store.get(storeKeys.opSessionUid(secretDigest(uid)));
    return digest === undefined ? undefined : this.#findByDigest(digest);
  }

  /** The device code a person typed the user code of (RFC 8628 §3.3). */
  async findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
    const digest = await this.#store.get(storeKeys.opUserCode(secretDigest(userCode)));
    return digest === undefined ? undefined : this.#findByDigest(digest);
  }

  /**
   * Marks a record consumed (a code redeemed, a refresh token rotated). The first caller wins; a second one
   * racing it (both read the record unconsumed) revokes the whole grant and is refused, as a replay is.
   */
  async consume(id: string): Promise<void> {
    const digest = secretDigest(id);
    const key = storeKeys.opRecord(this.#model, digest);
    const remaining = await this.#store.ttl(key);
    const value = await this.#store.increment(storeKeys.opConsumed(this.#model, digest), Math.max(1, Math.min(remaining ?? this.#maxTtlMs, this.#maxTtlMs)));
    if (value > 1) {
      const payload = await this.#findByDigest(digest);
      if (typeof payload?.grantId === 'string') await this.revokeByGrantId(payload.grantId);
      throw new errors.InvalidGrant('grant request is invalid', 'already used');
    }
  }

  /** Deletes a record (and a session's uid index). */
  async destroy(id: string): Promise<void> {
    const digest = secretDigest(id);
    const keys = [storeKeys.opRecord(this.#model, digest), storeKeys.opConsumed(this.#model, digest)];
    if (this.#model === 'Session' || this.#model === 'DeviceCode') {
      const payload = await this.#findByDigest(digest);
      if (typeof payload?.uid === 'string' && this.#model === 'Session') keys.push(storeKeys.opSessionUid(secretDigest(payload.uid)));
      if (typeof payload?.userCode === 'string') keys.push(storeKeys.opUserCode(secretDigest(payload.userCode)));
    }
    await this.#store.delete(...keys);
  }

  /** Voids every token of a grant: a tombstone every find checks, kept as long as any of them could live. */
  async revokeByGrantId(grantId: string): Promise<void> {
    await this.#store.set(storeKeys.opRevokedGrant(grantId), String(Date.now()), this.#maxTtlMs);
  }

  async #findByDigest(digest: string): Promise<AdapterPayload | undefined> {
    const key = storeKeys.opRecord(this.#model, digest);
    const [sealed, consumed] = await this.#store.getMany([key, storeKeys.opConsumed(this.#model, digest)]);
    if (sealed === undefined) return undefined;
    const text = this.#box.open(sealed, key);
    if (text === undefined) return undefined;
    const payload = JSON.parse(text) as AdapterPayload;
    if (GRANTABLE.has(this.#model) && typeof payload.grantId === 'string' && (await this.#store.get(storeKeys.opRevokedGrant(payload.grantId))) !== undefined) return undefined;
    // oidc-provider reads `consumed` as "when": the mark's count stands in for it (any truthy value).
    return consumed === undefined ? payload : { ...payload, consumed: Math.floor(Date.now() / 1000) };
  }
}

/** The factory oidc-provider's `adapter` setting takes: one adapter per model name. */
export function storeAdapterFactory(options: StoreAdapterOptions): (model: string) => StoreAdapter {
  return (model) => new StoreAdapter(model, options);
}
