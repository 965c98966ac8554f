import { pino, type Logger } from 'pino';
import type { LogFormat } from '../config/schema.js';

export type { Logger };

/**
 * Field names censored one level down in a log object (`{ headers: { authorization } }`), as pino's
 * `redact` paths `*.<name>` did. Callers never pass tokens, secrets, codes or cookie values; this is a
 * second line of defence for field names that could carry one.
 */
export const REDACTED_FIELDS: ReadonlySet<string> = new Set([
  'token', 'access_token', 'subject_token', 'WebIdentityToken', 'SecretAccessKey', 'SessionToken',
  'secretAccessKey', 'sessionToken', 'accessToken', 'authorization', 'cookie', 'code', 'client_secret', 'password',
]);

/** What a censored value is replaced with. */
export const CENSOR = '[redacted]';

/**
 * A copy of `object` whose nested objects have their REDACTED_FIELDS censored; `object` itself when
 * nothing needs it (the common case: no allocation). Never mutates its input. Same semantics as pino's
 * `redact: { paths: ['*.<name>', ...] }`, which was among the costliest items per request (two log lines
 * each; bench/README.md, "What changed"): the wildcard paths made it walk and re-serialize every object.
 */
export function censorNested<T extends object>(object: T): T {
  let out: Record<string, unknown> | undefined;
  for (const key of Object.keys(object)) {
    const value = (object as Record<string, unknown>)[key];
    if (value === null || typeof value !== 'object') continue;
    const censored = censorOwn(value);
    if (censored !== value) {
      out ??= { ...(object as Record<string, unknown>) };
      out[key] = censored;
    }
  }
  return (out ?? object) as T;
}

/** `value` with its own REDACTED_FIELDS censored (a copy keeping its prototype), or `value` itself. */
function censorOwn(value: object): object {
  let copy: Record<string, unknown> | undefined;
  for (const name of REDACTED_FIELDS) {
    if (!Object.hasOwn(value, name)) continue;
    // Keep the prototype and non-enumerable members (an Error's message and stack) for the serializers.
    copy ??= Array.isArray(value) ? ([...value] as unknown as Record<string, unknown>) : Object.create(Object.getPrototypeOf(value), Object.getOwnPropertyDescriptors(value));
    copy![name] = CENSOR;
  }
  return copy ?? value;
}

export type { LogFormat };

/** `log.format`'s values (the schema declares them; listed here so that the logger need not load zod). */
const LOG_FORMATS = Object.keys({ auto: true, text: true, json: true } satisfies Record<LogFormat, true>);

/** What `createLogger` takes; everything is optional (the process's stdout, `STSGATE_LOG_LEVEL`, `auto`). */
export interface LoggerOptions {
  level?: string;
  /** Where lines go; default stdout, written synchronously so that nothing is lost when the process exits. */
  destination?: NodeJS.WritableStream;
  /**
   * Stdout written without blocking the request path (the gateway's `serve`): lines are batched (12 KiB,
   * or 100 ms at most: LOG_BATCH_BYTES, LOG_FLUSH_INTERVAL_MS) and handed to the kernel by a background
   * write. Nothing is lost on SIGTERM or any exit (flushLogs, and a synchronous flush on exit); a crash
   * the process cannot see (SIGKILL, the OOM killer) loses what was not yet written: about the last
   * 100 ms of lines while stdout drains, up to MAX_BUFFERED_LOG_BYTES when it has stalled.
   */
  buffered?: boolean;
  /** `log.format` from the config; `STSGATE_LOG_FORMAT` overrides it. */
  format?: LogFormat;
  /** The environment read for `STSGATE_LOG_LEVEL`, `STSGATE_LOG_FORMAT` and `NO_COLOR` (default process.env). */
  env?: Readonly<Record<string, string | undefined>>;
}

