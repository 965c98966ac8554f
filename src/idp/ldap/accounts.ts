/**
 * Active Directory account state, decoded from the user entry: `userAccountControl` (MS-ADTS §2.2.16, a
 * bit field: 0x2 ACCOUNTDISABLE) and `accountExpires` (a FILETIME: 100-nanosecond intervals since
 * 1601-01-01 UTC; 0 and 0x7FFFFFFFFFFFFFFF mean never). Other directories have neither attribute, and
 * then nothing is refused here. Pure.
 */

/** MS-ADTS §2.2.16: ADS_UF_ACCOUNTDISABLE. */
export const UAC_ACCOUNT_DISABLE = 0x2;

/** Milliseconds between 1601-01-01 (the FILETIME epoch) and 1970-01-01. */
const FILETIME_EPOCH_OFFSET_MS = 11_644_473_600_000n;
const NEVER = 0x7fffffffffffffffn;

/** Whether a `userAccountControl` value has the disabled bit; a missing or unreadable value is not disabled (not AD). */
export function isAccountDisabled(userAccountControl: string | undefined): boolean {
  if (userAccountControl === undefined || !/^-?[0-9]{1,11}$/.test(userAccountControl.trim())) return false;
  // A signed 32-bit integer in AD; the bit test works on its two's complement.
  return (Number(userAccountControl.trim()) & UAC_ACCOUNT_DISABLE) !== 0;
}

/** When an `accountExpires` value says the account expires, or undefined for never (or no such value). */
export function accountExpiresAt(accountExpires: string | undefined): Date | undefined {
  if (accountExpires === undefined || !/^[0-9]{1,20}$/.test(accountExpires.trim())) return undefined;
  const filetime = BigInt(accountExpires.trim());
  if (filetime === 0n || filetime >= NEVER) return undefined;
  return new Date(Number(filetime / 10_000n - FILETIME_EPOCH_OFFSET_MS));
}

/** Why the directory's own account state refuses this login, or undefined. */
export function accountRefusal(entry: { userAccountControl?: string; accountExpires?: string }, now: Date): 'account_disabled' | 'account_expired' | undefined {
  if (isAccountDisabled(entry.userAccountControl)) return 'account_disabled';
  const expires = accountExpiresAt(entry.accountExpires);
  if (expires !== undefined && expires.getTime() <= now.getTime()) return 'account_expired';
  return undefined;
}

/** The FILETIME of a date (for tests and documentation: what `accountExpires` holds for it). */
export function toFiletime(date: Date): string {
  return String((BigInt(date.getTime()) + FILETIME_EPOCH_OFFSET_MS) * 10_000n);
}
