/**
 * Abuse limits on the exchange endpoints, counted in the store so that they hold across replicas: per
 * client address (every request, before any token is looked at) and per verified subject (before a
 * credential set is issued). Logins have their own (LoginRateLimits, below). Fixed one-minute windows: one `increment` per limit per request, and the
 * address count's round trip overlaps reading and parsing the body.
 *
 * A fixed window lets a client spend its allowance at the end of one minute and again at the start of the
 * next (twice the limit within a few seconds, at most); the bound that matters, requests per minute on
 * average and per replica set, holds. When the store cannot count, the request fails closed with 503, as
 * issuing would.
 */
import { createHash } from 'node:crypto';
import { isIPv6 } from 'node:net';
import { GatewayError } from '../errors/gateway-error.js';
import { storeKeys } from '../store/keys.js';
import { storeFailure, type StoreUse } from '../store/records.js';
import type { Store } from '../store/store.js';

/** Requests allowed per minute; 0 turns a limit off. */
export interface ExchangeLimitSettings {
  perAddressPerMinute: number;
  perSubjectPerMinute: number;
}

const WINDOW_MS = 60_000;

/** Store-backed counters for the exchange endpoints. */
export class ExchangeRateLimits implements AddressCounter {
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
    const retryAfter = await countInWindow(this.#store, bucket, limit, WINDOW_MS, this.#now, 'credential');
    if (retryAfter !== undefined) {
      // AWS's own wording for STS throttling; OAuth answers 429 slow_down with the same Retry-After.
      throw new GatewayError('Throttling', 'Rate exceeded', { headers: { 'Retry-After': retryAfter }, debug: `${kind} limit ${limit}/min exceeded` });
    }
  }
}

/** Something that counts requests per client address and refuses those over its limit. */
export interface AddressCounter {
  /** Whether counting is on at all. */
  readonly limitsAddresses: boolean;
  /** Counts one request from `address`; throws Throttling (429) over the limit, ServiceUnavailable when the store fails. */
  countAddress(address: string): Promise<void>;
}

/**
 * One endpoint's own per-address limit (`/oauth2/introspect`), counted in the store like the exchange
 * limits; over it: 429 with Retry-After, in the endpoint's protocol format. 0 turns it off.
 */
export class EndpointAddressLimit implements AddressCounter {
  readonly #store: Store;
  readonly #endpoint: string;
  readonly #perMinute: number;
  readonly #now: () => number;

  constructor(store: Store, settings: { endpoint: string; perAddressPerMinute: number }, now: () => number = Date.now) {
    this.#store = store;
    this.#endpoint = settings.endpoint;
    this.#perMinute = settings.perAddressPerMinute;
    this.#now = now;
  }

  get limitsAddresses(): boolean {
    return this.#perMinute > 0;
  }

  async countAddress(address: string): Promise<void> {
    if (!this.limitsAddresses) return;
    const retryAfter = await countInWindow(this.#store, `${this.#endpoint}:${addressBucket(address)}`, this.#perMinute, WINDOW_MS, this.#now, 'credential');
    if (retryAfter !== undefined) throw throttled('Rate exceeded', retryAfter, `${this.#endpoint} limit ${this.#perMinute}/min exceeded`);
  }
}

/** Limits on browser and terminal logins, per client address; 0 turns one off. */
export interface LoginLimitSettings {
  /** Requests to `/login`, `/callback`, `/cli/login` and `/cli/token` together, per minute. */
  requestsPerAddressPerMinute: number;
  /** Login transactions started per ten-minute window (each is pending for ten minutes at most). */
  pendingPerAddress: number;
}

/** Username-and-password attempts at a directory provider's form, per minute; 0 turns one off. */
export interface PasswordLimitSettings {
  perAddressPerMinute: number;
  /** Per username, whatever address the attempts come from. */
  perUsernamePerMinute: number;
}

/** The pending-login window: a login transaction lives this long at most (LOGIN_TRANSACTION_TTL_MS). */
export const PENDING_LOGIN_WINDOW_MS = 10 * 60_000;

/**
 * Store-backed limits on logins, so that they hold across replicas. Every login transaction is a store
 * record nobody has authenticated for yet; the pending cap bounds how many one address can keep there
 * (with fixed windows, at most twice the cap at once), and the request limit bounds how fast it can try.
 * Over either: 429 with Retry-After (an HTML page, or OAuth `slow_down` at `/cli/token`), nothing stored.
 */
export class LoginRateLimits {
  readonly #store: Store;
  readonly #settings: LoginLimitSettings;
  readonly #now: () => number;

