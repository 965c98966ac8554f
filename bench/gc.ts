/**
 * `npm run bench:gc`: what one request costs the garbage collector. The gateway (this checkout, compiled
 * as `npm run bench` compiles it, with the image's Node flags) serves one case under load while V8 reports
 * every collection (`--trace-gc-nvp`); per request: bytes allocated, bytes promoted to the old generation
 * (what makes mark-compacts), and the main thread's pause in scavenges and in mark-compacts, beside the
 * process's CPU. With `--sites`, two more passes sample allocations (V8's sampling heap profiler) and name
 * the functions that allocate, and those whose allocations outlived a young-generation collection.
 *
 *   npm run bench:gc                                  the cache-hit case (AssumeRoleWithWebIdentity, one token)
 *   npm run bench:gc -- --case=fresh                  fresh issuance (a new subject every request)
 *   npm run bench:gc -- --path=/healthz               a GET route instead
 *   npm run bench:gc -- --sites [--seconds=3] [--connections=10] [--flags="--max-semi-space-size=16"]
 *
 * Numbers move with the machine's load, as everything here does: compare two builds in one sitting.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { oneCase, oneCaseNamed } from './harness/one-case.js';
import { CLOCK_TICKS, cpuTicks } from './harness/proc.js';
import { BUILD_DIR, buildServers, imageNodeFlags, ServerProcess, stopAll } from './harness/server-process.js';
import type { HeapSamplingRequest } from './servers/heap-sampler.js';
import { GATEWAY_SETTINGS_ENV } from './servers/settings.js';

const { values } = parseArgs({
  options: {
    path: { type: 'string' },
    case: { type: 'string' },
    sites: { type: 'boolean', default: false },
    seconds: { type: 'string', default: '3' },
    connections: { type: 'string', default: '10' },
    flags: { type: 'string', default: '' },
  },
});
const seconds = Number(values.seconds);
const connections = Number(values.connections);
if (!Number.isInteger(seconds) || seconds < 1 || !Number.isInteger(connections) || connections < 1) throw new Error('--seconds and --connections take whole numbers of at least 1');

console.log(`[gc] compiled in ${(await buildServers()).toFixed(1)} s`);
if (values.case !== undefined && values.path !== undefined) throw new Error('--case and --path: one or the other');
const measured = await oneCase(values.path !== undefined ? { path: values.path } : oneCaseNamed(values.case ?? 'cache-hit'));

/** One line of `--trace-gc-nvp`: `name=value` pairs. */
type Collection = Record<string, string>;
let collections: Collection[] | undefined;
const servers: ServerProcess[] = [];
try {
  const server = await ServerProcess.start('gateway', 'gateway', {
    nodeFlags: [...imageNodeFlags(), ...values.flags.split(' ').filter(Boolean), '--trace-gc-nvp', '--import', join(BUILD_DIR, 'bench', 'servers', 'heap-sampler.js')],
    env: { [GATEWAY_SETTINGS_ENV]: JSON.stringify(measured.settings(`stsgate-gc:${randomBytes(6).toString('hex')}:`)) },
    onStdoutLine: (line) => {
      if (collections && line.includes(' gc=') && line.includes('pause=')) {
        collections.push(Object.fromEntries(line.split(/\s+/).filter((pair) => pair.includes('=')).map((pair) => pair.split('=', 2) as [string, string])));
      }
    },
  });
  servers.push(server);
  const pass = () => measured.pass('gateway', server.url, { connections, durationSeconds: seconds });
  await pass(); // warm-up

  collections = [];
  const before = cpuTicks(server.pid);
  const requests = await pass();
  const after = cpuTicks(server.pid);
  const seen = collections;
  collections = undefined;
  const sum = (list: Collection[], field: string) => list.reduce((total, c) => total + Number.parseFloat(c[field] ?? '0'), 0);
  const scavenges = seen.filter((c) => c.gc === 's');
  const markCompacts = seen.filter((c) => c.gc !== 's');
  const perRequest = (value: number, scale: number) => ((value * scale) / requests).toFixed(1);
  console.log(`[gc] ${measured.what}, ${connections} connections, ${seconds} s: ${requests} requests`);
  console.log(`[gc] CPU ${perRequest(((after.user + after.system - before.user - before.system) / CLOCK_TICKS) * 1e6, 1)} µs per request`);
  console.log(`[gc] allocated ${perRequest(sum(scavenges, 'allocated'), 1 / 1024)} KB, promoted ${perRequest(sum(scavenges, 'promoted'), 1 / 1024)} KB per request`);
  console.log(`[gc] ${scavenges.length} scavenges, ${perRequest(sum(scavenges, 'pause'), 1000)} µs of pause per request; ${markCompacts.length} mark-compacts, ${perRequest(sum(markCompacts, 'pause'), 1000)} µs of pause per request (their incremental marking is not in it)`);

  if (values.sites) {
    for (const kind of ['all', 'promoted'] as const) {
      await server.ask({ type: 'heap-sampling', action: 'start', kind } satisfies HeapSamplingRequest, 'heap-sampling');
      const sampled = await pass();
      const { profile } = await server.ask<{ type: string; profile: SamplingProfile }>({ type: 'heap-sampling', action: 'stop' } satisfies HeapSamplingRequest, 'heap-sampling', 30_000);
      console.log(`[gc] ${kind === 'all' ? 'where it is allocated' : 'where what outlived a young-generation collection was allocated'} (bytes per request, sampled):`);
      for (const [site, bytes] of topSites(profile, 25)) console.log(`${(bytes / sampled).toFixed(0).padStart(8)}  ${site}`);
    }
  }
} finally {
  await stopAll(servers);
  await measured.close();
}
process.exit(0);

interface SamplingNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: SamplingNode[];
}
interface SamplingProfile {
  head: SamplingNode;
}

/** Bytes by allocating function and its caller, largest first. */
function topSites(profile: SamplingProfile, count: number): [string, number][] {
  const bySite = new Map<string, number>();
  const name = (node: SamplingNode) => `${node.callFrame.functionName || '(anonymous)'} ${node.callFrame.url.replace(/^.*\/(node_modules|build)\//, '')}:${node.callFrame.lineNumber + 1}`;
  const walk = (node: SamplingNode, caller: string) => {
    const site = `${name(node)} < ${caller}`;
    if (node.selfSize > 0) bySite.set(site, (bySite.get(site) ?? 0) + node.selfSize);
    for (const child of node.children) walk(child, name(node));
  };
  walk(profile.head, '(root)');
  return [...bySite].sort((a, b) => b[1] - a[1]).slice(0, count);
}
