/**
 * `npm run bench:features`: what each feature the gateway keeps costs, measured on the floor server
 * (bench/servers/floor.ts) rather than the gateway, so that the answer is about the feature and not about
 * how the gateway happens to implement it. One floor process serves fresh issuance in several variants:
 * the plain floor (`/fresh`: RS256 verify, ES256 sign, one SET), the floor with every kept feature
 * (`/fresh-required`), and that floor without one feature at a time (`?without=<feature>`; FLOOR_FEATURES
 * in bench/servers/settings.ts says what each is). The variants are loaded in turn, in a new random order
 * every round, each pass with tokens never sent before and followed by a second's rest counted with it
 * (the collection of its garbage is its own cost, not the next variant's); per variant the median over the rounds of the process's
 * CPU per request, of Redis's, and of the req/s. What leaving a feature out saves is the kept-feature
 * floor's figure less the variant's.
 *
 *   npm run bench:features [-- --rounds=6 --seconds=2]
 */
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { TestIssuer } from '../test/support/test-issuer.js';
import { runPass, type RequestShape } from './harness/load.js';
import { FORM, freshTokenPool, stsForm } from './harness/one-case.js';
import { CLOCK_TICKS, cpuTicks } from './harness/proc.js';
import { median } from './harness/median.js';
import { deleteKeys, redisCpuSeconds } from './harness/redis.js';
import { buildServers, ServerProcess, stopAll } from './harness/server-process.js';
import { FLOOR_FEATURES, FLOOR_SETTINGS_ENV, type FloorBenchSettings } from './servers/settings.js';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '6' }, seconds: { type: 'string', default: '2' } } });
const rounds = Number(values.rounds);
const seconds = Number(values.seconds);
if (!Number.isInteger(rounds) || rounds < 1 || !Number.isInteger(seconds) || seconds < 1) throw new Error('--rounds and --seconds take whole numbers of at least 1');

const VARIANTS = [
  { name: 'plain floor (/fresh)', path: '/fresh' },
  { name: 'every kept feature', path: '/fresh-required' },
  ...FLOOR_FEATURES.map((feature) => ({ name: `without ${feature}`, path: `/fresh-required?without=${feature}` })),
];
/** The most fresh issuances per second one pass is minted for (the plain floor on a fast core). */
const RATE_CEILING = 6000;
/** The rest after each pass, counted with it (see pass). */
const SETTLE_MS = 1000;

console.log(`[features] compiled in ${(await buildServers()).toFixed(1)} s`);
const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const redis = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
const prefix = `stsgate-features:${randomBytes(6).toString('hex')}:`;
const issuer = await TestIssuer.start();
const pool = await freshTokenPool(issuer);
const servers: ServerProcess[] = [];
try {
  const settings: FloorBenchSettings = { issuerUrl: issuer.url, publicJwk: issuer.key({ alg: 'RS256' }).publicJwk, redisUrl, redisPrefix: prefix };
  const floor = await ServerProcess.start('floor', 'floor', { env: { [FLOOR_SETTINGS_ENV]: JSON.stringify(settings) } });
  servers.push(floor);
  const shape = (path: string): RequestShape => ({ method: 'POST', path, headers: { 'content-type': FORM }, nextBody: () => stsForm(pool.take()) });
  const pass = async (path: string) => {
    await pool.ensure(RATE_CEILING * seconds);
    const reused = pool.reused;
    const before = cpuTicks(floor.pid);
    const redisBefore = await redisCpuSeconds(redis);
    const result = await runPass(floor.url, shape(path), { connections: 10, durationSeconds: seconds });
    // A second's rest, counted with the pass: V8 finishes collecting what the pass left (incremental
    // marking in idle time) before the next variant's pass, which would otherwise pay for it.
    await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
    const after = cpuTicks(floor.pid);
    const redisUsed = (await redisCpuSeconds(redis)) - redisBefore;
    if (result.failures > 0) throw new Error(`${path}: ${result.failures} of ${result.requests} requests failed (${JSON.stringify(result.statusCodes)})`);
    if (pool.reused > reused) throw new Error(`${path}: the token pool ran dry`);
    const perRequest = (s: number) => (s * 1e6) / result.requests;
    return { rps: result.rps, cpuUs: perRequest((after.user + after.system - before.user - before.system) / CLOCK_TICKS), redisUs: perRequest(redisUsed) };
  };
  for (const variant of VARIANTS) await pass(variant.path); // warm-up, every route
  const measured = VARIANTS.map(() => ({ rps: [] as number[], cpuUs: [] as number[], redisUs: [] as number[] }));
  for (let round = 0; round < rounds; round++) {
    // A new order every round: no variant always follows the same one.
    const order = VARIANTS.map((_, i) => i);
    for (let k = order.length - 1; k > 0; k--) {
      const j = Math.floor(Math.random() * (k + 1));
      [order[k], order[j]] = [order[j]!, order[k]!];
    }
    for (const i of order) {
      const one = await pass(VARIANTS[i]!.path);
      measured[i]!.rps.push(one.rps);
      measured[i]!.cpuUs.push(one.cpuUs);
      measured[i]!.redisUs.push(one.redisUs);
    }
  }
  const kept = VARIANTS.findIndex((v) => v.path === '/fresh-required');
  const keptCpu = median(measured[kept]!.cpuUs);
  const keptRedis = median(measured[kept]!.redisUs);
  console.log(`[features] fresh issuance on the floor, median of ${rounds} rounds of ${seconds} s per variant:`);
  console.log('| variant | req/s | CPU µs/req | saves | Redis CPU µs/req | saves |');
  console.log('| --- | ---: | ---: | ---: | ---: | ---: |');
  for (const [i, variant] of VARIANTS.entries()) {
    const cpu = median(measured[i]!.cpuUs);
    const redisUs = median(measured[i]!.redisUs);
    const saves = (of: number, from: number) => (variant.path.includes('without') ? `${(from - of).toFixed(0)}` : '');
    console.log(`| ${variant.name} | ${median(measured[i]!.rps).toFixed(0)} | ${cpu.toFixed(0)} | ${saves(cpu, keptCpu)} | ${redisUs.toFixed(0)} | ${saves(redisUs, keptRedis)} |`);
  }
} finally {
  await stopAll(servers);
  await pool.close();
  await issuer.close();
  await deleteKeys(redis, prefix);
  redis.disconnect();
}
process.exit(0);
