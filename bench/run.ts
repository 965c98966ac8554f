/**
 * `npm run bench`: the performance benchmark of issue 5. In one run it starts what it needs (a loopback
 * JWT issuer, a Redis-backed gateway, a bare-Koa baseline, the floor server (bare Koa doing only an
 * exchange's unavoidable work) and an oidc-provider peer, each server in its own process; then the
 * gateway once more as one process and with `workers: auto`), drives load with autocannon from this
 * process, and writes bench/results.md.
 *
 *   npm run bench                       the full run (about 450 s on two cores)
 *   npm run bench -- --quick            shorter passes, for checking the harness itself
 *   npm run bench -- --profile          CPU profiles of fresh issuance and cache hits -> bench/PROFILE.md
 *   npm run bench -- --cases=fresh,cache-hit   the baseline and only these cases, in this order (while iterating)
 *   npm run bench -- --cases=workers    one gateway process against `workers: auto` (issue 17)
 *
 * Environment: REDIS_URL (default redis://127.0.0.1:6379); keys are written under a fresh random prefix
 * and deleted at the end.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, cpus, loadavg, release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { Sha256 } from '@aws-crypto/sha256-js';
import { SignatureV4 } from '@smithy/signature-v4';
import { Redis } from 'ioredis';
import { workerCount } from '../src/cluster.js';
import { generateSigningJwk } from '../src/credentials/signing-keys.js';
import { TestIssuer } from '../test/support/test-issuer.js';
import { StsFaultServer } from '../test/support/sts-fault-server.js';
import type { CryptoMeasurement } from './crypto.js';
import { summarizeProfile, type CpuProfile, type ProfileSummary } from './harness/cpu-profile.js';
import { runPass, type PassResult, type RequestShape } from './harness/load.js';
import { cacheHitRequest, FORM, freshRequest, freshTokenPool, mintRepeatedToken, STS_VERSION, stsForm } from './harness/one-case.js';
import { parallelScaling } from './harness/parallel-scaling.js';
import { median } from './harness/median.js';
import { deleteKeys, redisCpuSeconds } from './harness/redis.js';
import { CLOCK_TICKS, cpusAllowed, cpuTicks, machineTicks, memoryBytes } from './harness/proc.js';
import { buildServers, imageNodeFlags, RssSampler, ServerProcess, stopAll } from './harness/server-process.js';
import { TokenPool } from './harness/token-pool.js';
import { measureRules, RULE_SET_SIZES } from './rules.js';
import {
  BENCH_ROLE_ARN,
  BENCH_TARGET,
  BENCH_BROKER_ROLE_ARN,
  FLOOR_SETTINGS_ENV,
  GATEWAY_SETTINGS_ENV,
  PEER_CLIENT,
  type FloorBenchSettings,
  type GatewayBenchSettings,
} from './servers/settings.js';

const args = new Set(process.argv.slice(2));
const PROFILE = args.has('--profile');
const QUICK = args.has('--quick');
/** `--cases=a,b`: run only these case ids (the baseline always runs: every ratio needs it). */
const ONLY = process.argv.find((a) => a.startsWith('--cases='))?.slice('--cases='.length).split(',');
const selected = (id: string) => id === 'baseline' || !ONLY || ONLY.includes(id);

/**
 * Seconds per pass: 2 s warm-up, 6 s at full speed, 4 s at half that rate, i.e. 12.5 s a case with the
 * idle sample before it. Seventeen cases (the baseline twice), the process warm-ups and the token
 * minting the warm-ups do not cover make about 260 s on two cores; the alternating rounds of the targets
 * (five pairs, six rounds of 2 + 2 s, and their tokens) about 150 s more, and the workers case (two
 * gateways, each 2 + 2 s of warm-up, 6 s of fresh issuance and 4 s of cache hits) about 30 s: about 450 s.
 * BENCH_TIMING=warm-up,max,half overrides (A/B runs).
 */
const TIMING = timing();

/** The Node flags the production image runs the gateway with (its ENTRYPOINT), so the gateway here runs the same way. */
const IMAGE_NODE_FLAGS = imageNodeFlags();

function timing() {
  const custom = process.env.BENCH_TIMING?.split(',').map(Number);
  if (custom && custom.length === 3 && custom.every((n) => Number.isInteger(n) && n >= 1 && n <= 60)) {
    return { warmupSeconds: custom[0]!, maxSeconds: custom[1]!, halfSeconds: custom[2]!, connections: 10 };
  }
  return QUICK ? { warmupSeconds: 1, maxSeconds: 2, halfSeconds: 2, connections: 10 } : { warmupSeconds: 2, maxSeconds: 6, halfSeconds: 4, connections: 10 };
}
const execFileAsync = promisify(execFile);
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const BENCH_DIR = fileURLToPath(new URL('.', import.meta.url));

type ServerKind = 'baseline' | 'floor' | 'gateway' | 'peer';
/** The order of the table's rows (the run measures the gateway before the floors). */
const KIND_ORDER: ServerKind[] = ['baseline', 'floor', 'gateway', 'peer'];

/** Per ratio-target gateway case, the id of its floor case (the same request, only its unavoidable work). */
const FLOORS = { fresh: 'floor-fresh', 'cache-hit': 'floor-cache-hit' } as const;

/**
 * Per ratio-target gateway case, the floor doing the same work with every feature issue 17 says the
 * gateway keeps (checks, counts, audit line, sealed record, request id, headers, metrics), written plainly
 * (bench/servers/floor.ts): what any implementation keeping them could reach here, so the bound of a target.
 */
const REQUIRED = { fresh: 'floor-fresh-required', 'cache-hit': 'floor-cache-hit-required', healthz: 'floor-healthz' } as const;

/**
 * The targets' alternating rounds (see alternateTargets): rounds per pair, seconds per pass. Each round
 * loads the gateway and what it is held against once each, the order swapped every round.
 */
const ALTERNATION = QUICK ? { rounds: 2, seconds: 1 } : { rounds: 6, seconds: 2 };

/** The cases whose every request takes a new token from the pool (fresh issuance, gateway and floor). */
const FRESH_CASES: ReadonlySet<string> = new Set(['fresh', 'fresh-no-targets', 'rfc8693', 'target', FLOORS.fresh, REQUIRED.fresh]);
const freshTokens = (spec: CaseSpec) => FRESH_CASES.has(spec.id);

/**
 * The `workers` case (issue 17): the gateway with `workers: auto` (node:cluster, src/cluster.ts) against
 * one process, fresh issuance and cache hits, in the same run. It takes tokens from the pool too.
 */
const WORKERS_CASE = 'workers';
/** The `workers` settings it compares, in the order it runs them. */
const WORKERS_SETTINGS = [1, 'auto'] as const;

/** The most tokens minted alongside warm-ups: above what the floor's fresh case takes in its process (about 135,000 at 9,700 req/s). */
const ALONGSIDE_LIMIT = QUICK ? 30_000 : 150_000;

/** One benchmark case: what is sent, to which server, and how a correct answer looks. */
interface CaseSpec {
  id: string;
  title: string;
  server: ServerKind;
  shape: RequestShape;
  /** Checks one answer before the load starts, so an error page is never what gets measured. */
  expect: (status: number, body: string) => boolean;
}

interface CaseResult {
  spec: CaseSpec;
  max: PassResult;
  half: PassResult;
  halfRate: number;
  peakRssBytes: number;
  serverCpuUsPerRequest: number;
  /** The part of it spent in the kernel (system time): sockets, log writes. */
  serverSystemUsPerRequest: number;
  redisCpuUsPerRequest: number | undefined;
  notes: string[];
}

interface Machine {
  cores: number;
  cpuModel: string;
  node: string;
  kernel: string;
  redis: string;
  date: string;
  /** 1-minute load average when the run started. */
  loadAverage: number;
}

