/**
 * Two builds of the gateway side by side: this checkout and another (a worktree of the commit before a
 * change), each compiled as `npm run bench` compiles it and started with the image's Node flags, both
 * running at once and loaded in alternation, one pass each per round, so that the machine's drift falls
 * on both alike. The figure is each process's CPU per request (from /proc, over the whole round: its pass
 * and its idle time while the other is loaded, when V8 may finish collecting the pass's garbage), and the
 * median of the per-round ratios: on a shared machine whose speed moves by a third within minutes, the one comparison
 * that held still. A GET route (`/healthz`, the middleware floor), or with `--case=cache-hit` the cache-hit
 * case of `npm run bench`: one GitHub-Actions-like token from a loopback issuer, exchanged again and again
 * (`AssumeRoleWithWebIdentity`), or with `--case=fresh` its fresh issuance (a new subject on every request,
 * tokens minted before each pass); each build with its own Redis prefix.
 *
 *   git worktree add /tmp/before HEAD~1 && cp -al node_modules /tmp/before/
 *   npm run bench:ab -- /tmp/before [--path=/healthz | --case=cache-hit | --case=fresh] [--rounds=10] [--seconds=1]
 */
import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { oneCase, oneCaseNamed } from './harness/one-case.js';
import { cpuTicks, CLOCK_TICKS } from './harness/proc.js';
import { buildDirOf, buildServers, imageNodeFlags, ServerProcess, stopAll } from './harness/server-process.js';
import { GATEWAY_SETTINGS_ENV } from './servers/settings.js';

const { values, positionals } = parseArgs({ allowPositionals: true, options: { path: { type: 'string', default: '/healthz' }, case: { type: 'string' }, rounds: { type: 'string', default: '10' }, seconds: { type: 'string', default: '1' } } });
const other = positionals[0];
if (!other) {
  console.error('usage: npm run bench:ab -- <other checkout, with node_modules> [--path=/healthz | --case=cache-hit | --case=fresh] [--rounds=10] [--seconds=1]');
  process.exit(2);
}
const rounds = Number(values.rounds);
const seconds = Number(values.seconds);
if (!Number.isInteger(rounds) || rounds < 1 || !Number.isInteger(seconds) || seconds < 1) throw new Error('--rounds and --seconds take whole numbers of at least 1');
const chosen = values.case === undefined ? { path: values.path } : oneCaseNamed(values.case);
const here = fileURLToPath(new URL('..', import.meta.url));
const builds = [{ name: 'other', repo: resolve(other) }, { name: 'this', repo: here }];
for (const build of builds) console.log(`[ab] compiled ${build.repo} in ${(await buildServers(build.repo)).toFixed(1)} s`);

const measured = await oneCase(chosen);
const servers: ServerProcess[] = [];
try {
  for (const build of builds) {
    const env = { [GATEWAY_SETTINGS_ENV]: JSON.stringify(measured.settings(`stsgate-ab:${randomBytes(6).toString('hex')}:`)) };
    servers.push(await ServerProcess.start(build.name, 'gateway', { buildDir: buildDirOf(build.repo), nodeFlags: imageNodeFlags(), env }));
  }
  for (const server of servers) await measured.pass(`${server.name} warm-up`, server.url, { connections: 10, durationSeconds: 2 });
  // A process's CPU per round runs from the start of its pass to the start of its next one: what it does
  // while the other build is loaded (V8 finishing a collection the pass made necessary, in idle time) is
  // part of the cost of its requests, and a change that makes less garbage would otherwise look free.
  const perRequest: number[][] = servers.map(() => []);
  const cpuOf = (server: ServerProcess) => {
    const ticks = cpuTicks(server.pid);
    return ticks.user + ticks.system;
  };
  const started = servers.map(cpuOf);
  for (let round = 0; round < rounds; round++) {
    const served: number[] = [];
    for (const server of servers) {
      served.push(await measured.pass(server.name, server.url, { connections: 10, durationSeconds: seconds }));
    }
    // The last pass's process gets the same idle time after it as the others.
    if (round === rounds - 1) await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
    for (const [i, server] of servers.entries()) {
      const now = cpuOf(server);
      perRequest[i]!.push((((now - started[i]!) / CLOCK_TICKS) * 1e6) / served[i]!);
      started[i] = now;
    }
  }
  const median = (list: number[]) => [...list].sort((a, b) => a - b)[Math.floor(list.length / 2)]!;
  const ratios = perRequest[1]!.map((us, i) => us / perRequest[0]![i]!);
  for (const [i, build] of builds.entries()) console.log(`[ab] ${build.name} (${build.repo}): ${perRequest[i]!.map((us) => us.toFixed(0)).join(' ')} µs CPU per request, median ${median(perRequest[i]!).toFixed(1)}`);
  console.log(`[ab] ${measured.what}: this / other, median of ${rounds} per-round ratios: ${median(ratios).toFixed(2)}x`);
} finally {
  await stopAll(servers);
  await measured.close();
}
process.exit(0);
