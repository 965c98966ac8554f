/**
 * Revocation watermarks (design.md): a stored "everything for this subject / role / everyone issued before
 * T is void", seen by every replica on its next request. The incident-response counterpart of AWS's
 * "revoke active sessions" (a deny on `aws:TokenIssueTime`) and Keycloak's not-before, next to the
 * per-token revocation of RFC 7009.
 *
 * A watermark is one store key per target (keys.ts), holding JSON whose first member is the cut-off time
 * as ISO 8601 with milliseconds: fixed width, so the store's `setMax` keeps the later of two cut-offs by
 * comparing the text, atomically. Nothing here is cached in-process: a revocation must hold on every
 * replica from the next request on, so every check asks the store, in one round trip.
 */
import type { GatewayConfig } from '../config/types.js';
import { storeKeys } from '../store/keys.js';
import type { Store } from '../store/store.js';

/** How far apart the clocks of the writer (the operator's machine, a replica) and the replicas may be. */
export const REVOCATION_CLOCK_SKEW_SECONDS = 60;

/** What a watermark covers: everything, one role, or one subject (of one source, or of any source). */
export type RevocationTarget = { kind: 'all' } | { kind: 'role'; role: string } | { kind: 'subject'; subject: string; source?: string };

/** A watermark as stored and shown (`stsgate revoke --list`, the admin API): snake_case JSON. */
export interface Watermark {
  /** ISO 8601 UTC with milliseconds: anything issued strictly before it is void. Always the first member. */
  issued_before: string;
  kind: RevocationTarget['kind'];
  role?: string;
  source?: string;
  subject?: string;
  /** Who wrote it: `cli:<OS user>` or `admin-api:<caller>`. */
  by: string;
  reason?: string;
  /** When it was written (ISO 8601). */
  written_at: string;
}

/** A watermark with its key's remaining lifetime. */
export interface LiveWatermark {
  watermark: Watermark;
  ttlMs: number;
}

/** Who a session, browser session or terminal session belongs to, and when it was issued. */
export interface CoveredParty {
  source: string;
  subject: string;
  /** Absent for browser and terminal sessions, which belong to no role. */
  role?: string;
  /** Epoch milliseconds. */
  issuedAtMs: number;
}

/** A revocation request that cannot be written (a usage error: CLI exit 2, admin API 400). */
export class RevocationRequestError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RevocationRequestError';
  }
}

export interface RevocationWatermarksOptions {
  store: Store;
  /** The longest lifetime anything a watermark covers can have (`longestCoveredLifetimeSeconds`). */
  maxLifetimeSeconds: number;
  now?: () => number;
}

/**
 * The longest any covered thing can live: the longest role session (a chained one lasts at most one hour,
 * never longer than its role allows), and, when browser logins are configured, the browser session and
 * the terminal session (which lasts as long as a browser session).
 */
export function longestCoveredLifetimeSeconds(config: Pick<GatewayConfig, 'roles' | 'providers' | 'browser'>): number {
  const roles = config.roles.map((role) => role.maxSessionSeconds);
  const sessions = config.providers.length > 0 ? [config.browser?.sessionTtlSeconds ?? 28_800] : [];
  return Math.max(0, ...roles, ...sessions);
}

/** Writes, lists and checks revocation watermarks. */
export class RevocationWatermarks {
  readonly #store: Store;
  readonly #maxLifetimeMs: number;
  readonly #now: () => number;

  constructor(options: RevocationWatermarksOptions) {
    this.#store = options.store;
    this.#maxLifetimeMs = options.maxLifetimeSeconds * 1000;
    this.#now = options.now ?? Date.now;
  }

