import { randomBytes, randomFillSync } from 'node:crypto';

/**
 * Random bytes from the CSPRNG, drawn from a pooled buffer: one `randomFillSync` per 4 KiB instead of one
 * `randomBytes` call per identifier. A call costs about the same whatever its size, and an issuance needs
 * five (session id, token id, secret access key, two AES-GCM IVs); the measurement is in bench/README.md
 * ("What changed"). The source is the same as `crypto.randomBytes`; Node pools the
 * entropy of `crypto.randomUUID` the same way. Every byte is handed out once, as a copy the caller owns.
 */
const POOL_BYTES = 4096;
const pool = Buffer.allocUnsafeSlow(POOL_BYTES);
let offset = POOL_BYTES;

/** `size` bytes from the CSPRNG. */
export function secureRandomBytes(size: number): Buffer {
  if (!Number.isSafeInteger(size) || size < 0) throw new RangeError(`size must be a non-negative integer, got ${size}`);
  if (size > POOL_BYTES / 4) return randomBytes(size);
  if (offset + size > POOL_BYTES) {
    randomFillSync(pool);
    offset = 0;
  }
  // A copy: the pool is refilled in place later, and must not change what was handed out.
  const bytes = Buffer.from(pool.subarray(offset, offset + size));
  // Nothing handed out stays readable in the pool.
  pool.fill(0, offset, offset + size);
  offset += size;
  return bytes;
}
