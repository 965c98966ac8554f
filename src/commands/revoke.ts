/**
 * `stsgate revoke`: writes a revocation watermark into the configured store, so that every replica
 * refuses what it covers from its next request on, or lists the live ones (`--list`).
 */
import { userInfo } from 'node:os';
import { loadConfig } from '../config/load.js';
import { checkReason, longestCoveredLifetimeSeconds, parseIssuedBefore, RevocationRequestError, RevocationWatermarks, revocationTarget, type LiveWatermark, type Watermark } from '../credentials/revocations.js';
import { AuditLog } from '../observability/audit.js';
import { createLogger } from '../observability/logger.js';
import { createStore } from '../store/index.js';

export interface RevokeOptions {
  configFile: string;
  subject?: string;
  source?: string;
  role?: string;
  all?: boolean;
  list?: boolean;
  /** ISO 8601 with a time zone, or `now` (the default). */
  issuedBefore?: string;
  reason?: string;
}

/** What a watermark covers, for people: `subject alice of google`, `role deployer`, `everyone`. */
export function describeTarget(watermark: Watermark): string {
  switch (watermark.kind) {
    case 'all':
      return 'everyone';
    case 'role':
      return `role ${watermark.role}`;
    case 'subject':
      return `subject ${JSON.stringify(watermark.subject)} of ${watermark.source ?? 'any source'}`;
  }
}

/** One line per watermark: cut-off, target, remaining TTL, writer, reason. */
export function formatWatermark({ watermark, ttlMs }: LiveWatermark): string {
  const reason = watermark.reason === undefined ? '' : `, reason ${JSON.stringify(watermark.reason)}`;
  return `${describeTarget(watermark)}: issued before ${watermark.issued_before} is void; ttl ${Math.ceil(ttlMs / 1000)} s; by ${watermark.by} at ${watermark.written_at}${reason}`;
}

/** Runs `stsgate revoke`; usage errors are thrown as RevocationRequestError (exit 2). */
export async function revokeCommand(options: RevokeOptions, write: (line: string) => void): Promise<number> {
  if (options.list && (options.subject !== undefined || options.source !== undefined || options.role !== undefined || options.all || options.issuedBefore !== undefined || options.reason !== undefined)) {
    throw new RevocationRequestError('--list takes no other option than --config');
  }
  // Everything about the request is checked before the configuration is even read... except what needs it.
  const issuedBeforeMs = options.list ? undefined : parseIssuedBefore(options.issuedBefore);
  const reason = checkReason(options.reason);
  const config = await loadConfig(options.configFile);
  const target = options.list ? undefined : revocationTarget(config, options);
  if (config.store.kind === 'memory') {
    // An in-memory store lives in the gateway process; this command would write into its own, unseen.
    throw new Error('the configuration has no shared store (store.redis): a watermark written here would reach no gateway; use the admin API of the running gateway');
  }
  const store = createStore(config.store);
  try {
    const revocations = new RevocationWatermarks({ store, maxLifetimeSeconds: longestCoveredLifetimeSeconds(config) });
    if (!target) {
      const live = await revocations.list();
      if (live.length === 0) write('no live revocation watermarks');
      for (const entry of live) write(formatWatermark(entry));
      return 0;
    }
    const written = await revocations.revoke(target, {
      ...(issuedBeforeMs === undefined ? {} : { issuedBeforeMs }),
      by: `cli:${operatorName()}`,
      ...(reason === undefined ? {} : { reason }),
    });
    // The audit line goes to stderr, stdout carries the result for people and scripts.
    new AuditLog(createLogger({ destination: process.stderr })).watermark(written.watermark, written.ttlMs);
    write(`revoked ${formatWatermark(written)}`);
    return 0;
  } finally {
    await store.close();
  }
}

/** The OS user running the command (who revoked), or the environment's idea of it. */
function operatorName(): string {
  try {
    return userInfo().username;
  } catch {
    return process.env.USER ?? process.env.LOGNAME ?? `uid ${process.getuid?.() ?? 'unknown'}`;
  }
}