  /**
   * Writes a watermark for `target`: anything it covers issued before `issuedBeforeMs` (default now) is void.
   * An existing later watermark for the same target is kept (a revocation is never lowered). A time up to
   * the clock skew ahead counts as now; later is refused, since it would also void the fresh credentials
   * that replace the revoked ones. A time so old that nothing issued before it can still be alive is
   * refused too: there is nothing to revoke. Returns the watermark now stored and its TTL.
   */
  async revoke(target: RevocationTarget, request: { issuedBeforeMs?: number; by: string; reason?: string }): Promise<LiveWatermark> {
    const now = this.#now();
    let issuedBefore = request.issuedBeforeMs ?? now;
    if (!Number.isFinite(issuedBefore)) throw new RevocationRequestError('issued_before is not a time');
    if (issuedBefore > now + REVOCATION_CLOCK_SKEW_SECONDS * 1000) {
      throw new RevocationRequestError(`issued_before ${new Date(issuedBefore).toISOString()} is in the future: it would also void the credentials issued after the revocation; give a time up to now`);
    }
    issuedBefore = Math.min(issuedBefore, now);
    const ttlMs = this.#ttlMs(issuedBefore, now);
    if (ttlMs < 1) {
      throw new RevocationRequestError(`issued_before ${new Date(issuedBefore).toISOString()} is older than the longest lifetime of anything it could cover (${this.#maxLifetimeMs / 1000} s): nothing issued before it is still alive`);
    }
    const watermark: Watermark = {
      issued_before: new Date(issuedBefore).toISOString(),
      kind: target.kind,
      ...(target.kind === 'role' ? { role: target.role } : {}),
      ...(target.kind === 'subject' ? { ...(target.source === undefined ? {} : { source: target.source }), subject: target.subject } : {}),
      by: request.by,
      ...(request.reason === undefined ? {} : { reason: request.reason }),
      written_at: new Date(now).toISOString(),
    };
    const key = keyOf(target);
    const stored = await this.#store.setMax(key, JSON.stringify(watermark), ttlMs);
    // The key keeps the longer TTL of the two writers; read what it has now.
    const remaining = await this.#store.ttl(key);
    return { watermark: parseWatermark(stored) ?? watermark, ttlMs: remaining ?? ttlMs };
  }