/**
 * The process logger: one line per event, level names (`"level":"info"`) rather than pino's numbers.
 * JSON lines, or with the text format one readable line each (`21:14:44.123 INFO  request method=POST ...`),
 * coloured only on a terminal without NO_COLOR.
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  const env = options.env ?? process.env;
  const stream = options.destination ?? process.stdout;
  const isTTY = (stream as { isTTY?: boolean }).isTTY === true;
  const text = resolveLogFormat(options.format, env, isTTY) === 'text';
  // no-color.org: NO_COLOR present and not empty turns colour off.
  const colour = text && isTTY && !env.NO_COLOR;
  const logger = pino(
    {
      level: options.level ?? env.STSGATE_LOG_LEVEL ?? 'info',
      base: { service: 'stsgate' },
      timestamp: isoTime,
      formatters: { level: (label) => ({ level: label }), log: censorNested },
      // pino runs serializers after formatters.log, so a serialized error is censored here.
      serializers: { err: (err: unknown) => censorNestedValue(pino.stdSerializers.err(err as Error)) },
      // The text format is rendered from the finished (censored) JSON line, so both carry the same fields.
      ...(text ? { hooks: { streamWrite: (line: string) => formatTextLine(line, { colour }) } } : {}),
    },
    // Synchronous unless buffered: an asynchronous stdout could reorder lines, or lose the one in flight,
    // when a command exits straight after logging (seen with three lines and process.exit).
    (options.destination ?? (options.buffered ? bufferedStdout() : pino.destination({ dest: 1, sync: true }))) as Parameters<typeof pino>[1],
  );
  return censoringChildBindings(logger);
}

/**
 * How many bytes of lines may wait for stdout. When the reader of stdout stalls for this long a line is
 * dropped (and counted: droppedLogLines) rather than the process growing without bound or stalling every
 * request behind a blocked write.
 */
export const MAX_BUFFERED_LOG_BYTES = 16 * 1024 * 1024;

type Destination = ReturnType<typeof pino.destination>;
/** This process's buffered stdout destinations; flushLogs drains them. */
const bufferedDestinations = new Set<Destination>();
let dropped = 0;

/** Lines a stalled stdout made the buffered logger drop since the process started. */
export function droppedLogLines(): number {
  return dropped;
}

/** Lines are written once this many bytes wait, or at the latest LOG_FLUSH_INTERVAL_MS after they were logged. */
export const LOG_BATCH_BYTES = 12 * 1024;
/** The longest a line waits for its batch: with MAX_BUFFERED_LOG_BYTES, the bound on what a SIGKILL loses. */
export const LOG_FLUSH_INTERVAL_MS = 100;

function bufferedStdout(): Destination {
  // A write per line, even an asynchronous one, costs a system call and a thread-pool round trip per
  // request; batches of 12 KiB (sonic-boom writes at most 16 KiB at once) cost one per 15-40 lines.
  // pino registers a synchronous flush of this stream on process exit.
  const destination = pino.destination({ dest: 1, sync: false, minLength: LOG_BATCH_BYTES, maxLength: MAX_BUFFERED_LOG_BYTES });
  destination.on('drop', () => {
    dropped += 1;
  });
  const state = destination as unknown as SonicBoomState;
  const timer = setInterval(() => {
    if (!state._writing && state._len > 0 && !state.destroyed) destination.flush();
  }, LOG_FLUSH_INTERVAL_MS);
  timer.unref();
  destination.on('close', () => clearInterval(timer));
  bufferedDestinations.add(destination);
  return destination;
}

/** The two fields of sonic-boom 4 that tell whether a write is in flight and whether bytes wait (it has no public ones). */
interface SonicBoomState {
  _writing: boolean;
  _len: number;
  destroyed: boolean;
}

/**
 * Waits for the buffered loggers' write in flight, then writes what is left synchronously, in order. The
 * gateway calls this when it has closed (SIGTERM): every line logged before it is on stdout. Bounded by
 * `timeoutMs` for a stdout that no longer drains.
 */
export async function flushLogs(timeoutMs = 2_000): Promise<void> {
  for (const destination of bufferedDestinations) {
    if ((destination as unknown as SonicBoomState)._writing) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, timeoutMs);
        destination.once('drain', () => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    try {
      destination.flushSync();
    } catch {
      // Not open yet, or destroyed: nothing of ours to write.
    }
  }
}