async function main(): Promise<void> {
  const started = performance.now();
  const servers = new Set<ServerProcess>();
  const cleanups: (() => Promise<unknown>)[] = [];
  const onSignal = () => {
    console.error('\ninterrupted: stopping servers');
    void stopAll(servers).finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  try {
    const redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
    await redis.connect();
    cleanups.push(() => redis.quit());
    const prefix = `stsgate-bench:${randomBytes(6).toString('hex')}:`;
    cleanups.push(async () => log(`removed ${await deleteKeys(redis, prefix)} Redis keys under ${prefix}`));
    const machine = await describeMachine(redis);
    log(`stsgate benchmark: ${machine.cores} cores (${machine.cpuModel}), Node ${machine.node}, Redis ${machine.redis}${QUICK ? ' [quick]' : ''}`);

    log(`compiled the servers in ${(await buildServers()).toFixed(1)} s`);
    const rules = PROFILE ? [] : RULE_SET_SIZES.map((size) => ({ size, ...measureRules(size) }));
    for (const r of rules) log(`rules: ${r.size} rules ${r.perEvaluationUs.toFixed(2)} µs/evaluation`);

    const issuer = await TestIssuer.start();
    cleanups.push(() => issuer.close());
    const rsKey = issuer.key({ alg: 'RS256' });
    const pool = await freshTokenPool(issuer);
    cleanups.push(() => pool.close());

    const dir = await mkdtemp(join(tmpdir(), 'stsgate-bench-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const keysFile = join(dir, 'keys.json');
    await writeFile(keysFile, JSON.stringify({ keys: [await generateSigningJwk('ES256')] }), { mode: 0o600 });
    // AWS STS for the broker target (issue 13): a loopback stand-in in this process. Only the first request
    // of the broker case reaches it; the rest are cache hits.
    const awsStandIn = await StsFaultServer.start();
    cleanups.push(() => awsStandIn.close());
    const settings: GatewayBenchSettings = { issuerUrl: issuer.url, redisUrl: REDIS_URL, redisPrefix: prefix, keysFile, encryptionKey: randomBytes(32).toString('base64'), stsUrl: awsStandIn.url };
    const floorSettings: FloorBenchSettings = { issuerUrl: issuer.url, publicJwk: rsKey.publicJwk, redisUrl: REDIS_URL, redisPrefix: prefix };
    // The cache-hit cases (gateway and floor) send this one token, a subject that repeats.
    const repeatedToken = await mintRepeatedToken(issuer);

    const start = async (kind: ServerKind, nodeFlags: string[] = [], gatewaySettings: Partial<GatewayBenchSettings> = {}) => {
      const env = { [GATEWAY_SETTINGS_ENV]: JSON.stringify({ ...settings, ...gatewaySettings }), [FLOOR_SETTINGS_ENV]: JSON.stringify(floorSettings) };
      const script = { baseline: 'baseline', floor: 'floor', gateway: 'gateway', peer: 'oidc-provider' }[kind];
      const server = await ServerProcess.start(kind, script, { nodeFlags, env });
      servers.add(server);
      return server;
    };
    const stop = async (server: ServerProcess) => {
      await server.stop();
      servers.delete(server);
    };

    if (PROFILE) {
      await profileRun({ start, stop, issuer, pool, redis, machine, repeatedToken, redisPrefix: prefix, dir });
    } else {
      await fullRun({ start, stop, issuer, pool, redis, machine, repeatedToken, redisPrefix: prefix, rules });
    }
    log(`done in ${((performance.now() - started) / 1000).toFixed(0)} s`);
  } finally {
    await stopAll(servers);
    for (const cleanup of cleanups.reverse()) await cleanup().catch((err: unknown) => console.error('cleanup failed:', err));
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

interface RunContext {
  /** Starts a server; a gateway's settings may differ from the run's in `gatewaySettings` (the `workers` case). */
  start: (kind: ServerKind, nodeFlags?: string[], gatewaySettings?: Partial<GatewayBenchSettings>) => Promise<ServerProcess>;
  stop: (server: ServerProcess) => Promise<void>;
  issuer: TestIssuer;
  pool: TokenPool;
  redis: Redis;
  machine: Machine;
  /** The cache-hit cases' token. */
  repeatedToken: string;
  /** The run's Redis key prefix (everything under it is deleted at the end). */
  redisPrefix: string;
}

async function fullRun(context: RunContext & { rules: { size: number; perEvaluationUs: number; compileMs: number }[] }): Promise<void> {
  const { start, stop, pool, redis } = context;
  const results: CaseResult[] = [];
  // Tokens are minted alongside the warm-ups of cases that take none, while a case that takes them is still to come.
  let freshAhead = [...FRESH_CASES, WORKERS_CASE].filter(selected).length;
  const measure = async (server: ServerProcess, spec: CaseSpec) => {
    const result = await measureCase(server, spec, pool, redis, freshAhead > 0);
    if (freshTokens(spec)) freshAhead--;
    return result;
  };
  // The baseline is measured at the start and again at the end: a single pass can be depressed by other
  // load on a shared machine, and it is the denominator of every ratio.
  const measureBaseline = async () => {
    const server = await start('baseline');
    const result = await measure(server, baselineCase());
    await stop(server);
    return result;
  };

  const firstBaseline = await measureBaseline();

  const gateway = await start('gateway', IMAGE_NODE_FLAGS);
  const fixtures = await gatewayFixtures(gateway, context.issuer, context.repeatedToken);
  // In the order `--cases` names them (A/B comparisons run both ways), else as listed.
  const cases = gatewayCases(fixtures, pool)
    .filter((c) => selected(c.id))
    .sort((a, b) => (ONLY ? ONLY.indexOf(a.id) - ONLY.indexOf(b.id) : 0));
  await warmProcess(gateway, cases, pool, freshAhead > 0);

  // Each floor is measured right after the gateway case of the same work, so that a machine whose speed
  // drifts during the run (seen: bare Koa at half its rate by the end) moves both sides of a ratio alike.
  // The floor is a process of its own that has seen none of the gateway's tokens, keeps its own Redis
  // keys and reads nothing the gateway wrote; it takes tokens from its own place in the pool (`from`),
  // so each process still sees each token at most once.
  const floorCases = floorCasesFor(context.repeatedToken, pool).filter((c) => selected(c.id));
  const floor = floorCases.length > 0 ? await start('floor') : undefined;
  let floorCursor = 0;
  // Warmed up as the gateway is: a ceiling is only one if the floor runs at its best.
  if (floor) ({ cursor: floorCursor } = await pool.from(floorCursor, () => warmProcess(floor, floorCases, pool, freshAhead > 0)));
  const measureFloor = async (spec: CaseSpec) => {
    const { result, cursor } = await pool.from(floorCursor, () => measure(floor!, spec));
    floorCursor = cursor;
    results.push(result);
  };
  const floorCase = (id: string | undefined) => floorCases.find((c) => c.id === id);
  const pairedFloor = (gatewayCaseId: string) => floorCase((FLOORS as Record<string, string>)[gatewayCaseId]);
  const requiredFloor = (gatewayCaseId: string) => floorCase((REQUIRED as Record<string, string>)[gatewayCaseId]);
  for (const spec of cases) {
    results.push(await measure(gateway, spec));
    for (const paired of [pairedFloor(spec.id), requiredFloor(spec.id)]) if (paired) await measureFloor(paired);
  }
  // A floor whose gateway case was not selected runs after the gateway cases.
  for (const spec of floorCases) if (!cases.some((c) => pairedFloor(c.id) === spec || requiredFloor(c.id) === spec)) await measureFloor(spec);
  // The ratio targets once more, each side against the other in short alternating passes (both processes
  // warm); and the floor with the required features against the floor (or bare Koa) the same way.
  const alternations: Alternation[] = [];
  const onFloor = (spec: CaseSpec): AlternationSide => ({ server: floor!, spec, take: (run) => pool.from(floorCursor, run).then(({ result, cursor }) => ((floorCursor = cursor), result)) });
  const onGateway = (spec: CaseSpec): AlternationSide => ({ server: gateway, spec, take: (run) => run() });
  for (const spec of cases) {
    const paired = pairedFloor(spec.id);
    if (!paired) continue;
    alternations.push(await alternate(spec.id, onGateway(spec), onFloor(paired), pool, redis));
    const required = requiredFloor(spec.id);
    if (required) alternations.push(await alternate(required.id, onFloor(required), onFloor(paired), pool, redis));
  }
  const healthzCase = cases.find((c) => c.id === 'healthz');
  if (healthzCase) {
    const bare = await start('baseline');
    try {
      await unmeasuredPass(bare, baselineCase(), QUICK ? 1 : 2, pool, false);
      const onBare: AlternationSide = { server: bare, spec: baselineCase(), take: (run) => run() };
      alternations.push(await alternate(healthzCase.id, onGateway(healthzCase), onBare, pool, redis));
      const required = requiredFloor(healthzCase.id);
      if (required) alternations.push(await alternate(required.id, onFloor(required), onBare, pool, redis));
    } finally {
      await stop(bare);
    }
  }
  const gatewayPeakRss = gateway.peakRssBytes();
  await stop(gateway);
  if (floor) await stop(floor);

  let workers: WorkersComparison | undefined;
  if (selected(WORKERS_CASE)) {
    workers = await workersComparison(context, freshAhead > 0);
    freshAhead--;
  }

  if (selected('peer')) {
    const peer = await start('peer');
    results.push(await measure(peer, peerCase()));
    await stop(peer);
  }

  const lastBaseline = await measureBaseline();
  const baseline = higherBaseline(firstBaseline, lastBaseline);
  log(`baseline: ${firstBaseline.max.rps.toFixed(0)} req/s at the start, ${lastBaseline.max.rps.toFixed(0)} at the end; the ratios use the higher (${baseline.max.rps.toFixed(0)})`);
  results.push(baseline);
  results.sort((a, b) => KIND_ORDER.indexOf(a.spec.server) - KIND_ORDER.indexOf(b.spec.server));

  const report = renderReport(context.machine, results, context.rules, gatewayPeakRss, { start: firstBaseline.max.rps, end: lastBaseline.max.rps }, workers, alternations);
  // Only a full run replaces the published results; a partial one goes to the temporary directory.
  const file = QUICK || ONLY || process.env.BENCH_TIMING ? join(tmpdir(), 'stsgate-bench-results.partial.md') : join(BENCH_DIR, 'results.md');
  await writeFile(file, report);
  log(`wrote ${file}`);
  console.log(`\n${report}`);
}

/** The baseline pass with the higher rate, carrying the notes of both passes. */
function higherBaseline(first: CaseResult, last: CaseResult): CaseResult {
  const higher = last.max.rps > first.max.rps ? last : first;
  const notes = [...first.notes.map((n) => `start pass: ${n}`), ...last.notes.map((n) => `end pass: ${n}`)];
  return { ...higher, notes };
}

/** One side of an alternation: a server, the request it gets, and how its passes take tokens (the floor from its own place in the pool). */
interface AlternationSide {
  server: ServerProcess;
  spec: CaseSpec;
  take: <T>(run: () => Promise<T>) => Promise<T>;
}

/** What one pass of an alternation measured. */
interface AlternationPass {
  rps: number;
  cpuUsPerRequest: number;
  redisUsPerRequest: number | undefined;
}

/** A ratio measured in alternating passes: per round, the pass of the case held against the other (`gateway`: the gateway's, or a REQUIRED floor's) and the other's. */
interface Alternation {
  /** The id of the case held against the other (fresh, cache-hit, healthz, or a REQUIRED floor). */
  id: string;
  rounds: { gateway: AlternationPass; versus: AlternationPass }[];
  notes: string[];
}

/**
 * A ratio target measured again, as `npm run bench:ab` compares two builds: the gateway case and what it
 * is held against (its floor, or bare Koa for /healthz), both processes already warm, loaded in turn for
 * ALTERNATION.seconds each, the order swapped every round. The single passes of the table ran a minute or
 * more apart, and a shared machine's speed moves within that (the cache-hit floor measured 160 and 122 µs
 * per request a quarter of an hour apart, the gateway the same in both): here each round's two passes are
 * seconds apart, and the target reads the median of the per-round ratios. A pass with failures, or that
 * ran out of fresh tokens, is noted and its round left out.
 */
async function alternate(id: string, gateway: AlternationSide, versus: AlternationSide, pool: TokenPool, redis: Redis): Promise<Alternation> {
  const notes: string[] = [];
  const rounds: Alternation['rounds'] = [];
  const rates = new Map<AlternationSide, number>();
  const once = async (side: AlternationSide): Promise<AlternationPass | undefined> =>
    side.take(async () => {
      if (freshTokens(side.spec)) await mint(pool, tokensFor(rates.get(side) ?? 4000, ALTERNATION.seconds, 1.25));
      const reusedBefore = pool.reused;
      const before = await cpuSnapshot(side.server, usesRedis(side.spec) ? redis : undefined);
      const pass = await runPass(side.server.url, side.spec.shape, { connections: TIMING.connections, durationSeconds: ALTERNATION.seconds });
      const cpu = cpuUse(before, await cpuSnapshot(side.server, usesRedis(side.spec) ? redis : undefined));
      rates.set(side, pass.rps);
      const problems = passProblems(`${side.spec.title}, alternating pass`, pass, pool.reused - reusedBefore);
      notes.push(...problems);
      if (problems.length > 0 || pass.requests === 0) return undefined;
      const per = (seconds: number) => (seconds * 1e6) / pass.requests;
      return { rps: pass.rps, cpuUsPerRequest: per(cpu.server.user + cpu.server.system), redisUsPerRequest: cpu.redis === undefined ? undefined : per(cpu.redis) };
    });
  for (let round = 0; round < ALTERNATION.rounds; round++) {
    const first = round % 2 === 0 ? gateway : versus;
    const passes = new Map<AlternationSide, AlternationPass | undefined>();
    passes.set(first, await once(first));
    const second = first === gateway ? versus : gateway;
    passes.set(second, await once(second));
    const g = passes.get(gateway);
    const v = passes.get(versus);
    if (g && v) rounds.push({ gateway: g, versus: v });
  }
  const shares = rounds.map((r) => r.gateway.rps / r.versus.rps);
  const each = rounds.map((r) => `${r.gateway.rps.toFixed(0)}/${r.versus.rps.toFixed(0)} req/s, ${r.gateway.cpuUsPerRequest.toFixed(0)}/${r.versus.cpuUsPerRequest.toFixed(0)} µs`);
  log(`${gateway.spec.title} against ${versus.spec.title}, alternating: ${shares.map((x) => `${(x * 100).toFixed(0)}%`).join(' ')} of its req/s (median ${rounds.length ? (median(shares) * 100).toFixed(0) : '–'}%; per round ${each.join('; ')})`);
  return { id, rounds, notes };
}

/**
 * A new Node process needs several seconds of load before it reaches its steady state (optimized code,
 * a grown heap: the first seconds ran at a quarter of the later rate). One pass over every case, so
 * that the first case measured is not the one that pays for it; the cases that take no tokens first, so
 * that the pool can mint alongside them for those that do.
 */
async function warmProcess(server: ServerProcess, cases: CaseSpec[], pool: TokenPool, mintAlongside: boolean): Promise<void> {
  const seconds = QUICK ? 1 : 2;
  let minted = 0;
  for (const spec of [...cases.filter((c) => !freshTokens(c)), ...cases.filter(freshTokens)]) {
    if (freshTokens(spec)) await mint(pool, 3000 * seconds);
    minted += (await unmeasuredPass(server, spec, seconds, pool, mintAlongside)).minted;
  }
  log(`warmed the ${server.name} process up (${seconds} s per case${minted > 0 ? `; ${minted} tokens minted alongside` : ''})`);
}

/**
 * A pass nothing is read from but its rate. When it takes no tokens and `mintAlongside` is set, the pool
 * mints for later cases while it runs (and has stopped when this returns).
 */
async function unmeasuredPass(server: ServerProcess, spec: CaseSpec, seconds: number, pool: TokenPool, mintAlongside: boolean): Promise<{ pass: PassResult; minted: number }> {
  const stopMinting = mintAlongside && !freshTokens(spec) ? pool.mintAlongside(ALONGSIDE_LIMIT) : undefined;
  let pass: PassResult;
  let minted = 0;
  try {
    pass = await runPass(server.url, spec.shape, { connections: TIMING.connections, durationSeconds: seconds });
  } finally {
    minted = (await stopMinting?.()) ?? 0;
  }
  return { pass, minted };
}

/**
 * Before a measured pass: a probe, then the warm-up. A case that takes tokens gets a first guess for the
 * warm-up and then what a full-speed pass at its warm-up rate (+25%) can use.
 */
async function warmUpCase(server: ServerProcess, spec: CaseSpec, pool: TokenPool, mintAlongside: boolean): Promise<{ warm: PassResult; minted: number; idleRss: number }> {
  if (freshTokens(spec)) await mint(pool, 4000 * TIMING.warmupSeconds);
  await probe(server, spec);
  const idleRss = server.rssBytes();
  const { pass: warm, minted } = await unmeasuredPass(server, spec, TIMING.warmupSeconds, pool, mintAlongside);
  if (freshTokens(spec)) await mint(pool, tokensFor(Math.max(warm.rps, 1000), TIMING.maxSeconds, 1.25));
  return { warm, minted, idleRss };
}

/** Tokens a pass of `seconds` at `rate` req/s can use, with `margin` for one that runs faster. */
function tokensFor(rate: number, seconds: number, margin: number): number {
  return Math.ceil(rate * margin * seconds) + 1000;
}

/** One case: a probe, a warm-up, a pass at full speed, then a pass at half that rate for latency. */
async function measureCase(server: ServerProcess, spec: CaseSpec, pool: TokenPool, redis: Redis, mintAlongside: boolean): Promise<CaseResult> {
  const notes: string[] = [];
  const { connections } = TIMING;
  // Other work on the machine skews every number; say how much there was.
  const background = await backgroundCpuShare();
  if (background > 0.1) notes.push(`other processes used ${(background * 100).toFixed(0)}% of the CPUs just before this case`);
  const { warm, minted, idleRss } = await warmUpCase(server, spec, pool, mintAlongside);
  if (warm.failures > 0) notes.push(`warm-up: ${warm.failures} failed requests (${JSON.stringify(warm.statusCodes)})`);

  const sampler = new RssSampler(server);
  const measured = await measuredPass(server, spec, TIMING.maxSeconds, pool, redis);
  const { pass: max, cpu } = measured;
  notes.push(...measured.notes);
  // Where the resident memory is, right after the full-speed pass (no collection forced): V8's heap, and
  // what lives outside it.
  const heap = await server.memoryUsage().catch(() => undefined);

  const halfRate = Math.max(1, Math.floor(max.rps / 2));
  if (freshTokens(spec)) await mint(pool, tokensFor(halfRate, TIMING.halfSeconds, 1.1));
  const reusedBefore = pool.reused;
  const half = await runPass(server.url, spec.shape, { connections, durationSeconds: TIMING.halfSeconds, overallRate: halfRate });
  const peakRssBytes = sampler.stop();
  notes.push(...passProblems('half-rate pass', half, pool.reused - reusedBefore));

  const perRequest = (seconds: number) => (max.requests === 0 ? 0 : (seconds * 1e6) / max.requests);
  const serverCpuUsPerRequest = perRequest(cpu.server.user + cpu.server.system);
  const serverSystemUsPerRequest = perRequest(cpu.server.system);
  const redisCpuUsPerRequest = cpu.redis === undefined || max.requests === 0 ? undefined : perRequest(cpu.redis);
  const result: CaseResult = { spec, max, half, halfRate, peakRssBytes, serverCpuUsPerRequest, serverSystemUsPerRequest, redisCpuUsPerRequest, notes };
  log(
    `${spec.title}: RSS ${mb(idleRss)} MB before, warm-up ${warm.rps.toFixed(0)} req/s${minted > 0 ? ` (${minted} tokens minted alongside)` : ''}; ${max.rps.toFixed(0)} req/s, p50 ${max.p50Ms} ms, p99 ${max.p99Ms} ms; at ${halfRate} req/s p99 ${half.p99Ms} ms; ` +
      `peak RSS ${mb(peakRssBytes)} MB${heap ? ` (after the full-speed pass: RSS ${mb(heap.rss)} MB, V8 heap ${mb(heap.heapUsed)} used of ${mb(heap.heapTotal)} MB, external ${mb(heap.external)} MB)` : ''}; ${serverCpuUsPerRequest.toFixed(0)} µs CPU/request (${serverSystemUsPerRequest.toFixed(0)} in the kernel)${notes.length ? `; ${notes.join('; ')}` : ''}`,
  );
  return result;
}

/** CPU seconds over a measured pass, by who spent them. */
interface CpuUse {
  /** Wall-clock seconds the pass took. */
  seconds: number;
  /** The server: its process and every process it started (a cluster's primary and workers), all threads. */
  server: { user: number; system: number };
  /** The same per server process (user + system), the server's own process (a cluster's primary) first. */
  serverByProcess: number[];
  /** Redis (`INFO cpu`), for the servers that use it. */
  redis: number | undefined;
  /** This process: autocannon, the load generator (the token pool's threads are idle during a measured pass). */
  loadGenerator: number;
  /** Every core of the machine, busy for anyone. */
  machine: number;
}

/** CPU time used so far, by part: for `cpuUse` (a later snapshot minus an earlier one). */
interface CpuSnapshot {
  at: number;
  server: Map<number, { user: number; system: number }>;
  redis: number | undefined;
  loadGenerator: NodeJS.CpuUsage;
  machine: number;
}

async function cpuSnapshot(server: ServerProcess, redis: Redis | undefined): Promise<CpuSnapshot> {
  // Sent first, answered after the synchronous reads below: all of them at about the same instant.
  const redisSeconds = redis ? redisCpuSeconds(redis) : undefined;
  const snapshot = { at: performance.now(), server: new Map(server.processTree().map((pid) => [pid, cpuTicks(pid)])), loadGenerator: process.cpuUsage(), machine: machineTicks().busy };
  return { ...snapshot, redis: await redisSeconds };
}

/** What each part used between two snapshots; a server process that started in between counts from zero. */
function cpuUse(before: CpuSnapshot, after: CpuSnapshot): CpuUse {
  const server = { user: 0, system: 0 };
  const serverByProcess: number[] = [];
  for (const [pid, ticks] of after.server) {
    const earlier = before.server.get(pid) ?? { user: 0, system: 0 };
    server.user += (ticks.user - earlier.user) / CLOCK_TICKS;
    server.system += (ticks.system - earlier.system) / CLOCK_TICKS;
    serverByProcess.push((ticks.user + ticks.system - earlier.user - earlier.system) / CLOCK_TICKS);
  }
  const loadGenerator = (after.loadGenerator.user + after.loadGenerator.system - before.loadGenerator.user - before.loadGenerator.system) / 1e6;
  return {
    seconds: (after.at - before.at) / 1000,
    server,
    redis: before.redis === undefined || after.redis === undefined ? undefined : after.redis - before.redis,
    loadGenerator,
    machine: (after.machine - before.machine) / CLOCK_TICKS,
    serverByProcess,
  };
}

/**
 * A full-speed pass of `seconds`, with the CPU each part used over it, and notes on what would make its
 * numbers wrong: failed requests, a token pool that ran dry, cache counters off the case's intent.
 */
async function measuredPass(server: ServerProcess, spec: CaseSpec, seconds: number, pool: TokenPool, redis: Redis): Promise<{ pass: PassResult; cpu: CpuUse; notes: string[] }> {
  const notes: string[] = [];
  const reusedBefore = pool.reused;
  const cacheBefore = server.name === 'gateway' ? await cacheCounts(server) : undefined;
  const before = await cpuSnapshot(server, usesRedis(spec) ? redis : undefined);
  const pass = await runPass(server.url, spec.shape, { connections: TIMING.connections, durationSeconds: seconds });
  const after = await cpuSnapshot(server, usesRedis(spec) ? redis : undefined);
  const cacheAfter = server.name === 'gateway' ? await cacheCounts(server) : undefined;
  notes.push(...passProblems('full-speed pass', pass, pool.reused - reusedBefore));
  const gone = [...before.server.keys()].filter((pid) => !after.server.has(pid));
  if (gone.length > 0) notes.push(`server process ${gone.join(', ')} exited during the pass (its CPU is not counted)`);
  if (cacheBefore && cacheAfter) {
    const hits = cacheAfter.hit - cacheBefore.hit;
    const misses = cacheAfter.miss - cacheBefore.miss;
    if (hits + misses > 0) notes.push(`credential cache: ${hits} hits, ${misses} misses`);
  }
  return { pass, cpu: cpuUse(before, after), notes };
}

/** Whether a case's server talks to Redis (the gateway and the floors), so that Redis's CPU belongs to its passes. */
function usesRedis(spec: CaseSpec): boolean {
  return spec.server === 'gateway' || spec.server === 'floor';
}

/** Notes on a pass whose numbers are not what they claim: failed requests, fresh-issuance tokens handed out twice. */
function passProblems(label: string, pass: PassResult, reused: number): string[] {
  return [
    ...(reused > 0 ? [`${label}: token pool ran dry, ${reused} requests repeated a subject`] : []),
    ...(pass.failures > 0 ? [`${label}: ${pass.failures} failed requests (${JSON.stringify(pass.statusCodes)})`] : []),
  ];
}

/** One side of the `workers` case: the gateway with one `workers` setting, in processes of its own. */
interface WorkersRun {
  setting: number | 'auto';
  /** What the gateway resolved the setting to (src/cluster.ts `workerCount`): 1 is one process, no cluster. */
  workers: number;
  /** Fresh issuance, then cache hits, each a full-speed pass with its CPU split. */
  passes: { spec: CaseSpec; pass: PassResult; cpu: CpuUse }[];
  /** Each process's own peak resident memory (VmHWM) at the end, the primary first. */
  peakRss: number[];
  notes: string[];
}

/** The `workers` case: how independent the cores were just before (see parallelScaling), and the two runs. */
interface WorkersComparison {
  scaling: number;
  runs: WorkersRun[];
}

/**
 * The `workers` case: the gateway of every other case (benchGatewayConfig; only `workers` differs) as one
 * process, then with `workers: auto`, each in new processes. Each run keeps its Redis keys under a prefix
 * of its own and reads nothing another process wrote, so, as for the floor, the first run takes the
 * pool's tokens again from the first; the second goes on where the first stopped, so that no token
 * reaches both runs.
 */
async function workersComparison(context: RunContext, mintAlongside: boolean): Promise<WorkersComparison> {
  const started = performance.now();
  const scaling = await parallelScaling(context.machine.cores, 500);
  log(`workers case: CPU-bound work on ${context.machine.cores} threads at once did ${scaling.toFixed(2)}× the work of one thread alone`);
  context.pool.rewind();
  const runs: WorkersRun[] = [];
  for (const setting of WORKERS_SETTINGS) runs.push(await workersRun(context, setting, mintAlongside));
  log(`workers case: ${((performance.now() - started) / 1000).toFixed(0)} s`);
  return { scaling, runs };
}

/**
 * One `workers` setting: a new gateway, warmed up by cache hits (which take no tokens: the pool may mint
 * alongside) and the fresh case's own warm-up, then fresh issuance at full speed and cache hits at full
 * speed (as long as a half-rate pass, to keep the case short; the process is warm by then). No half-rate
 * passes. Always stopped, however this ends.
 */
async function workersRun(context: RunContext, setting: number | 'auto', mintAlongside: boolean): Promise<WorkersRun> {
  const { pool, redis } = context;
  const notes: string[] = [];
  const background = await backgroundCpuShare();
  if (background > 0.1) notes.push(`other processes used ${(background * 100).toFixed(0)}% of the CPUs just before this run`);
  const expected = workerCount(setting);
  const server = await context.start('gateway', IMAGE_NODE_FLAGS, { workers: setting, redisPrefix: `${context.redisPrefix}workers-${setting}:` });
  try {
    // What the gateway made of the setting, which is what ran (it resolves "auto" itself, as stsgate serve does).
    const resolved = server.ready.workers;
    const workers = resolved?.count ?? expected;
    if (workers !== expected) {
      notes.push(`the gateway resolved workers: ${setting} to ${workers}, not ${expected} (it saw ${resolved?.availableParallelism} cores; its CPUs: ${cpusAllowed(server.pid)})`);
    }
    const processes = server.processTree().length;
    if (processes !== (workers > 1 ? workers + 1 : 1)) notes.push(`${processes} gateway processes for ${describeWorkers(workers)}`);
    const fresh = freshCase(pool);
    const cacheHit = cacheHitCase(context.repeatedToken);
    await probe(server, cacheHit);
    const { pass: cacheWarm, minted } = await unmeasuredPass(server, cacheHit, TIMING.warmupSeconds, pool, mintAlongside);
    const { warm } = await warmUpCase(server, fresh, pool, false);
    // A new process's warm-up rate says little of its later rate (a cluster's workers each warm up on a
    // share of the load; other work on the machine comes and goes), and a pool that runs dry would mean
    // cache hits in a fresh pass: enough tokens for the higher of every worker at the whole fresh warm-up
    // rate and the cache-hit warm-up rate (a fresh issuance costs more than a cache hit).
    await mint(pool, tokensFor(Math.max(warm.rps * workers, cacheWarm.rps), TIMING.maxSeconds, 1.25));
    if (warm.failures > 0) notes.push(`fresh warm-up: ${warm.failures} failed requests (${JSON.stringify(warm.statusCodes)})`);
    const passes: WorkersRun['passes'] = [];
    for (const [spec, seconds] of [
      [fresh, TIMING.maxSeconds],
      [cacheHit, TIMING.halfSeconds],
    ] as const) {
      const { pass, cpu, notes: passNotes } = await measuredPass(server, spec, seconds, pool, redis);
      notes.push(...passNotes.map((n) => `${spec.title}: ${n}`));
      passes.push({ spec, pass, cpu });
      const cores = (s: number | undefined) => ((s ?? 0) / cpu.seconds).toFixed(2);
      log(
        `workers: ${setting} (${describeWorkers(workers)}), ${spec.title}: ${pass.rps.toFixed(0)} req/s, p99 ${pass.p99Ms.toFixed(1)} ms; CPU in cores: ` +
          `gateway ${cores(cpu.server.user + cpu.server.system)}${cpu.serverByProcess.length > 1 ? ` (${cpu.serverByProcess.map(cores).join(' + ')})` : ''}, Redis ${cores(cpu.redis)}, load generator ${cores(cpu.loadGenerator)}, machine ${cores(cpu.machine)}`,
      );
    }
    const peakRss = server.processTree().map((pid) => memoryBytes(pid, 'VmHWM'));
    if (workers <= 1 && setting === 'auto') notes.push('workers: auto meant one process here: this run compares nothing');
    log(`workers: ${setting}: peak RSS ${peakRss.map(mb).join(' + ')} MB${minted > 0 ? ` (${minted} tokens minted alongside the warm-up)` : ''}${notes.length ? `; ${notes.join('; ')}` : ''}`);
    return { setting, workers, passes, peakRss, notes };
  } finally {
    await context.stop(server);
  }
}

function describeWorkers(workers: number): string {
  return workers > 1 ? `${workers} workers and their primary` : 'one process';
}

async function mint(pool: TokenPool, count: number): Promise<void> {
  const ms = await pool.ensure(count);
  if (ms > 0) log(`  minted tokens up to ${pool.remaining} unused (${(ms / 1000).toFixed(1)} s, outside the measured passes)`);
}

/** Sends one request the way the load generator will, and refuses to measure a wrong answer. */
async function probe(server: ServerProcess, spec: CaseSpec): Promise<void> {
  const { shape } = spec;
  const body = shape.nextBody ? shape.nextBody() : shape.body;
  const headers = { ...shape.headers };
  delete headers.host;
  const response = await fetch(`${server.url}${shape.path}`, { method: shape.method, headers, ...(body === undefined ? {} : { body }) });
  const text = await response.text();
  if (!spec.expect(response.status, text)) {
    throw new Error(`${spec.title}: the probe request got HTTP ${response.status}: ${text.slice(0, 500)}\n${server.stderrTail()}`);
  }
}

function baselineCase(): CaseSpec {
  return { id: 'baseline', title: 'baseline: bare Koa, fixed string', server: 'baseline', shape: { method: 'GET', path: '/' }, expect: (status, body) => status === 200 && body === 'ok' };
}

function peerCase(): CaseSpec {
  const auth = Buffer.from(`${PEER_CLIENT.id}:${PEER_CLIENT.secret}`).toString('base64');
  return {
    id: 'peer',
    title: 'peer: oidc-provider client_credentials',
    server: 'peer',
    shape: { method: 'POST', path: '/token', headers: { 'content-type': FORM, authorization: `Basic ${auth}` }, body: 'grant_type=client_credentials' },
    expect: (status, body) => status === 200 && body.includes('"access_token"'),
  };
}

interface GatewayFixtures {
  /** A token whose subject repeats (cache hits). */
  repeatedToken: string;
  /** An stsgate access token (introspection). */
  accessToken: string;
  /** A GetCallerIdentity request signed with stsgate-issued keys. */
  signedCallerIdentity: { headers: Record<string, string>; body: string };
}

/** Credentials the introspection and SigV4 cases need, issued through the gateway itself. */
async function gatewayFixtures(gateway: ServerProcess, issuer: TestIssuer, repeatedToken: string): Promise<GatewayFixtures> {
  const setupToken = await issuer.mint({ repository: 'acme/app', ref: 'refs/heads/main', actor: 'octocat', sub: 'repo:acme/app:bench-fixtures' }, { expiresIn: 3600 });
  const response = await fetch(`${gateway.url}/oauth2/token`, {
    method: 'POST',
    headers: { 'content-type': FORM },
    body: new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange', subject_token: setupToken, subject_token_type: 'urn:ietf:params:oauth:token-type:jwt', audience: 'deployer' }),
  });
  if (response.status !== 200) throw new Error(`fixture exchange failed: HTTP ${response.status} ${await response.text()}`);
  const issued = (await response.json()) as { access_token: string; aws_credentials: { AccessKeyId: string; SecretAccessKey: string; SessionToken: string } };

  // Signed once; SigV4 allows 15 minutes of clock skew, so autocannon can replay it for the whole run.
  const { host, port } = new URL(gateway.url);
  const signer = new SignatureV4({
    service: 'sts',
    region: 'us-east-1',
    sha256: Sha256,
    credentials: { accessKeyId: issued.aws_credentials.AccessKeyId, secretAccessKey: issued.aws_credentials.SecretAccessKey, sessionToken: issued.aws_credentials.SessionToken },
  });
  const body = `Action=GetCallerIdentity&Version=${STS_VERSION}`;
  const signed = await signer.sign({ method: 'POST', protocol: 'http:', hostname: '127.0.0.1', port: Number(port), path: '/', query: {}, headers: { host, 'content-type': `${FORM}; charset=utf-8` }, body });
  const headers = Object.fromEntries(Object.entries(signed.headers).map(([k, v]) => [k.toLowerCase(), String(v)]));
  return { repeatedToken, accessToken: issued.access_token, signedCallerIdentity: { headers, body } };
}

/**
 * The floors (bench/servers/floor.ts): the same requests as the fresh and cache-hit cases, answered by
 * bare Koa doing only the work neither can avoid. Their ratio to the baseline bounds what any
 * implementation in one process could reach on this machine.
 */
function floorCasesFor(repeatedToken: string, pool: TokenPool): CaseSpec[] {
  return [
    {
      id: FLOORS.fresh,
      title: "floor: bare Koa + RS256 verify + ES256 sign + one Redis write (fresh issuance's unavoidable work)",
      server: 'floor',
      shape: { method: 'POST', path: '/fresh', headers: { 'content-type': FORM }, nextBody: () => stsForm(pool.take()) },
      expect: (status, body) => status === 200 && body.includes('<SessionToken>eyJ'),
    },
    {
      id: REQUIRED.fresh,
      title: 'floor: the fresh floor with the features the gateway keeps (counts, checks, sealed record under two keys, audit line, metrics)',
      server: 'floor',
      shape: { method: 'POST', path: '/fresh-required', headers: { 'content-type': FORM }, nextBody: () => stsForm(pool.take()) },
      expect: (status, body) => status === 200 && body.includes('<SessionToken>') && body.includes('<AccessToken>eyJ'),
    },
    {
      id: REQUIRED.healthz,
      title: 'floor: bare Koa with the per-request features the gateway keeps (request id, headers, log line, count), GET /healthz',
      server: 'floor',
      shape: { method: 'GET', path: '/healthz' },
      expect: (status, body) => status === 200 && body === '{"status":"ok"}',
    },
    {
      id: FLOORS['cache-hit'],
      title: "floor: bare Koa + RS256 verify + one Redis read (cache hit's unavoidable work)",
      server: 'floor',
      shape: { method: 'POST', path: '/cache-hit', headers: { 'content-type': FORM }, body: stsForm(repeatedToken) },
      expect: (status, body) => status === 200 && body.includes('<SessionToken>'),
    },
    {
      id: REQUIRED['cache-hit'],
      title: 'floor: the cache-hit floor with the features the gateway keeps (counts, checks, the stored set opened, audit line, metrics)',
      server: 'floor',
      shape: { method: 'POST', path: '/cache-hit-required', headers: { 'content-type': FORM }, body: stsForm(repeatedToken) },
      expect: (status, body) => status === 200 && body.includes('<SessionToken>') && body.includes('<AccessToken>eyJ'),
    },
  ];
}

/** An issued set in AssumeRoleWithWebIdentity's XML answer. */
const issuedXml = (status: number, body: string) => status === 200 && body.includes('<AccessKeyId>ASIA');

/** The gateway's fresh-issuance case: a new subject on every request. */
function freshCase(pool: TokenPool): CaseSpec {
  return {
    id: 'fresh',
    title: 'AssumeRoleWithWebIdentity, fresh issuance',
    server: 'gateway',
    shape: freshRequest(pool),
    expect: issuedXml,
  };
}

/** The gateway's cache-hit case: one token, repeated. */
function cacheHitCase(repeatedToken: string): CaseSpec {
  return {
    id: 'cache-hit',
    title: 'AssumeRoleWithWebIdentity, cache hit',
    server: 'gateway',
    shape: cacheHitRequest(repeatedToken),
    expect: issuedXml,
  };
}

function gatewayCases(fixtures: GatewayFixtures, pool: TokenPool): CaseSpec[] {
  const exchange = (token: string) =>
    new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange', subject_token: token, subject_token_type: 'urn:ietf:params:oauth:token-type:jwt', audience: 'deployer' }).toString();
  return [
    {
      // Not a target: the gateway's own middleware (request id, access log, headers, routers) on its
      // cheapest route, to tell that part of every other case from the exchange itself.
      id: 'healthz',
      title: 'gateway GET /healthz (middleware floor)',
      server: 'gateway',
      shape: { method: 'GET', path: '/healthz' },
      expect: (status, body) => status === 200 && body.includes('"ok"'),
    },
    freshCase(pool),
    {
      // Issue 12: ten targets on a role must not slow the exchange. `fresh` asks for deployer, which lists
      // ten targets; this asks for reader, which lists none (and has the same session tags), in the same run.
      id: 'fresh-no-targets',
      title: 'AssumeRoleWithWebIdentity, fresh issuance, a role without targets',
      server: 'gateway',
      shape: { method: 'POST', path: '/', headers: { 'content-type': FORM }, nextBody: () => stsForm(pool.take(), BENCH_ROLE_ARN.replace(/deployer$/, 'reader')) },
      expect: issuedXml,
    },
    cacheHitCase(fixtures.repeatedToken),
    {
      // Issue 13: a cache hit on a brokered set (real AWS credentials, here from a stand-in) costs no more
      // than a native cache hit (compare with cache-hit: the same request, another RoleArn).
      id: 'broker-cache-hit',
      title: 'AssumeRoleWithWebIdentity for a broker target, cache hit',
      server: 'gateway',
      shape: { method: 'POST', path: '/', headers: { 'content-type': FORM }, body: stsForm(fixtures.repeatedToken, BENCH_BROKER_ROLE_ARN) },
      expect: issuedXml,
    },
    {
      id: 'rfc8693',
      title: 'RFC 8693 exchange (jwt subject token), fresh issuance',
      server: 'gateway',
      shape: { method: 'POST', path: '/oauth2/token', headers: { 'content-type': FORM }, nextBody: () => exchange(pool.take()) },
      expect: (status, body) => status === 200 && body.includes('"access_token"'),
    },
    {
      // Issue 12: minting a target token costs no more than a fresh issuance (compare with rfc8693).
      id: 'target',
      title: 'RFC 8693 for an aws target token (jwt subject token, fresh)',
      server: 'gateway',
      shape: {
        method: 'POST',
        path: '/oauth2/token',
        headers: { 'content-type': FORM },
        nextBody: () =>
          new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange', subject_token: pool.take(), subject_token_type: 'urn:ietf:params:oauth:token-type:jwt', requested_token_type: 'urn:ietf:params:oauth:token-type:id_token', audience: BENCH_TARGET }).toString(),
      },
      expect: (status, body) => status === 200 && body.includes('"token_type":"N_A"'),
    },
    {
      id: 'introspect',
      title: 'RFC 7662 introspection',
      server: 'gateway',
      shape: { method: 'POST', path: '/oauth2/introspect', headers: { 'content-type': FORM }, body: new URLSearchParams({ token: fixtures.accessToken }).toString() },
      expect: (status, body) => status === 200 && body.includes('"active":true'),
    },
    {
      id: 'sigv4',
      title: 'GetCallerIdentity, SigV4',
      server: 'gateway',
      shape: { method: 'POST', path: '/', headers: fixtures.signedCallerIdentity.headers, body: fixtures.signedCallerIdentity.body },
      expect: (status, body) => status === 200 && body.includes('<GetCallerIdentityResult>'),
    },
  ];
}

/** CPU profiles of the two exchange paths, each in a gateway process of its own. */
async function profileRun(context: RunContext & { dir: string }): Promise<void> {
  const { start, stop, pool, redis, dir } = context;
  const sections: string[] = [];
  for (const id of ['fresh', 'cache-hit', 'healthz'] as const) {
    const profileDir = join(dir, `profile-${id}`);
    const gateway = await start('gateway', [...IMAGE_NODE_FLAGS, '--cpu-prof', `--cpu-prof-dir=${profileDir}`]);
    const fixtures = await gatewayFixtures(gateway, context.issuer, context.repeatedToken);
    const spec = gatewayCases(fixtures, pool).find((c) => c.id === id)!;
    await warmProcess(gateway, [spec], pool, false);
    await warmUpCase(gateway, spec, pool, false);
    const cpuBefore = cpuTicks(gateway.pid);
    const redisBefore = await redisCpuSeconds(redis);
    const fromUs = monotonicUs();
    const pass = await runPass(gateway.url, spec.shape, { connections: TIMING.connections, durationSeconds: TIMING.maxSeconds });
    const toUs = monotonicUs();
    const cpuAfter = cpuTicks(gateway.pid);
    const cpuUs = ((cpuAfter.user + cpuAfter.system - cpuBefore.user - cpuBefore.system) / CLOCK_TICKS) * 1e6;
    const systemUs = ((cpuAfter.system - cpuBefore.system) / CLOCK_TICKS) * 1e6;
    const redisUs = ((await redisCpuSeconds(redis)) - redisBefore) * 1e6;
    await stop(gateway);
    const file = (await readdir(profileDir)).find((f) => f.endsWith('.cpuprofile'));
    if (!file) throw new Error(`no profile was written for ${id}`);
    const text = await readFile(join(profileDir, file), 'utf8');
    // Kept for a closer look (Chrome DevTools or speedscope open it); not part of the repository.
    const kept = join(tmpdir(), `stsgate-${id}.cpuprofile`);
    await writeFile(kept, text);
    log(`profile kept at ${kept} (measured window ${fromUs}..${toUs} µs)`);
    const summary = summarizeProfile(JSON.parse(text) as CpuProfile, { fromUs, toUs });
    log(`${spec.title}: ${pass.rps.toFixed(0)} req/s under the profiler; ${(cpuUs / pass.requests).toFixed(0)} µs CPU/request`);
    sections.push(renderProfile(spec.title, pass, cpuUs / pass.requests, systemUs / pass.requests, redisUs / pass.requests, summary));
  }
  const crypto = await measureCryptoInOwnProcess();
  const text = [
    '# Where the time goes: CPU profiles of the exchange paths',
    '',
    `Generated by \`npm run bench -- --profile\` on ${describe(context.machine)}.`,
    `Each path ran in its own gateway process started with \`node --cpu-prof\`: ${TIMING.warmupSeconds} s warm-up, then ${TIMING.maxSeconds} s at full speed (${TIMING.connections} connections); only the samples of that full-speed pass are counted.`,
    '"CPU/request" is the gateway process\'s user+system CPU (all threads, from /proc) divided by the requests answered; V8\'s profile samples the main thread only.',
    '',
    ...sections,
    '## `jose` against `node:crypto`',
    '',
    renderCrypto(crypto),
  ].join('\n');
  await writeFile(QUICK ? join(tmpdir(), 'stsgate-bench-PROFILE.quick.md') : join(BENCH_DIR, 'PROFILE.md'), text);
  console.log(`\n${text}`);
}

function renderProfile(title: string, pass: PassResult, cpuUsPerRequest: number, systemUsPerRequest: number, redisUsPerRequest: number, summary: ProfileSummary): string {
  const pct = (share: number) => `${(share * 100).toFixed(1)}%`;
  const lines = [
    `## ${title}`,
    '',
    `${pass.rps.toFixed(0)} req/s under the profiler, ${cpuUsPerRequest.toFixed(0)} µs of gateway CPU (${systemUsPerRequest.toFixed(0)} of it in the kernel) and ${redisUsPerRequest.toFixed(0)} µs of Redis CPU per request; ` +
      `main thread busy ${summary.busyMs.toFixed(0)} of ${summary.totalMs.toFixed(0)} ms sampled (${pct(summary.busyMs / summary.totalMs)}).`,
    '',
    '### Self time by origin',
    '',
    '| origin | ms | share of busy |',
    '| --- | ---: | ---: |',
    ...summary.byGroup.slice(0, 15).map((g) => `| ${g.group} | ${g.ms.toFixed(0)} | ${pct(g.share)} |`),
    '',
    '### Top functions by self time',
    '',
    '| function | where | ms | share |',
    '| --- | --- | ---: | ---: |',
    ...summary.bySelf.slice(0, 25).map((f) => `| \`${f.name}\` | ${f.where || f.group} | ${f.ms.toFixed(0)} | ${pct(f.share)} |`),
    '',
    '### Top functions by inclusive time',
    '',
    '| function | where | ms | share |',
    '| --- | --- | ---: | ---: |',
    ...summary.byInclusive.slice(0, 25).map((f) => `| \`${f.name}\` | ${f.where || f.group} | ${f.ms.toFixed(0)} | ${pct(f.share)} |`),
    '',
  ];
  return lines.join('\n');
}

function renderCrypto(rows: CryptoMeasurement[]): string {
  return [
    '| operation | library | µs/op, one at a time | ops/s, 64 in flight | CPU µs/op (all threads) |',
    '| --- | --- | ---: | ---: | ---: |',
    ...rows.map((r) => `| ${r.operation} | ${r.library} | ${r.sequentialUs.toFixed(1)} | ${r.concurrentOpsPerSecond.toFixed(0)} | ${r.cpuUs.toFixed(1)} |`),
    '',
  ].join('\n');
}

function renderReport(
  machine: Machine,
  results: CaseResult[],
  rules: { size: number; perEvaluationUs: number; compileMs: number }[],
  gatewayPeakRss: number,
  baselinePasses: { start: number; end: number },
  workers: WorkersComparison | undefined,
  alternations: readonly Alternation[],
): string {
  const baseline = results.find((r) => r.spec.id === 'baseline')!;
  const ratio = (r: CaseResult) => r.max.rps / baseline.max.rps;
  const rows = results.map((r) =>
    [
      r.spec.title,
      r.max.rps.toFixed(0),
      r === baseline ? '1.00' : ratio(r).toFixed(2),
      r.max.p50Ms.toFixed(1),
      r.max.p99Ms.toFixed(1),
      `${r.half.p99Ms.toFixed(1)} (at ${r.halfRate}/s)`,
      mb(r.peakRssBytes),
      `${r.serverCpuUsPerRequest.toFixed(0)} (${r.serverSystemUsPerRequest.toFixed(0)})`,
      r.redisCpuUsPerRequest === undefined ? '–' : r.redisCpuUsPerRequest.toFixed(0),
    ].join(' | '),
  );
  const byId = (id: string) => results.find((r) => r.spec.id === id);
  const fresh = byId('fresh');
  const peer = byId('peer');
  const worstHalfP99 = Math.max(...results.filter((r) => r.spec.server === 'gateway').map((r) => r.half.p99Ms));
  const worstRule = Math.max(...rules.map((r) => r.perEvaluationUs));
  const check = (ok: boolean) => (ok ? 'met' : '**not met**');
  const pct = (share: number) => `${(share * 100).toFixed(0)}%`;
  /** A ratio target, with the floor of the same work (measured in this run) beside the gateway's ratio. */
  const healthz = byId('healthz');
  /**
   * A ratio target, with the floor of the same work (measured in this run) beside the gateway's ratio.
   * `floorIsBound: false` when the gateway skips part of the floor's work (a cache hit on a token seen
   * before skips the signature check the floor does): then the floor bounds nothing, and the gateway's
   * own empty route (/healthz: request id, access log, metrics, security headers) is shown as the bound.
   */
  const ratioTarget = (name: string, id: keyof typeof FLOORS, target: number, floorIsBound = true) => {
    const measured = byId(id);
    const floor = byId(FLOORS[id]);
    if (!measured && !floor) return undefined;
    const bound = floorIsBound ? floor : healthz;
    const shown =
      `${measured ? pct(ratio(measured)) : 'gateway not measured'}${floor ? ` (floor ${pct(ratio(floor))})` : ''}` +
      `${!floorIsBound && healthz ? ` (gateway /healthz ${pct(ratio(healthz))})` : ''}`;
    const met = measured !== undefined && ratio(measured) >= target;
    if (met || !bound) return `| ${name} | ${shown} | ${check(met)} |`;
    const what = floorIsBound ? 'the floor' : "the gateway's empty route (/healthz)";
    const reach = ratio(bound) >= target ? `reachable in principle: ${what} reaches it` : `${what} itself is below the target`;
    return `| ${name} | ${shown} | ${measured ? `**not met; ${reach}**` : reach} |`;
  };
  const freshFloor = byId(FLOORS.fresh);
  const peerTarget = () => {
    if (!fresh || !peer) return undefined;
    const met = fresh.max.rps > peer.max.rps;
    const floorNote = freshFloor ? ` (floor ${freshFloor.max.rps.toFixed(0)})` : '';
    const verdict = met || !freshFloor ? check(met) : `**not met; ${freshFloor.max.rps > peer.max.rps ? 'reachable in principle: the floor is ahead of the peer' : 'the floor itself is behind the peer'}**`;
    return `| fresh issuance ahead of the oidc-provider peer | ${fresh.max.rps.toFixed(0)} vs ${peer.max.rps.toFixed(0)} req/s${floorNote} | ${verdict} |`;
  };
  const againstFloor = (label: string, id: keyof typeof FLOORS) => {
    const measured = byId(id);
    const floor = byId(FLOORS[id]);
    if (!measured || !floor) return undefined;
    return (
      `- ${label}: gateway at ${pct(measured.max.rps / floor.max.rps)} of the floor ` +
      `(${measured.max.rps.toFixed(0)} vs ${floor.max.rps.toFixed(0)} req/s; ${measured.serverCpuUsPerRequest.toFixed(0)} vs ${floor.serverCpuUsPerRequest.toFixed(0)} µs server CPU per request)`
    );
  };
  const floorLines = [againstFloor('fresh issuance', 'fresh'), againstFloor('cache hit', 'cache-hit')].filter(Boolean);
  const targets = [
    ratioTarget('fresh issuance ≥ 25% of baseline', 'fresh', 0.25),
    ratioTarget('cache hit ≥ 50% of baseline', 'cache-hit', 0.5, false),
    `| p99 ≤ 15 ms at half of max rate (worst gateway case) | ${worstHalfP99.toFixed(1)} ms | ${check(worstHalfP99 <= 15)} |`,
    `| gateway peak RSS ≤ 200 MB (VmHWM over the run) | ${mb(gatewayPeakRss)} MB | ${check(gatewayPeakRss <= 200 * 1024 * 1024)} |`,
    `| 10,000 rules ≤ 50 µs per evaluation | ${worstRule.toFixed(2)} µs (worst size) | ${check(worstRule <= 50)} |`,
    peerTarget(),
  ].filter(Boolean);
  const floorTargets = issue17Targets(byId, healthz, gatewayPeakRss, workers, alternations, check, pct);
  const notes = [...results.flatMap((r) => r.notes.map((n) => `- ${r.spec.title}: ${n}`)), ...alternations.flatMap((a) => a.notes.map((n) => `- ${n}`))];
  return [
    '# stsgate benchmark results',
    '',
    `Machine: ${describe(machine)}.`,
    `Method: each server in its own process (the gateway with the image's Node flags: \`node ${IMAGE_NODE_FLAGS.join(' ')}\`); autocannon in the orchestrating process, ${TIMING.connections} connections, ` +
      `${TIMING.warmupSeconds} s warm-up, ${TIMING.maxSeconds} s at full speed, then ${TIMING.halfSeconds} s at half the measured rate (\`overallRate\`). ` +
      'Latency in ms; "× baseline" is req/s over the bare-Koa baseline measured in the same run: ' +
      `the higher of two passes, at the start (${baselinePasses.start.toFixed(0)} req/s) and at the end (${baselinePasses.end.toFixed(0)} req/s), whose row the table shows. Peak RSS: ` +
      'largest VmRSS of the server process sampled every 50 ms during the case. ' +
      'CPU/request: the server process\'s user+system CPU over the full-speed pass (all threads), and Redis\'s (`INFO cpu`), divided by the requests answered. ' +
      'Fresh-issuance cases send a pre-minted RS256 token with a new subject on every request (GitHub-Actions-sized claims; each server process sees a token once), ' +
      'minted before a measured pass or alongside the warm-up of a case that sends none, never during a measured pass; the cache-hit case repeats one subject. ' +
      'Run order: the baseline, the gateway cases with each floor right after the gateway case of the same work, the alternating rounds of the ratio targets, the workers case, the peer, the baseline again.',
    '',
    '| case | req/s | × baseline | p50 | p99 | p99 at ½ max | peak RSS MB | server CPU µs/req (kernel) | Redis CPU µs/req |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...rows.map((row) => `| ${row} |`),
    '',
    '## Targets against the floors (issue 17)',
    '',
    'Each gateway case against the floor of the same work (or bare Koa), measured in this run. ' +
      (alternations.length > 0
        ? `The req/s and Redis ratios are the median of ${ALTERNATION.rounds} rounds in which, after the table's passes, the two processes (both warm) were loaded in turn for ${ALTERNATION.seconds} s each, the order swapped every round (the range of the rounds in brackets); ` +
          "the table's single passes, a minute or more apart, follow. p99 and RSS are the table's."
        : ''),
    '',
    '| target | measured | |',
    '| --- | --- | --- |',
    ...floorTargets,
    '',
    '## Targets (issue 5)',
    '',
    '| target | measured | |',
    '| --- | --- | --- |',
    ...targets,
    '',
    ...(results.some((r) => r.spec.server === 'floor')
      ? [
          'A floor is bare Koa doing only the work its case cannot avoid, on the same request (`bench/servers/floor.ts`): ' +
            'its ratio to the baseline is the most one server process doing that work reached on this machine in this run. ' +
            'The cache-hit floor checks the RS256 signature on every request; the gateway checks a signature once per token and key ' +
            '(src/jwt/compact-jwt.ts), so on the repeated token of the cache-hit case it does less than that floor, and its own empty ' +
            'route (/healthz) is the bound shown for that target.',
          '',
          ...(floorLines.length ? [...floorLines, ''] : []),
        ]
      : []),
    ...(workers ? [renderWorkers(machine, workers), ''] : []),
    '## Rules micro-benchmark',
    '',
    '| rules | µs per evaluation | compile ms |',
    '| ---: | ---: | ---: |',
    ...rules.map((r) => `| ${r.size.toLocaleString('en-US')} | ${r.perEvaluationUs.toFixed(2)} | ${r.compileMs.toFixed(1)} |`),
    '',
    ...(notes.length ? ['## Notes', '', ...notes, ''] : []),
  ].join('\n');
}

/**
 * Issue 17's targets, each against its floor in this run: fresh issuance and cache hit against the floor
 * of the same work, /healthz against bare Koa, Redis CPU per fresh issuance, the whole run's peak RSS, p99
 * at half rate, and whether `workers: auto` was measured. A target whose cases did not run says so.
 */
function issue17Targets(
  byId: (id: string) => CaseResult | undefined,
  healthz: CaseResult | undefined,
  gatewayPeakRss: number,
  workers: WorkersComparison | undefined,
  alternations: readonly Alternation[],
  check: (ok: boolean) => string,
  pct: (share: number) => string,
): string[] {
  const alternated = (id: string) => alternations.find((a) => a.id === id && a.rounds.length > 0);
  /** The median of a per-round ratio, with the rounds' range: `62% (55-68%)` or `2.1× (1.9-2.4×)`. */
  const roundsOf = (alternation: Alternation, ratio: (round: Alternation['rounds'][number]) => number | undefined, shown: (x: number) => string) => {
    const values = alternation.rounds.map(ratio).filter((x): x is number => x !== undefined);
    if (values.length === 0) return undefined;
    return { value: median(values), text: `${shown(median(values))} (${shown(Math.min(...values))} to ${shown(Math.max(...values))})` };
  };
  const notRun = (name: string) => `| ${name} | not measured in this run | |`;
  const fresh = byId('fresh');
  const cacheHit = byId('cache-hit');
  const freshFloor = byId(FLOORS.fresh);
  const cacheFloor = byId(FLOORS['cache-hit']);
  const baseline = byId('baseline');
  /** A req/s share of `floor`: alternating if measured so, else the single passes; with the share the floor with the required features (`required`) reached, the bound of the target. */
  const shareOf = (measured: CaseResult, floor: CaseResult, floorName: string) => {
    const single = measured.max.rps / floor.max.rps;
    const singleText = `${pct(single)}: ${measured.max.rps.toFixed(0)} vs ${floorName} ${floor.max.rps.toFixed(0)} req/s (CPU ${measured.serverCpuUsPerRequest.toFixed(0)} vs ${floor.serverCpuUsPerRequest.toFixed(0)} µs per request)`;
    const alternation = alternated(measured.spec.id);
    const rounds = alternation && roundsOf(alternation, (r) => r.gateway.rps / r.versus.rps, pct);
    if (!alternation || !rounds) return { value: single, text: singleText };
    const cpu = roundsOf(alternation, (r) => r.gateway.cpuUsPerRequest / r.versus.cpuUsPerRequest, (x) => `${x.toFixed(2)}×`);
    return { value: rounds.value, text: `${rounds.text} alternating${cpu ? `, CPU per request ${cpu.text} ${floorName}'s` : ''}; single passes ${singleText}` };
  };
  const rpsShare = (name: string, gateway: CaseResult | undefined, floor: CaseResult | undefined, target: number, floorName: string, required?: CaseResult) => {
    if (!gateway || !floor) return notRun(name);
    const share = shareOf(gateway, floor, floorName);
    if (share.value >= target || !required) return `| ${name} | ${share.text} | ${check(share.value >= target)} |`;
    const bound = shareOf(required, floor, floorName);
    const reach = bound.value >= target ? 'the floor with the features the gateway keeps reaches it' : 'the floor with the features the gateway keeps does not reach it either';
    return `| ${name} | ${share.text}. The floor with the features the gateway keeps: ${bound.text} | **not met; ${reach}** |`;
  };
  const redis = (() => {
    const name = 'Redis CPU per fresh issuance ≤ 1.5× the fresh floor\'s';
    if (fresh?.redisCpuUsPerRequest === undefined || freshFloor?.redisCpuUsPerRequest === undefined) return notRun(name);
    const single = fresh.redisCpuUsPerRequest / freshFloor.redisCpuUsPerRequest;
    const singleText = `${single.toFixed(1)}×: ${fresh.redisCpuUsPerRequest.toFixed(0)} vs ${freshFloor.redisCpuUsPerRequest.toFixed(0)} µs`;
    const redisRounds = (id: string) => {
      const alternation = alternated(id);
      return alternation && roundsOf(alternation, (r) => (r.gateway.redisUsPerRequest === undefined || !r.versus.redisUsPerRequest ? undefined : r.gateway.redisUsPerRequest / r.versus.redisUsPerRequest), (x) => `${x.toFixed(1)}×`);
    };
    const rounds = redisRounds('fresh');
    const value = rounds ? rounds.value : single;
    const text = rounds ? `${rounds.text} alternating; single passes ${singleText}` : singleText;
    const required = redisRounds(REQUIRED.fresh);
    if (value <= 1.5 || !required) return `| ${name} | ${text} | ${check(value <= 1.5)} |`;
    const reach = required.value <= 1.5 ? 'the floor with the features the gateway keeps stays within it' : 'the floor with the features the gateway keeps is above it too';
    return `| ${name} | ${text}. The floor with the features the gateway keeps: ${required.text} alternating | **not met; ${reach}** |`;
  })();
  const p99 = (label: string, gateway: CaseResult | undefined, floor: CaseResult | undefined, required: CaseResult | undefined) => {
    const name = `${label}: p99 at half of its maximum rate ≤ 1.5× the floor's`;
    if (!gateway || !floor) return notRun(name);
    const of = (r: CaseResult) => `${(r.half.p99Ms / floor.half.p99Ms).toFixed(2)}×: ${r.half.p99Ms.toFixed(1)} ms at ${r.halfRate.toFixed(0)}/s`;
    const times = gateway.half.p99Ms / floor.half.p99Ms;
    const measured = `${of(gateway)} vs ${floor.half.p99Ms.toFixed(1)} ms at ${floor.halfRate.toFixed(0)}/s`;
    if (times <= 1.5 || !required) return `| ${name} | ${measured} | ${check(times <= 1.5)} |`;
    const bound = required.half.p99Ms / floor.half.p99Ms;
    const reach = bound <= 1.5 ? 'the floor with the features the gateway keeps stays within it' : 'the floor with the features the gateway keeps is above it too';
    return `| ${name} | ${measured}. The floor with the features the gateway keeps: ${of(required)} | **not met; ${reach}** |`;
  };
  const workersLine = (() => {
    const name = '`workers: auto` measured: 2 workers against 1';
    const [one, several] = workers?.runs ?? [];
    if (!one || !several) return notRun(name);
    const ratios = one.passes.map(({ spec, pass }) => {
      const other = several.passes.find((p) => p.spec.id === spec.id)?.pass.rps ?? 0;
      return `${spec.id} ${(other / pass.rps).toFixed(2)}×`;
    });
    return `| ${name} | ${ratios.join(', ')} (the workers section below: the CPU split) | measured |`;
  })();
  return [
    rpsShare('fresh issuance ≥ 70% of the fresh floor\'s req/s', fresh, freshFloor, 0.7, 'floor', byId(REQUIRED.fresh)),
    rpsShare('cache hit ≥ 100% of the cache-hit floor\'s req/s', cacheHit, cacheFloor, 1, 'floor', byId(REQUIRED['cache-hit'])),
    rpsShare('/healthz ≥ 70% of bare Koa\'s req/s', healthz, baseline, 0.7, 'bare Koa', byId(REQUIRED.healthz)),
    redis,
    `| gateway peak RSS ≤ 128 MB over the whole run | ${mb(gatewayPeakRss)} MB | ${check(gatewayPeakRss <= 128 * 1024 * 1024)} |`,
    p99('fresh issuance', fresh, freshFloor, byId(REQUIRED.fresh)),
    p99('cache hit', cacheHit, cacheFloor, byId(REQUIRED['cache-hit'])),
    workersLine,
  ];
}

/** The `workers` section: req/s, latency and how the machine's cores were split, one process against `workers: auto`. */
function renderWorkers(machine: Machine, { scaling, runs }: WorkersComparison): string {
  const shown = (run: WorkersRun) => (run.setting === 'auto' ? `auto (${describeWorkers(run.workers)})` : `${run.setting} (${describeWorkers(run.workers)})`);
  const ids = runs[0]?.passes.map((p) => p.spec.id) ?? [];
  const rows = ids.flatMap((id) =>
    runs.map((run) => {
      const { spec, pass, cpu } = run.passes.find((p) => p.spec.id === id)!;
      const server = cpu.server.user + cpu.server.system;
      const redis = cpu.redis ?? 0;
      const other = Math.max(0, cpu.machine - server - redis - cpu.loadGenerator);
      const cores = (seconds: number) => `${(seconds / cpu.seconds).toFixed(2)} (${((seconds / cpu.seconds / machine.cores) * 100).toFixed(0)}%)`;
      const perRequest = pass.requests === 0 ? 0 : (server * 1e6) / pass.requests;
      const byProcess = cpu.serverByProcess.length > 1 ? cpu.serverByProcess.map((seconds) => (seconds / cpu.seconds).toFixed(2)).join(' + ') : '–';
      return `| ${spec.title} | ${shown(run)} | ${pass.rps.toFixed(0)} | ${pass.p50Ms.toFixed(1)} | ${pass.p99Ms.toFixed(1)} | ${cores(server)} | ${byProcess} | ${cores(redis)} | ${cores(cpu.loadGenerator)} | ${cores(other)} | ${perRequest.toFixed(0)} |`;
    }),
  );
  const [one, several] = runs;
  const ratios =
    one && several
      ? ids.map((id) => {
          const rps = (run: WorkersRun) => run.passes.find((p) => p.spec.id === id)!.pass.rps;
          return `${one.passes.find((p) => p.spec.id === id)!.spec.title}: ${(rps(several) / rps(one)).toFixed(2)}× (${rps(several).toFixed(0)} / ${rps(one).toFixed(0)} req/s)`;
        })
      : [];
  const rss = (run: WorkersRun) =>
    run.peakRss.length > 1 ? `${mb(run.peakRss.reduce((a, b) => a + b, 0))} MB (primary ${mb(run.peakRss[0]!)} + workers ${run.peakRss.slice(1).map(mb).join(' + ')})` : `${mb(run.peakRss[0] ?? 0)} MB`;
  const notes = runs.flatMap((run) => run.notes.map((n) => `- workers ${run.setting}: ${n}`));
  return [
    '## workers: auto against one process (issue 17)',
    '',
    `The gateway of the other cases (same configuration; only \`workers\` differs) as one process (\`workers: 1\`), then with \`workers: auto\` ` +
      '(src/cluster.ts: node:cluster, the workers share the ports), each in new processes with Redis keys of their own, one after the other: ' +
      `warm-ups of ${TIMING.warmupSeconds} s of cache hits and ${TIMING.warmupSeconds} s of fresh issuance, then fresh issuance for ${TIMING.maxSeconds} s and cache hits for ${TIMING.halfSeconds} s at full speed ` +
      `(${TIMING.connections} connections; no half-rate pass). Fresh-issuance tokens are new to each run: no token reaches both. ` +
      `autocannon, Redis and the gateway share the machine's ${machine.cores} cores; the CPU columns say how they split them over each measured pass, in cores ` +
      `(CPU seconds per second; in parentheses, the share of all ${machine.cores}): the gateway is the user+system time of the primary and every worker ` +
      '(`/proc/<pid>/stat`), Redis its `INFO cpu`, the load generator the orchestrating process (`process.cpuUsage()`), other the rest of the machine\'s busy time (`/proc/stat`).',
    '',
    '| case | workers | req/s | p50 | p99 | gateway CPU | primary + each worker | Redis CPU | load generator CPU | other CPU | gateway CPU µs/req |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...rows,
    '',
    ...(ratios.length ? [`req/s with workers: auto over one process: ${ratios.join('; ')}.`, ''] : []),
    `How independent the cores were, just before: CPU-bound work (SHA-256) on ${machine.cores} threads at once did ${scaling.toFixed(2)}× the work of one thread alone ` +
      `(${machine.cores.toFixed(2)}× on ${machine.cores} independent idle cores). Workers gain at most that, less the share of the cores Redis and the load generator take.`,
    '',
    `Peak RSS (each process's own VmHWM; a sum bounds the processes' peak together from above): ${runs.map((run) => `${shown(run)} ${rss(run)}`).join('; ')}.`,
    ...(notes.length ? ['', ...notes] : []),
  ].join('\n');
}

async function describeMachine(redis: Redis): Promise<Machine> {
  const info = await redis.info('server');
  return {
    cores: availableParallelism(),
    cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
    node: process.version,
    kernel: `Linux ${release()}`,
    redis: /redis_version:(\S+)/.exec(info)?.[1] ?? 'unknown',
    date: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'),
    loadAverage: loadavg()[0] ?? 0,
  };
}

function describe(machine: Machine): string {
  return `${machine.cores} cores (${machine.cpuModel}), Node ${machine.node}, ${machine.kernel}, Redis ${machine.redis} on loopback, ${machine.date}, load average ${machine.loadAverage.toFixed(1)} at the start`;
}

/** The gateway's credential-cache counters from /metrics. */
async function cacheCounts(server: ServerProcess): Promise<{ hit: number; miss: number }> {
  const text = await (await fetch(`${server.adminUrl}/metrics`)).text();
  const count = (result: string) => Number(new RegExp(`^stsgate_credential_cache_total\\{result="${result}"\\} (\\d+)`, 'm').exec(text)?.[1] ?? 0);
  return { hit: count('hit'), miss: count('miss') };
}

/** Redis's own CPU use so far, in seconds (user + system). */
/**
 * The share of all CPUs busy over `ms` while this run is idle between cases (/proc/stat): other users'
 * work, which competes with the servers and the load generator for the same cores.
 */
async function backgroundCpuShare(ms = 500): Promise<number> {
  const before = machineTicks();
  await new Promise((resolve) => setTimeout(resolve, ms));
  const after = machineTicks();
  const total = after.total - before.total;
  return total <= 0 ? 0 : (after.busy - before.busy) / total;
}

/** Deletes the run's keys (bounded: at most 10,000 SCAN rounds). */
/** Runs bench/crypto.ts in a process of its own (none of this run's heap or timers in its numbers). */
async function measureCryptoInOwnProcess(): Promise<CryptoMeasurement[]> {
  const { stdout } = await execFileAsync(process.execPath, ['--import', 'tsx', join(BENCH_DIR, 'crypto.ts'), '--json'], { timeout: 120_000 });
  return JSON.parse(stdout) as CryptoMeasurement[];
}

/** Microseconds on the monotonic clock V8's CPU profiles are stamped with. */
function monotonicUs(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

function mb(bytes: number): string {
  return (bytes / (1024 * 1024)).toFixed(0);
}

function log(message: string): void {
  console.error(`[bench] ${message}`);
}

await main();