  constructor(store: Store, settings: LoginLimitSettings, now: () => number = Date.now) {
    this.#store = store;
    this.#settings = settings;
    this.#now = now;
  }

  /** Counts one login request from `address`; throws Throttling (429) over the limit. */
  async countRequest(address: string): Promise<void> {
    const limit = this.#settings.requestsPerAddressPerMinute;
    if (limit <= 0) return;
    const retryAfter = await countInWindow(this.#store, `login:${addressBucket(address)}`, limit, WINDOW_MS, this.#now, 'session');
    if (retryAfter !== undefined) {
      throw throttled(`Too many sign-in requests came from your network address. Try again ${afterWaiting(retryAfter)}.`, retryAfter, `login request limit ${limit}/min exceeded`);
    }
  }

  /** Counts one login transaction about to be stored for `address`; throws Throttling (429) over the cap. */
  async countPendingLogin(address: string): Promise<void> {
    const limit = this.#settings.pendingPerAddress;
    if (limit <= 0) return;
    const retryAfter = await countInWindow(this.#store, `plogin:${addressBucket(address)}`, limit, PENDING_LOGIN_WINDOW_MS, this.#now, 'session');
    if (retryAfter !== undefined) {
      throw throttled(`Too many sign-ins were started from your network address and not finished. Try again ${afterWaiting(retryAfter)}.`, retryAfter, `pending login cap ${limit}/10 min exceeded`);
    }
  }
}

/**
 * Username-and-password attempts at a directory provider's form (`use: ldap`): per client address, so
 * one machine cannot guess many accounts' passwords, and per username, so many machines cannot guess one
 * account's. Counted before the directory is asked anything. The username is counted as typed, lower
 * case and trimmed (directories mostly match it so), and only its hash is a store key.
 */
export class PasswordAttemptLimits {
  readonly #store: Store;
  readonly #settings: PasswordLimitSettings;
  readonly #now: () => number;

  constructor(store: Store, settings: PasswordLimitSettings, now: () => number = Date.now) {
    this.#store = store;
    this.#settings = settings;
    this.#now = now;
  }

  /** Counts one attempt; throws Throttling (429) when the address or the username is over its limit. */
  async countAttempt(address: string, provider: string, username: string): Promise<void> {
    const { perAddressPerMinute: perAddress, perUsernamePerMinute: perUsername } = this.#settings;
    const user = createHash('sha256').update(`${provider}\u0000${username.trim().toLowerCase()}`).digest('base64url').slice(0, 22);
    const [byAddress, byUsername] = await Promise.all([
      perAddress > 0 ? countInWindow(this.#store, `pw-addr:${addressBucket(address)}`, perAddress, WINDOW_MS, this.#now, 'session') : undefined,
      perUsername > 0 ? countInWindow(this.#store, `pw-user:${user}`, perUsername, WINDOW_MS, this.#now, 'session') : undefined,
    ]);
    const retryAfter = byAddress ?? byUsername;
    if (retryAfter !== undefined) {
      throw throttled(`Too many sign-in attempts for this account or from your network address. Try again ${afterWaiting(retryAfter)}.`, retryAfter, byAddress !== undefined ? `password attempts per address ${perAddress}/min exceeded` : `password attempts per username ${perUsername}/min exceeded`);
    }
  }
}

/** "in 40 seconds", "in 7 minutes": the wait a page names. */
function afterWaiting(seconds: string): string {
  const n = Number(seconds);
  return n <= 90 ? `in ${n} seconds` : `in ${Math.ceil(n / 60)} minutes`;
}

/** RFC 6585 §4: 429 Too Many Requests, with Retry-After. */
function throttled(message: string, retryAfter: string, debug: string): GatewayError {
  return new GatewayError('Throttling', message, { status: 429, headers: { 'Retry-After': retryAfter }, debug });
}

/**
 * One increment of `bucket`'s counter in the current fixed window; the Retry-After seconds when the count
 * is over `limit`, else undefined. A store that cannot count fails the request closed (503).
 */
async function countInWindow(store: Store, bucket: string, limit: number, windowMs: number, now: () => number, use: StoreUse): Promise<string | undefined> {
  const at = now();
  const window = Math.floor(at / windowMs);
  const untilWindowEnd = Math.max(1, (window + 1) * windowMs - at);
  let counted: number;
  try {
    counted = await store.increment(storeKeys.rateLimit(bucket, window), untilWindowEnd);
  } catch (err) {
    throw storeFailure(err, use, 'rate limit: ');
  }
  if (counted <= limit) return undefined;
  // The key names its window, and the window ends when its counter expires: Retry-After is known here.
  return String(Math.max(1, Math.ceil(untilWindowEnd / 1000)));
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