let isoMs = 0;
let isoField = '';
/** pino's stdTimeFunctions.isoTime, the Date and its string made once per millisecond rather than per line. */
function isoTime(): string {
  const now = Date.now();
  if (now !== isoMs) {
    isoMs = now;
    isoField = `,"time":"${new Date(now).toISOString()}"`;
  }
  return isoField;
}

/** `STSGATE_LOG_FORMAT` over the configured format; `auto` is text on a terminal and JSON otherwise. */
export function resolveLogFormat(configured: LogFormat | undefined, env: Readonly<Record<string, string | undefined>>, isTTY: boolean): 'text' | 'json' {
  const fromEnv = env.STSGATE_LOG_FORMAT;
  if (fromEnv !== undefined && fromEnv !== '' && !(LOG_FORMATS as readonly string[]).includes(fromEnv)) {
    throw new Error(`STSGATE_LOG_FORMAT: found ${JSON.stringify(fromEnv)}, expected one of ${LOG_FORMATS.join(', ')}`);
  }
  const format = (fromEnv || configured || 'auto') as LogFormat;
  return format === 'auto' ? (isTTY ? 'text' : 'json') : format;
}

const LEVEL_COLOURS: Readonly<Record<string, string>> = { trace: '90', debug: '36', info: '32', warn: '33', error: '31', fatal: '1;31' };
/** Fields every line has, shown in their own place (time, level, message) or not at all (the service name). */
const LINE_FIELDS = new Set(['time', 'level', 'msg', 'service']);

/**
 * One JSON log line as one line of text: time of day, level name, message, then `key=value` for each
 * other field. Strings are quoted (JSON) when they hold anything but visible ASCII, so a value can never
 * break the line or send the terminal a control sequence; objects are shown as JSON.
 */
export function formatTextLine(json: string, options: { colour: boolean }): string {
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return `${quote(json.trimEnd())}\n`;
  }
  const paint = (code: string, value: string) => (options.colour ? `\x1b[${code}m${value}\x1b[0m` : value);
  const level = String(entry.level ?? '');
  const time = typeof entry.time === 'string' ? entry.time.slice(11, 23) : String(entry.time ?? '');
  const parts = [paint('2', time), paint(LEVEL_COLOURS[level] ?? '0', level.toUpperCase().padEnd(5))];
  if (entry.msg !== undefined) parts.push(safeText(String(entry.msg)));
  for (const [key, value] of Object.entries(entry)) {
    if (LINE_FIELDS.has(key) || value === undefined) continue;
    parts.push(`${paint('2', `${safeText(key)}=`)}${typeof value === 'string' ? quote(value) : escapeControls(JSON.stringify(value))}`);
  }
  return `${parts.join(' ')}\n`;
}

/** Visible ASCII without quotes or `=` is shown bare; anything else as a JSON string. */
function quote(value: string): string {
  return /^[\x21\x23-\x3c\x3e-\x7e]+$/.test(value) ? value : escapeControls(JSON.stringify(value));
}

/** Free text (the message): control characters escaped, not quoted. */
function safeText(value: string): string {
  return escapeControls(JSON.stringify(value).slice(1, -1).replace(/\\"/g, '"'));
}

/** JSON leaves DEL, the C1 controls (0x9b is a CSI on some terminals) and the line separators as they are. */
function escapeControls(text: string): string {
  return text.replace(/[\x7f-\x9f\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/**
 * pino applies no formatter to child bindings (its `redact` did censor them): censor them on the way in.
 * Children inherit from their parent logger, so overriding `child` here covers every descendant.
 */
function censoringChildBindings(logger: Logger): Logger {
  const child = logger.child as unknown as (this: Logger, bindings: pino.Bindings, options?: pino.ChildLoggerOptions) => Logger;
  logger.child = function censoredChild(this: Logger, bindings: pino.Bindings, options?: pino.ChildLoggerOptions) {
    return child.call(this, censorNested(bindings), options);
  } as unknown as Logger['child'];
  return logger;
}

function censorNestedValue(value: unknown): unknown {
  return value !== null && typeof value === 'object' ? censorOwn(value) : value;
}
