/** The pooled CSPRNG: sizes, independence of what it hands out, and no repeats across pool refills. */
import { describe, expect, it } from 'vitest';
import { secureRandomBytes } from '../../src/credentials/entropy.js';

describe('secureRandomBytes', () => {
  it.each([0, 1, 12, 30, 1024, 1025, 5000])('returns %i bytes', (size) => {
    expect(secureRandomBytes(size)).toHaveLength(size);
  });

  it('hands out copies: later draws and refills never change earlier bytes', () => {
    const first = secureRandomBytes(32);
    const copy = Buffer.from(first);
    for (let i = 0; i < 1000; i++) secureRandomBytes(30);
    expect(first.equals(copy)).toBe(true);
    first.fill(0);
    expect(secureRandomBytes(32).equals(Buffer.alloc(32))).toBe(false);
  });

  it('never repeats a 16-byte value over many pool refills', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 20_000; i++) seen.add(secureRandomBytes(16).toString('hex'));
    expect(seen.size).toBe(20_000);
  });

  it('looks uniform: every byte value turns up, none far more than others', () => {
    const counts = new Array<number>(256).fill(0);
    for (let i = 0; i < 2000; i++) for (const byte of secureRandomBytes(64)) counts[byte]!++;
    // 128000 bytes: 500 per value expected; a CSPRNG stays well within ±30%.
    expect(Math.min(...counts)).toBeGreaterThan(350);
    expect(Math.max(...counts)).toBeLessThan(650);
  });

  it('refuses a negative or fractional size', () => {
    expect(() => secureRandomBytes(-1)).toThrow(RangeError);
    expect(() => secureRandomBytes(1.5)).toThrow(RangeError);
  });
});
