/**
 * SIGTERM during a burst of requests, against a real `stsgate serve` process (alone, and as the primary of
 * two workers): every request that was accepted gets a complete response, /readyz fails before the port
 * closes, a request still arriving when the port closes is finished within the grace period, and the
 * process exits 0 in time.
 */
import { Agent, request } from 'node:http';
import { beforeAll, describe, expect, it } from 'vitest';
import { REDIS_URL } from '../support/gateway.js';
import {
  acceptQueueLength,
  allOutput,
  expectNoSecretsInOutput,
  readyz,
  startGatewayProcess,
  testPrefix,
  useProcessTestSetup,
  writeGatewayConfig,
  type GatewayProcess,
} from '../support/gateway-process.js';
import { ACCOUNT_ID, sleep } from '../support/common.js';

const DELAY_SECONDS = 1;
const GRACE_SECONDS = 5;
const BURST = 200;
/** SIGTERM goes out once this many burst responses have arrived (and every connection is accepted): mid-burst. */
const SIGTERM_AFTER = 50;

/** What became of one request: a complete response, or the error the client saw. */
type Outcome = { kind: 'sts' | 'readyz'; status?: number; body?: string; error?: string; at: number };

describe.each([{ workers: 1 }, { workers: 2 }])('SIGTERM during a burst of requests (workers: $workers)', ({ workers }) => {
  const setup = useProcessTestSetup('shutdown');
  const { ledger } = setup;
  let gateway: GatewayProcess;
  let configFile: Awaited<ReturnType<typeof writeGatewayConfig>>;

  beforeAll(async () => {
    configFile = await writeGatewayConfig(setup.dir, {
      keys: setup.keys,
      issuer: setup.issuer,
      store: { url: REDIS_URL, prefix: testPrefix() },
      workers,
      shutdown: { delay_seconds: DELAY_SECONDS, grace_seconds: GRACE_SECONDS },
    });
  });

  // Each attempt starts its own process. A retry, because this test measures a race against the kernel
  // and the scheduler on two cores shared with the rest of the suite (see afterAccepted below); a
  // failure of the gateway's own shutdown fails every attempt.
  it('answers every accepted request completely, fails /readyz first, finishes a late request, exits 0 within the grace period', { timeout: 60_000, retry: 2 }, async () => {
    gateway = await startGatewayProcess(configFile, workers > 1 ? { workers } : {});
    // Distinct subjects: every issuance signs anew (no cache hits), so the burst is real work.
    const tokens = await Promise.all(
      Array.from({ length: BURST }, (_, i) => (i % 5 === 4 ? undefined : setup.issuer.mint({ sub: `repo:acme/app:burst-${i}`, repository: 'acme/app', ref: 'refs/heads/main' }))),
    );
    for (const token of tokens) if (token) ledger.add('web identity token', token);
    const slowToken = await setup.issuer.mint({ sub: 'repo:acme/app:slow', repository: 'acme/app', ref: 'refs/heads/main' });
    ledger.add('web identity token', slowToken);
    const midToken = await setup.issuer.mint({ sub: 'repo:acme/app:mid', repository: 'acme/app', ref: 'refs/heads/main' });
    ledger.add('web identity token', midToken);

    // A request in flight when SIGTERM comes, however fast the gateway got through the burst: its body is
    // finished only once the signal has gone out, so it is answered while the gateway drains.
    const mid = slowPost(`${gateway.url}/`, stsForm(midToken, 'mid'));

    // A request whose body is still arriving when the port closes: accepted, so it must be answered.
    const slow = slowPost(`${gateway.url}/oauth2/token`, new URLSearchParams({
      grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
      subject_token: slowToken,
      subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
      audience: 'deployer',
    }).toString());

    // Readiness from SIGTERM on, polled the way a kubelet does (a new connection each time), until the port closes.
    const polls: { at: number; result: number | string }[] = [];
    const pollReadiness = async () => {
      while (polls.filter((p) => p.result === 'ECONNREFUSED').length < 3 && Date.now() - sigtermAt < (DELAY_SECONDS + GRACE_SECONDS) * 1000) {
        polls.push({ at: Date.now(), result: await readyz(gateway.url, 1_000) });
        await sleep(20);
      }
    };

    const agent = new Agent({ keepAlive: true, maxSockets: Infinity });
    const connected = { count: 0 };
    let sigtermAt = 0;
    let arrived = 0;
    let polling: Promise<void> | undefined;
    let sigtermSent: Promise<void> | undefined;
    const sigterm = () => {
      sigtermAt = Date.now();
      gateway.child.kill('SIGTERM');
      mid.finish();
      polling = pollReadiness();
    };
    // SIGTERM only once the gateway has taken every burst connection from the kernel: one still in the
    // accept queue when the port closes is reset, for any server, and on two shared cores a busy event
    // loop can leave one there for seconds. (In production the readiness delay covers this.)
    const afterAccepted = async () => {
      while (connected.count < BURST || (acceptQueueLength(gateway.port) ?? 0) > 0) await sleep(5);
    };
    const burst = tokens.map(async (token, i): Promise<Outcome> => {
      const outcome = token === undefined ? await get(agent, connected, `${gateway.url}/readyz`) : await assume(agent, connected, gateway.url, token, i);
      if (++arrived === SIGTERM_AFTER) sigtermSent = afterAccepted().then(sigterm);
      return outcome;
    });
    const outcomes = await Promise.all(burst);
    agent.destroy();
    await sigtermSent;

    await polling;
    slow.finish();
    const late = await slow.response;
    const exit = await gateway.exited;
    const exitMs = Date.now() - sigtermAt;

    // Every burst request was accepted before the port closed, so each has a complete response.
    const failed = outcomes.filter((o) => o.error !== undefined || !complete(o));
    const shownFailures = failed.map((o) => `${o.kind}: ${o.error ?? `${o.status} ${/<Code>[^<]*<\/Code>\s*<Message>[^<]*/.exec(o.body ?? '')?.[0] ?? o.body?.slice(0, 80)}`}`);
    expect(shownFailures, gateway.problems().slice(-5).join('\n')).toEqual([]);
    for (const o of outcomes) if (o.kind === 'sts') expect(o.status).toBe(200);
    // Mid-burst: a request was still being answered when SIGTERM came, and got its whole answer. (How many
    // burst requests were still open then depends on how busy the two cores are: reported below.)
    const midAnswer = await mid.response;
    expect(midAnswer.status, midAnswer.error ?? midAnswer.body).toBe(200);
    expect(midAnswer.body.trimEnd()).toMatch(/<AccessKeyId>ASIA[^<]+<\/AccessKeyId>[\s\S]*<\/AssumeRoleWithWebIdentityResponse>$/);
    const afterSigterm = outcomes.filter((o) => o.at > sigtermAt);

    // /readyz: 200 until the signal is handled, 503 while the port still serves, then refused; never ready
    // again. One poll may catch the very
    // instant the port closes (reset from the kernel backlog, or, with workers, left unanswered in Node's
    // round-robin handoff): no load balancer sends there after a delay of failing readiness.
    const shown = JSON.stringify(polls.map((p) => [p.at - sigtermAt, p.result]));
    const firstRefused = polls.findIndex((p) => p.result === 'ECONNREFUSED');
    const first503 = polls.findIndex((p) => p.result === 503);
    expect(first503, shown).toBeGreaterThanOrEqual(0);
    expect(polls.slice(0, first503).every((p) => p.result === 200), shown).toBe(true);
    expect(firstRefused, shown).toBeGreaterThan(first503);
    const draining = polls.slice(first503, firstRefused);
    expect(draining.slice(0, -1).every((p) => p.result === 503), shown).toBe(true);
    expect([503, 'ECONNRESET', 'TIMEOUT'], shown).toContain(draining.at(-1)!.result);
    expect(polls.slice(firstRefused).every((p) => p.result === 'ECONNREFUSED'), shown).toBe(true);
    // The port stayed open for the delay: load balancers had that long to stop routing here.
    expect(polls[firstRefused]!.at - sigtermAt).toBeGreaterThanOrEqual(DELAY_SECONDS * 1000 - 50);

    // The request in flight when the port closed was finished, on a connection then closed cleanly.
    expect(late.status, `${late.error ?? late.body} ${shown}`).toBe(200);
    const lateBody = JSON.parse(late.body) as { access_token: string; aws_credentials: { SecretAccessKey: string; SessionToken: string } };
    expect(lateBody.access_token).toBeTruthy();
    expect(late.connection).toBe('close');
    for (const secret of [lateBody.access_token, lateBody.aws_credentials.SecretAccessKey, lateBody.aws_credentials.SessionToken]) ledger.add('late credentials', secret);

    expect(exit).toMatchObject({ code: 0, signal: null });
    expect(exitMs).toBeLessThan((DELAY_SECONDS + GRACE_SECONDS) * 1000);
    const stopped = await gateway.waitForLogs((line) => line.msg === 'stsgate stopped', workers);
    expect(stopped).toHaveLength(workers);
    if (workers > 1) {
      const workerExits = await gateway.waitForLogs((line) => line.msg === 'worker stopped', workers);
      expect(workerExits.map((line) => line.code)).toEqual(Array(workers).fill(0));
    }
    console.info(`workers: ${workers}: SIGTERM after ${BURST - afterSigterm.length} of ${BURST} responses; ${afterSigterm.length} answered after it; port closed after ${polls[firstRefused]!.at - sigtermAt} ms; exit 0 after ${exitMs} ms`);

    for (const o of [...outcomes, midAnswer]) {
      for (const name of ['SecretAccessKey', 'SessionToken']) {
        const value = new RegExp(`<${name}>([^<]+)</${name}>`).exec(o.body ?? '')?.[1];
        if (value) ledger.add(name, value);
      }
    }
  });

  it('writes no token or secret into any log', () => {
    expect(allOutput()).toContain('"event":"issued"');
    expectNoSecretsInOutput(ledger, BURST);
  });
});

