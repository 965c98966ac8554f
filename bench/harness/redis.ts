/**
 * What a benchmark asks of Redis besides its cases: the CPU Redis has used, and the keys a run leaves
 * behind (each run keeps its keys under a prefix of its own).
 */
import type { Redis } from 'ioredis';

/** Redis's CPU time so far (`INFO cpu`: user + system), in seconds. */
export async function redisCpuSeconds(redis: Redis): Promise<number> {
  const info = await redis.info('cpu');
  const field = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info)?.[1] ?? 0);
  return field('used_cpu_user') + field('used_cpu_sys');
}

/** Deletes every key under `prefix` (SCAN MATCH, then UNLINK); how many were deleted. */
export async function deleteKeys(redis: Redis, prefix: string): Promise<number> {
  let cursor = '0';
  let deleted = 0;
  for (let round = 0; round < 10_000; round++) {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    if (keys.length > 0) deleted += await redis.unlink(...keys);
    cursor = next;
    if (cursor === '0') break;
  }
  return deleted;
}
