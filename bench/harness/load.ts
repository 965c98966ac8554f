/** Drives load with autocannon (programmatic API) and reduces its result to what the report shows. */
import autocannon, { type Options, type Request, type Result } from 'autocannon';

/** One kind of request a case sends: fixed, or built per request (a new token each time). */
export interface RequestShape {
  method: 'GET' | 'POST';
  path: string;
  headers?: Record<string, string>;
  /** A fixed body. */
  body?: string;
  /** A body per request; wins over `body`. */
  nextBody?: () => string;
}

export interface PassOptions {
  connections: number;
  durationSeconds: number;
  /** Requests per second over all connections; omitted: as fast as the server answers. */
  overallRate?: number;
}

/** What one pass measured. */
export interface PassResult {
  /** Successful (2xx) responses per second. */
  rps: number;
  /** Exact percentiles of the response times seen, in ms. */
  p50Ms: number;
  p99Ms: number;
  /** autocannon's p99 (1 ms resolution; with its coordinated-omission correction when rate-limited). */
  correctedP99Ms: number;
  requests: number;
  /** Responses that were not 2xx, plus connection errors and timeouts. */
  failures: number;
  statusCodes: Record<string, number>;
}

/** Runs one autocannon pass against `url` (the server's origin). */
export async function runPass(url: string, shape: RequestShape, options: PassOptions): Promise<PassResult> {
  const request: Request = { method: shape.method, path: shape.path, headers: shape.headers ?? {}, ...(shape.body === undefined ? {} : { body: shape.body }) };
  const nextBody = shape.nextBody;
  if (nextBody) {
    request.setupRequest = (built) => ({ ...built, body: nextBody() });
  }
  const autocannonOptions: Options = {
    url,
    connections: options.connections,
    duration: options.durationSeconds,
    pipelining: 1,
    timeout: 10,
    requests: [request],
    ...(options.overallRate === undefined ? {} : { overallRate: options.overallRate }),
  };
  // Every response time, unrounded (autocannon's own histogram has 1 ms resolution).
  const latencies = new LatencyRecorder();
  const instance = autocannon(autocannonOptions);
  instance.on('response', (_client: unknown, _status: number, _bytes: number, responseTimeMs: number) => latencies.record(responseTimeMs));
  const result: Result = await instance;
  const completed = result['2xx'] + result.non2xx;
  const statusCodes = Object.fromEntries(Object.entries(result.statusCodeStats).map(([code, { count }]) => [code, count]));
  return {
    rps: result['2xx'] / result.duration,
    p50Ms: latencies.percentile(50),
    p99Ms: latencies.percentile(99),
    correctedP99Ms: result.latency.p99,
    requests: completed,
    failures: result.non2xx + result.errors + result.timeouts,
    statusCodes,
  };
}

/** Response times in a growing typed array (bounded: at most 4 million are kept). */
class LatencyRecorder {
  static readonly MAX = 4_000_000;
  #values = new Float64Array(65_536);
  #count = 0;

  record(ms: number): void {
    if (this.#count === LatencyRecorder.MAX) return;
    if (this.#count === this.#values.length) {
      const grown = new Float64Array(Math.min(LatencyRecorder.MAX, this.#values.length * 2));
      grown.set(this.#values);
      this.#values = grown;
    }
    this.#values[this.#count++] = ms;
  }

  /** The nearest-rank percentile, or 0 with no samples. */
  percentile(p: number): number {
    if (this.#count === 0) return 0;
    const sorted = this.#values.subarray(0, this.#count).sort();
    return sorted[Math.min(this.#count - 1, Math.ceil((p / 100) * this.#count) - 1)]!;
  }
}