  /** Every live watermark with its remaining TTL, latest cut-off first. */
  async list(): Promise<LiveWatermark[]> {
    const keys = await this.#store.keysWithPrefix(storeKeys.revocationPrefix());
    const [values, ttls] = await Promise.all([this.#store.getMany(keys), Promise.all(keys.map((key) => this.#store.ttl(key)))]);
    const live: LiveWatermark[] = [];
    values.forEach((value, i) => {
      const watermark = value === undefined ? undefined : parseWatermark(value);
      const ttlMs = ttls[i];
      if (watermark && ttlMs !== undefined) live.push({ watermark, ttlMs });
    });
    return live.sort((a, b) => b.watermark.issued_before.localeCompare(a.watermark.issued_before));
  }

  /** The keys of every watermark that could cover `party` (at most four; one hash tag, so one MGET). */
  keysCovering(party: Omit<CoveredParty, 'issuedAtMs'>): string[] {
    return [
      storeKeys.revocationAll(),
      storeKeys.revocationSubject(party.source, party.subject),
      storeKeys.revocationSubjectAnySource(party.subject),
      ...(party.role === undefined ? [] : [storeKeys.revocationRole(party.role)]),
    ];
  }

  /**
   * The watermark among `values` (read from `keysCovering`) that voids something issued at `issuedAtMs`,
   * or undefined. A value that is not a watermark voids everything: whoever could write it could also
   * have deleted a real one, and refusing is the side to err on.
   */
  coveringAmong(values: readonly (string | undefined)[], issuedAtMs: number): Watermark | undefined {
    for (const value of values) {
      if (value === undefined) continue;
      const watermark = parseWatermark(value);
      if (!watermark) return { issued_before: new Date(8.64e15).toISOString(), kind: 'all', by: 'unreadable watermark', written_at: new Date(0).toISOString() };
      // Strictly before: a set issued in the very millisecond of the cut-off was issued after the revocation was read.
      if (issuedAtMs < Date.parse(watermark.issued_before)) return watermark;
    }
    return undefined;
  }

  /** The latest cut-off among `values`, in epoch ms (undefined: none): a set issued now must be stamped no earlier. */
  latestCutOff(values: readonly (string | undefined)[]): number | undefined {
    let latest: number | undefined;
    for (const value of values) {
      const watermark = value === undefined ? undefined : parseWatermark(value);
      if (watermark) latest = Math.max(latest ?? -Infinity, Date.parse(watermark.issued_before));
    }
    return latest;
  }

  /** The watermark voiding `party`, or undefined: one store round trip, on every use, never cached. */
  async covering(party: CoveredParty): Promise<Watermark | undefined> {
    return this.coveringAmong(await this.#store.getMany(this.keysCovering(party)), party.issuedAtMs);
  }

  /** Until nothing the watermark covers can still be alive: (issued_before - now) + longest lifetime + skew. */
  #ttlMs(issuedBefore: number, now: number): number {
    return Math.ceil(issuedBefore - now + this.#maxLifetimeMs + REVOCATION_CLOCK_SKEW_SECONDS * 1000);
  }
}

/** ISO 8601 date-time with seconds optional, fractions optional, and a zone required (a time without one is ambiguous). */
const ISO_8601 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:\d{2})$/;
/** A reason is one line of printable text: it goes into an audit log line as it is. */
const REASON = /^[^\u0000-\u001f\u007f]{1,500}$/u;
/** Subjects are whatever the provider or issuer says; bounded and printable, as a `sub` claim is. */
const SUBJECT = /^[^\u0000-\u001f\u007f]{1,1024}$/u;

/** Parses `--issued-before`: `now` (undefined: the writer's clock) or ISO 8601 with a zone; epoch ms. */
export function parseIssuedBefore(value: string | undefined): number | undefined {
  if (value === undefined || value === 'now') return undefined;
  const ms = ISO_8601.test(value) ? Date.parse(value) : Number.NaN;
  if (Number.isNaN(ms)) throw new RevocationRequestError(`issued_before must be "now" or an ISO 8601 time with a zone (2025-01-31T12:00:00Z), got ${JSON.stringify(value.slice(0, 64))}`);
  return ms;
}

/**
 * The target a request names, checked against the configuration: exactly one of subject (with an optional
 * source), role or all; a role must be configured, a source must be a configured provider or issuer id.
 */
export function revocationTarget(config: Pick<GatewayConfig, 'roles' | 'providers' | 'issuers'>, request: { subject?: string; source?: string; role?: string; all?: boolean }): RevocationTarget {
  const named = [request.subject !== undefined, request.role !== undefined, request.all === true].filter(Boolean).length;
  if (named !== 1) throw new RevocationRequestError('name exactly one of: a subject (with an optional source), a role, or all');
  if (request.source !== undefined && request.subject === undefined) throw new RevocationRequestError('a source narrows a subject: give the subject too');
  if (request.role !== undefined) {
    if (!config.roles.some((role) => role.name === request.role)) {
      throw new RevocationRequestError(`role ${JSON.stringify(request.role.slice(0, 64))} is not configured; configured roles: ${config.roles.map((r) => r.name).join(', ')}`);
    }
    return { kind: 'role', role: request.role };
  }
  if (request.subject !== undefined) {
    if (!SUBJECT.test(request.subject)) throw new RevocationRequestError('subject must be 1-1024 printable characters');
    if (request.source !== undefined) {
      const sources = [...config.providers.map((p) => p.id), ...config.issuers.map((i) => i.id)];
      if (!sources.includes(request.source)) {
        throw new RevocationRequestError(`source ${JSON.stringify(request.source.slice(0, 64))} is not a configured provider or issuer id; configured: ${sources.join(', ') || '(none)'}`);
      }
      return { kind: 'subject', source: request.source, subject: request.subject };
    }
    return { kind: 'subject', subject: request.subject };
  }
  return { kind: 'all' };
}

/** Checks a reason: optional, one printable line of at most 500 characters. */
export function checkReason(reason: string | undefined): string | undefined {
  if (reason !== undefined && !REASON.test(reason)) throw new RevocationRequestError('reason must be one line of 1-500 printable characters');
  return reason;
}

/** The store key of a target's watermark. */
function keyOf(target: RevocationTarget): string {
  switch (target.kind) {
    case 'all':
      return storeKeys.revocationAll();
    case 'role':
      return storeKeys.revocationRole(target.role);
    case 'subject':
      return target.source === undefined ? storeKeys.revocationSubjectAnySource(target.subject) : storeKeys.revocationSubject(target.source, target.subject);
  }
}

const ISO_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/** A stored watermark, or undefined when the text is not one. */
function parseWatermark(text: string): Watermark | undefined {
  try {
    const parsed = JSON.parse(text) as Partial<Watermark>;
    if (typeof parsed?.issued_before !== 'string' || !ISO_MS.test(parsed.issued_before) || Number.isNaN(Date.parse(parsed.issued_before))) return undefined;
    if (!['all', 'role', 'subject'].includes(parsed.kind as string) || typeof parsed.by !== 'string') return undefined;
    return parsed as Watermark;
  } catch {
    return undefined;
  }
}
