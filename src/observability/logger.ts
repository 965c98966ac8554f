import { pino, type Logger } from 'pino';

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

/** The process logger: one JSON line per event on stdout. */
export function createLogger(options: { level?: string; destination?: NodeJS.WritableStream } = {}): Logger {
  const logger = pino(
    {
      level: options.level ?? process.env.STSGATE_LOG_LEVEL ?? 'info',
      base: { service: 'stsgate' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { log: censorNested },
      // pino runs serializers after formatters.log, so a serialized error is censored here.
      serializers: { err: (err: unknown) => censorNestedValue(pino.stdSerializers.err(err as Error)) },
    },
    options.destination as Parameters<typeof pino>[1],
  );
  return censoringChildBindings(logger);
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
