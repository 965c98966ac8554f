/** `workers: auto`: one worker per core, but never more than the container's CPU limit (cgroup v2 or v1). */
import { availableParallelism } from 'node:os';
import { describe, expect, it } from 'vitest';
import { cpuLimit, workerCount } from '../src/cluster.js';

const files = (entries: Record<string, string>) => (path: string) => entries[path];

describe('cpuLimit', () => {
  it.each<[string, Record<string, string>, number | undefined]>([
    ['cgroup v2 without a limit', { '/sys/fs/cgroup/cpu.max': 'max 100000\n' }, undefined],
    ['cgroup v2 with 2 cores', { '/sys/fs/cgroup/cpu.max': '200000 100000\n' }, 2],
    ['cgroup v2 with 1.5 cores (rounded down)', { '/sys/fs/cgroup/cpu.max': '150000 100000\n' }, 1],
    ['cgroup v2 with half a core (at least one)', { '/sys/fs/cgroup/cpu.max': '50000 100000\n' }, 1],
    ['cgroup v1 without a quota', { '/sys/fs/cgroup/cpu/cpu.cfs_quota_us': '-1\n', '/sys/fs/cgroup/cpu/cpu.cfs_period_us': '100000\n' }, undefined],
    ['cgroup v1 with 4 cores', { '/sys/fs/cgroup/cpu/cpu.cfs_quota_us': '400000\n', '/sys/fs/cgroup/cpu/cpu.cfs_period_us': '100000\n' }, 4],
    ['no cgroup files (not Linux)', {}, undefined],
    ['an unreadable value', { '/sys/fs/cgroup/cpu.max': 'garbage here\n' }, undefined],
  ])('%s', (_name, entries, expected) => {
    expect(cpuLimit(files(entries))).toBe(expected);
  });
});

describe('workerCount', () => {
  it('keeps a number as written', () => {
    expect(workerCount(3)).toBe(3);
  });

  it('makes auto one per core without a limit, and at most the limit with one', () => {
    expect(workerCount('auto', undefined)).toBe(availableParallelism());
    expect(workerCount('auto', 1)).toBe(1);
    expect(workerCount('auto', 1_000)).toBe(availableParallelism());
  });
});
