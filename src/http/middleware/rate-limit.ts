/**
 * The counting middleware of the abuse limits: the limits themselves (store counters and policy) are
 * services in src/limits/; these only call them at the right point of a route.
 */
import type { Context, Next } from 'koa';
import type { AddressCounter, LoginRateLimits, PasswordAttemptLimits } from '../../limits/rate-limits.js';
import { parseFormOf, readBodyOf } from './request.js';

/**
 * The exchange endpoints' common head, as one middleware: the request is counted against its client
 * address at once, so that the store's round trip runs while the body is read (readBody's limits) and
 * parsed (parseForm's rules); the count is waited for, and a request over the limit refused, before
 * anything else is done with it.
 */
export function countedForm(limits: AddressCounter | undefined, maxBodyBytes: number) {
  return async function readCountedForm(ctx: Context, next: Next): Promise<void> {
    let counted: Promise<void> | undefined;
    if (limits?.limitsAddresses) {
      counted = limits.countAddress(ctx.ip);
      // Settled below; a request that fails earlier (e.g. 413) must not leave an unhandled rejection.
      counted.catch(() => {});
    }
    await readBodyOf(ctx, maxBodyBytes);
    parseFormOf(ctx);
    if (counted) await counted;
    await next();
  };
}

/** Counts the request against its client address's login limit before anything else is done with it. */
export function countLoginRequest(limits: LoginRateLimits | undefined) {
  return async function limitLoginRequests(ctx: Context, next: Next): Promise<void> {
    if (limits) await limits.countRequest(ctx.ip);
    await next();
  };
}

/**
 * Counts a username-and-password attempt (the parsed form's `username`) against the client address and
 * the username before the directory is asked anything.
 */
export function countPasswordAttempt(limits: PasswordAttemptLimits | undefined) {
  return async function limitPasswordAttempts(ctx: Context, next: Next): Promise<void> {
    if (limits) await limits.countAttempt(ctx.ip, String(ctx.params.provider ?? ''), (ctx.state.form as Map<string, string>).get('username') ?? '');
    await next();
  };
}
