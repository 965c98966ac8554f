import { describe, expect, it } from 'vitest';
import { RecentlyUsed } from '../../src/util/recently-used.js';

describe('RecentlyUsed', () => {
  it('keeps at most its size, forgetting the least recently used first', () => {
    const memo = new RecentlyUsed<string, number>(2);
    memo.set('a', 1);
    memo.set('b', 2);
    expect(memo.get('a')).toBe(1); // a is now the most recently used
    memo.set('c', 3);
    expect(memo.get('b')).toBeUndefined();
    expect(memo.get('a')).toBe(1);
    expect(memo.get('c')).toBe(3);
    expect(memo.size).toBe(2);
  });

  it('replaces a value, and forgets on delete', () => {
    const memo = new RecentlyUsed<string, number>(2);
    memo.set('a', 1);
    memo.set('a', 2);
    expect(memo.size).toBe(1);
    expect(memo.get('a')).toBe(2);
    memo.delete('a');
    expect(memo.get('a')).toBeUndefined();
  });

  it('refuses a size that is not a positive integer', () => {
    for (const size of [0, -1, 1.5, Number.NaN]) expect(() => new RecentlyUsed(size)).toThrow(RangeError);
  });
});
