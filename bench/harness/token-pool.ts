/**
 * Pre-minted web-identity tokens, every one with its own subject, for the "fresh issuance" cases: a
 * request that reused a subject would be answered from the credential cache. Tokens are RS256, as
 * GitHub Actions, Kubernetes and Google sign theirs, with a GitHub-Actions-sized claim set. Minting
 * (RSA signing) happens in worker threads before a measured pass starts, or alongside an unmeasured
 * warm-up (`mintAlongside`), never during a measured pass.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';

/** Signs a range of tokens; plain JS so the worker needs no TypeScript loader. */
const MINT_WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const { createPrivateKey, sign, randomUUID } = require('node:crypto');
const key = createPrivateKey(workerData.pem);
const header = Buffer.from(JSON.stringify({ alg: 'RS256', kid: workerData.kid, typ: 'JWT' })).toString('base64url');
parentPort.on('message', ({ start, count, iat }) => {
  const tokens = [];
  for (let i = start; i < start + count; i++) {
    const run = String(9000000000 + i);
    const payload = {
      jti: randomUUID(),
      sub: 'repo:acme/app:ref:refs/heads/main:run:' + run,
      aud: workerData.audience,
      ref: 'refs/heads/main',
      sha: '6f1ed002ab5595859014ebf0951522d9' + String(i).padStart(8, '0'),
      repository: 'acme/app',
      repository_owner: 'acme',
      repository_owner_id: '1234567',
      run_id: run,
      run_number: String(i),
      run_attempt: '1',
      repository_visibility: 'private',
      repository_id: '7654321',
      actor_id: '4242',
      actor: 'octocat-' + (i % 97),
      workflow: 'deploy',
      head_ref: '',
      base_ref: '',
      event_name: 'push',
      ref_protected: 'true',
      ref_type: 'branch',
      workflow_ref: 'acme/app/.github/workflows/deploy.yml@refs/heads/main',
      workflow_sha: '6f1ed002ab5595859014ebf0951522d9' + String(i).padStart(8, '0'),
      job_workflow_ref: 'acme/app/.github/workflows/deploy.yml@refs/heads/main',
      runner_environment: 'github-hosted',
      iss: workerData.issuer,
      nbf: iat - 5,
      iat,
      exp: iat + 3600,
    };
    const input = header + '.' + Buffer.from(JSON.stringify(payload)).toString('base64url');
    tokens.push(input + '.' + sign('sha256', Buffer.from(input), key).toString('base64url'));
  }
  parentPort.postMessage(tokens);
});
`;

export interface TokenPoolOptions {
  /** PKCS#8 PEM of the issuer's RS256 key. */
  privateKeyPem: string;
  kid: string;
  issuer: string;
  audience: string;
  /** Minting threads; default: one per core (minting happens while nothing else runs). */
  threads?: number;
}

/** Tokens each worker signs per batch while minting alongside a warm-up (about 0.1 s of one core), so it stops promptly. */
const BACKGROUND_BATCH = 200;

/**
 * A growing list of distinct-subject tokens, handed out once each. `rewind()` hands them out again from
 * the first, for a server process that has seen none of them and shares no state with the one that did.
 */
export class TokenPool {
  readonly #tokens: string[] = [];
  readonly #workers: Worker[];
  #next = 0;
  #minted = 0;
  /** How many tokens were handed out again because the pool ran dry. */
  #reused = 0;
  /** The minting that is running alongside a warm-up, if any. */
  #background: { stop: () => void; done: Promise<void> } | undefined;

  constructor(options: TokenPoolOptions) {
    const threads = options.threads ?? Math.max(1, availableParallelism());
    const workerData = { pem: options.privateKeyPem, kid: options.kid, issuer: options.issuer, audience: options.audience };
    this.#workers = Array.from({ length: threads }, () => new Worker(MINT_WORKER, { eval: true, workerData }));
  }

  /** Tokens not handed out yet. */
  get remaining(): number {
    return this.#tokens.length - this.#next;
  }

  /** Tokens minted so far. */
  get size(): number {
    return this.#tokens.length;
  }

  get used(): number {
    return this.#next;
  }

  /** Hand-outs that had to repeat a token (a measured pass with reuse would include cache hits). */
  get reused(): number {
    return this.#reused;
  }

  /** The next unused token; when none is left, an old one (counted in `reused`). */
  take(): string {
    if (this.#next < this.#tokens.length) return this.#tokens[this.#next++]!;
    if (this.#tokens.length === 0) throw new Error('the token pool is empty: call ensure() first');
    this.#reused++;
    return this.#tokens[this.#reused % this.#tokens.length]!;
  }

  /**
   * Every token is unused again: for a new server process that has seen none of them and shares no
   * state with the processes that did (each process still sees each token at most once).
   */
  rewind(): void {
    this.#next = 0;
  }

  /**
   * Hands tokens out from `cursor` (a server process's own place in the pool) until `run` settles, then
   * goes back to where it was: two processes measured in turn each see each token at most once (each is a
   * process of its own, with its own Redis keys). Returns what `run` returned and the process's new place.
   */
  async from<T>(cursor: number, run: () => Promise<T>): Promise<{ result: T; cursor: number }> {
    const saved = this.#next;
    this.#next = cursor;
    try {
      const result = await run();
      return { result, cursor: this.#next };
    } finally {
      this.#next = saved;
    }
  }

  /** Mints until at least `count` tokens are unused; returns the milliseconds it took. */
  async ensure(count: number): Promise<number> {
    if (this.#background) throw new Error('the pool is minting alongside a warm-up: stop that first');
    const missing = count - this.remaining;
    if (missing <= 0) return 0;
    const started = performance.now();
    await this.#mint(Math.ceil(missing / this.#workers.length));
    return performance.now() - started;
  }

  /**
   * Mints in small batches, while something unmeasured runs, until the pool holds `limit` tokens or the
   * returned function is called; that function resolves, with the number minted, once the threads are idle.
   */
  mintAlongside(limit: number): () => Promise<number> {
    if (this.#background) throw new Error('the pool is already minting alongside a warm-up');
    const before = this.#tokens.length;
    let stopped = false;
    const loop = async () => {
      while (!stopped && this.#tokens.length < limit) await this.#mint(BACKGROUND_BATCH);
    };
    const background = { stop: () => (stopped = true), done: loop() };
    // A failure surfaces when the caller stops the minting, not as an unhandled rejection before.
    background.done.catch(() => {});
    this.#background = background;
    return async () => {
      background.stop();
      try {
        await background.done;
      } finally {
        this.#background = undefined;
      }
      return this.#tokens.length - before;
    };
  }

  /** Has every worker sign `share` tokens with new subjects, and adds them to the pool. */
  async #mint(share: number): Promise<void> {
    const iat = Math.floor(Date.now() / 1000);
    const batches = await Promise.all(
      this.#workers.map((worker, w) => {
        const start = this.#minted + w * share;
        return new Promise<string[]>((resolve, reject) => {
          const onMessage = (tokens: string[]) => {
            worker.off('error', onError);
            resolve(tokens);
          };
          const onError = (err: Error) => {
            worker.off('message', onMessage);
            reject(err);
          };
          worker.once('message', onMessage);
          worker.once('error', onError);
          worker.postMessage({ start, count: share, iat });
        });
      }),
    );
    this.#minted += share * this.#workers.length;
    for (const batch of batches) for (const token of batch) this.#tokens.push(token);
  }

  /** Ends the minting threads. */
  async close(): Promise<void> {
    this.#background?.stop();
    await this.#background?.done.catch(() => {});
    await Promise.all(this.#workers.map((worker) => worker.terminate()));
  }
}
