/**
 * Abuse limits on the exchange endpoints, counted in the store so that they hold across replicas: per
 * client address (every request, before any token is looked at) and per verified subject (before a
 * credential set is issued). Fixed one-minute windows: one `increment` per limit per request, and the
 * address count's round trip overlaps reading and parsing the body.
 *
 * A fixed window lets a client spend its allowance at the end of one minute and again at the start of the
 * next (twice the limit within a few seconds, at most); the bound that matters, requests per minute on
 * average and per replica set, holds. When the store cannot count, the request fails closed with 503, as
 * issuing would.
 */
import { createHash } from 'node:crypto';
import { isIPv6 } from 'node:net';
import type { Context, Next } from 'koa';
import { GatewayError } from '../../errors/gateway-error.js';
import { storeKeys } from '../../store/keys.js';
import { StoreUnavailableError, type Store } from '../../store/store.js';

/** Requests allowed per minute; 0 turns a limit off. */
export interface ExchangeLimitSettings {
  perAddressPerMinute: number;
  perSubjectPerMinute: number;
}

const WINDOW_MS = 60_000;

/** Store-backed counters for the exchange endpoints. */
export class ExchangeRateLimits {
  readonly #store: Store;
  readonly #settings: ExchangeLimitSettings;
  readonly #now: () => number;

  constructor(store: Store, settings: ExchangeLimitSettings, now: () => number = Date.now) {
    this.#store = store;
    this.#settings = settings;
    this.#now = now;
  }

  /** Whether the per-address limit is on. */
  get limitsAddresses(): boolean {
    return this.#settings.perAddressPerMinute > 0;
  }

  /** Counts one request from `address`; throws Throttling over the limit, ServiceUnavailable when the store fails. */
  async countAddress(address: string): Promise<void> {
    if (!this.limitsAddresses) return;
    await this.#count(`addr:${addressBucket(address)}`, this.#settings.perAddressPerMinute, 'address');
  }

  /**
   * Counts one issuance for a verified identity; throws as countAddress does. Only verified identities are
   * counted here, so nobody can spend someone else's allowance with forged tokens naming their subject.
   */
  async countSubject(identity: { source: string; subject: string }): Promise<void> {
    if (this.#settings.perSubjectPerMinute <= 0) return;
    // Hashed: subjects are arbitrary issuer-chosen strings; the key stays short and bounded.
    const subject = createHash('sha256').update(`${identity.source}\u0000${identity.subject}`).digest('base64url').slice(0, 22);
    await this.#count(`sub:${subject}`, this.#settings.perSubjectPerMinute, 'subject');
  }

  async #count(bucket: string, limit: number, kind: 'address' | 'subject'): Promise<void> {
    const now = this.#now();
    const window = Math.floor(now / WINDOW_MS);
    const untilWindowEnd = Math.max(1, (window + 1) * WINDOW_MS - now);
    let counted: { value: number; ttlMs: number };
    try {
      counted = await this.#store.increment(storeKeys.rateLimit(bucket, window), untilWindowEnd);
    } catch (err) {
      if (err instanceof StoreUnavailableError) {
        throw new GatewayError('ServiceUnavailable', 'The credential store is unavailable.', { debug: `rate limit: ${err.message}`, cause: err });
      }
      throw err;
    }
    if (counted.value > limit) {
      const retryAfter = String(Math.max(1, Math.ceil(Math.min(counted.ttlMs, untilWindowEnd) / 1000)));
      // AWS's own wording for STS throttling; OAuth answers 429 slow_down with the same Retry-After.
      throw new GatewayError('Throttling', 'Rate exceeded', { headers: { 'Retry-After': retryAfter }, debug: `${kind} limit ${limit}/min exceeded` });
    }
  }
}

/**
 * IPv4 addresses count alone; IPv6 addresses by their /64, which is what one host or one customer
 * usually gets (counting single IPv6 addresses would let one host rotate through 2^64 of them).
 */
export function addressBucket(address: string): string {
  const ip = address.startsWith('::ffff:') && address.includes('.') ? address.slice('::ffff:'.length) : address;
  if (!isIPv6(ip)) return ip;
  const [head = '', tail = ''] = ip.split('%')[0]!.split('::');
  const headGroups = head === '' ? [] : head.split(':');
  const tailGroups = tail === '' ? [] : tail.split(':');
  const groups = ip.includes('::') ? [...headGroups, ...Array<string>(8 - headGroups.length - tailGroups.length).fill('0'), ...tailGroups] : headGroups;
  return `${groups.slice(0, 4).map((g) => g.toLowerCase().replace(/^0+(?=.)/, '')).join(':')}::/64`;
}

/**
 * Starts counting the request against its client address at once, so the store's round trip runs while
 * the body is read and parsed; `awaitAddressCount` (placed before the request is acted on) waits for it.
 */
export function countClientAddress(limits: ExchangeRateLimits | undefined) {
  return async function startAddressCount(ctx: Context, next: Next): Promise<void> {
    if (limits?.limitsAddresses) {
      const counted = limits.countAddress(ctx.ip);
      // Settled below; a request that fails earlier (e.g. 413) must not leave an unhandled rejection.
      counted.catch(() => {});
      ctx.state.addressCount = counted;
    }
    await next();
  };
}

/** Waits for the address count started by `countClientAddress`, refusing the request when over the limit. */
export async function awaitAddressCount(ctx: Context, next: Next): Promise<void> {
  const counted = ctx.state.addressCount as Promise<void> | undefined;
  if (counted) await counted;
  await next();
}