function complete(o: Outcome): boolean {
  if (o.kind === 'readyz') return (o.status === 200 || o.status === 503) && /^\{"status":/.test(o.body ?? '') && JSON.parse(o.body!) !== null;
  return o.body?.trimEnd().endsWith('</AssumeRoleWithWebIdentityResponse>') ?? false;
}

function assume(agent: Agent, connected: { count: number }, url: string, token: string, i: number): Promise<Outcome> {
  return send(agent, connected, 'sts', url, 'POST', stsForm(token, `burst-${i}`));
}

/** An AssumeRoleWithWebIdentity form for the deployer role. */
function stsForm(token: string, sessionName: string): string {
  return new URLSearchParams({
    Action: 'AssumeRoleWithWebIdentity',
    Version: '2011-06-15',
    RoleArn: `arn:aws:iam::${ACCOUNT_ID}:role/deployer`,
    RoleSessionName: sessionName,
    WebIdentityToken: token,
  }).toString();
}

function get(agent: Agent, connected: { count: number }, url: string): Promise<Outcome> {
  return send(agent, connected, 'readyz', url, 'GET');
}

/** Sends one request on the agent (each burst request gets its own connection), counting connections made. */
function send(agent: Agent, connected: { count: number }, kind: Outcome['kind'], url: string, method: string, body?: string): Promise<Outcome> {
  return new Promise((resolve) => {
    const fail = (err: NodeJS.ErrnoException) => resolve({ kind, error: err.code ?? err.message, at: Date.now() });
    const req = request(url, { method, agent, headers: body === undefined ? {} : { 'content-type': 'application/x-www-form-urlencoded' } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ kind, status: res.statusCode!, body: text, at: Date.now() }));
      res.on('error', fail);
    });
    req.on('error', fail);
    req.on('socket', (socket) => socket.once('connect', () => connected.count++));
    req.end(body);
  });
}

/** A POST whose headers and first bytes go out now, and the rest of its body on `finish()`. */
function slowPost(url: string, body: string): { finish(): void; response: Promise<{ status?: number; body: string; connection?: string | undefined; error?: string }> } {
  const req = request(url, {
    method: 'POST',
    agent: false,
    headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(body) },
  });
  const response = new Promise<{ status?: number; body: string; connection?: string | undefined; error?: string }>((resolve) => {
    const fail = (err: NodeJS.ErrnoException) => resolve({ body: '', error: `${err.code ?? ''} ${err.message}` });
    req.on('response', (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode!, body: text, connection: res.headers.connection }));
      res.on('error', fail);
    });
    req.on('error', fail);
  });
  req.write(body.slice(0, 20));
  return { finish: () => req.end(body.slice(20)), response };
}
