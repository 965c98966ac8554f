/**
 * `stsgate keys rotate` under a lock: two rotations at once would both read the same file, and the
 * second rename would drop the first one's new key (possibly already published, soon signing).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { makeTempDir, removeTempDir, runStsgate, sharedKeys } from '../support/gateway-process.js';

let dir: string;
let keysFile: string;
const rotateArgs = () => ['keys', 'rotate', '--file', keysFile, '--max-lifetime', '3660', '--publish-ahead', '60'];
const kids = async () => ((JSON.parse(await readFile(keysFile, 'utf8')) as { keys: { kid: string }[] }).keys).map((k) => k.kid);

beforeEach(async () => {
  dir = makeTempDir('rotate');
  ({ keysFile } = await sharedKeys(dir));
});
afterAll(() => {
  if (dir) removeTempDir(dir);
});

describe('stsgate keys rotate', () => {
  it('refuses while another rotation holds the lock, and leaves the file as it was', async () => {
    const before = await readFile(keysFile, 'utf8');
    // This test process stands in for a rotation in progress.
    await writeFile(`${keysFile}.lock`, `${process.pid}\n`);
    const res = await runStsgate(rotateArgs());
    expect(res.code).toBe(1);
    expect(res.stderr).toContain(`another \`stsgate keys rotate\` holds ${keysFile}.lock (pid ${process.pid}, running); the keys file was not changed`);
    expect(await readFile(keysFile, 'utf8')).toBe(before);
    expect(existsSync(`${keysFile}.lock`)).toBe(true);
  });

  it('a lock left by a rotation that died is named as such, removed by hand, and then rotation works', async () => {
    const gone = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
    await writeFile(`${keysFile}.lock`, `${gone.stdout}\n`);
    const before = await kids();
    const refused = await runStsgate(rotateArgs());
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`(pid ${gone.stdout}, no longer running: remove ${keysFile}.lock and rotate again)`);
    expect(await kids()).toEqual(before);
    await rm(`${keysFile}.lock`);
    const res = await runStsgate(rotateArgs());
    expect(res.code, res.stderr).toBe(0);
    const after = await kids();
    expect(after.slice(0, before.length)).toEqual(before);
    expect(after).toHaveLength(before.length + 1);
    expect(existsSync(`${keysFile}.lock`)).toBe(false);
  });

  it('several rotations at once: every one that succeeds keeps its key, the others say why, no lock is left', async () => {
    const runs = await Promise.all(Array.from({ length: 4 }, () => runStsgate(rotateArgs())));
    const succeeded = runs.filter((r) => r.code === 0);
    expect(succeeded.length).toBeGreaterThanOrEqual(1);
    for (const refused of runs.filter((r) => r.code !== 0)) expect(refused.stderr).toContain('another `stsgate keys rotate`');
    const added = succeeded.map((r) => /added key ([^\s:]+):/.exec(r.stdout)![1]!);
    const final = await kids();
    for (const kid of added) expect(final).toContain(kid);
    expect(final).toHaveLength(1 + added.length);
    expect(existsSync(`${keysFile}.lock`)).toBe(false);
    expect((await readdir(dir)).filter((name) => name.includes('.tmp'))).toEqual([]);
  });
});
