/**
 * The short code a terminal login shows twice: `stsgate login` prints it, and the gateway's confirmation
 * page asks whether the command showed it, before anything is sent to a loopback port. Both derive it
 * from the PKCE challenge the command put in its `/cli/login` link, so no extra round trip is needed, and
 * a link crafted by someone else (whose challenge is theirs) shows a code the person never saw.
 *
 * No imports but node:crypto: the command (src/terminal) and the gateway (src/idp) share this one file.
 */
import { createHash } from 'node:crypto';

/** RFC 4648 §6 base32: no 0/1/8/9, so the code has no O/0 or I/1 to misread. */
const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/**
 * `XXXX-XXXX`: the first 8 base32 characters (40 bits) of SHA-256 of the code challenge, as ASCII.
 * 40 bits is for a person comparing two codes by eye, not a secret: it only has to differ, with
 * overwhelming odds, between the person's own login and a link someone else made.
 */
export function terminalConfirmationCode(codeChallenge: string): string {
  const digest = createHash('sha256').update(codeChallenge, 'ascii').digest();
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of digest) {
    // Only the low `bits` bits are still to be read; keep no more than that.
    value = ((value << 8) | byte) & 0xfff;
    bits += 8;
    while (bits >= 5 && out.length < 8) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
    if (out.length === 8) break;
  }
  return `${out.slice(0, 4)}-${out.slice(4)}`;
}
