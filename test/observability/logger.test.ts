/**
 * The logger's censoring is a hand-written stand-in for pino's `redact` with `*.<name>` paths (which cost
 * about 30 µs per line). It must write exactly what pino's redaction wrote, so each row is logged through
 * both and the lines compared.
 */
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { censorNested, createLogger, REDACTED_FIELDS } from '../../src/observability/logger.js';

function capture(): { destination: Writable; lines: () => Record<string, unknown>[] } {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      lines.push(...chunk.toString('utf8').split('\n').filter((l) => l !== ''));
      callback();
    },
  });
  return { destination, lines: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>).map(({ time: _time, ...rest }) => rest) };
}

/** The configuration the logger had before: pino's own redaction (with level names, as the logger writes them now). */
function referenceLogger(destination: Writable) {
  return pino(
    {
      level: 'info',
      base: { service: 'stsgate' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: [...REDACTED_FIELDS].map((name) => `*.${name}`), censor: '[redacted]' },
    },
    destination,
  );
}

function coded(message: string, code: string): Error {
  return Object.assign(new Error(message), { code });
}

const rows: [string, () => Record<string, unknown>][] = [
  ['plain fields', () => ({ requestId: 'r1', method: 'POST', path: '/', status: 200, ms: 1.5 })],
  ['a top-level sensitive name (not a `*.` path)', () => ({ token: 'kept', code: 'kept' })],
  ['nested sensitive names', () => ({ headers: { authorization: 'Bearer x', cookie: 'c', accept: '*/*' }, form: { subject_token: 't', grant_type: 'g' } })],
  ['every redacted name', () => ({ body: Object.fromEntries([...REDACTED_FIELDS].map((n) => [n, `secret-${n}`])) })],
  ['two levels down is not censored', () => ({ outer: { inner: { token: 'deep' } } })],
  ['arrays', () => ({ list: [{ token: 'in-array' }], tags: ['a', 'b'] })],
  ['null and undefined', () => ({ a: null, b: undefined, c: { password: undefined } })],
  ['an error with a code', () => ({ err: coded('boom', 'ERR_X') })],
  ['an error under another name', () => ({ cause: coded('boom', 'ERR_Y') })],
  ['a plain error-like object', () => ({ err: { name: 'TypeError', message: 'bad', code: 'E1' } })],
];

describe('log censoring', () => {
  it.each(rows)('%s: same line as pino redact', (_name, make) => {
    const ours = capture();
    const reference = capture();
    const fields = make();
    createLogger({ destination: ours.destination }).info(fields, 'message');
    referenceLogger(reference.destination).info(fields, 'message');
    expect(ours.lines()).toEqual(reference.lines());
  });

  it('censors child bindings like pino redact', () => {
    const ours = capture();
    const reference = capture();
    createLogger({ destination: ours.destination }).child({ log: 'audit', headers: { cookie: 'c' } }).child({ worker: 1, auth: { password: 'p' } }).info({ event: 'issued' });
    referenceLogger(reference.destination).child({ log: 'audit', headers: { cookie: 'c' } }).child({ worker: 1, auth: { password: 'p' } }).info({ event: 'issued' });
    expect(ours.lines()).toEqual(reference.lines());
    expect(JSON.stringify(ours.lines())).not.toMatch(/"c"|"p"/);
  });

  it('never mutates what it is given, and allocates nothing when nothing is sensitive', () => {
    const input = { headers: { authorization: 'secret' }, n: 1 };
    const out = censorNested(input);
    expect(input.headers.authorization).toBe('secret');
    expect(out).toEqual({ headers: { authorization: '[redacted]' }, n: 1 });
    const clean = { a: { b: 1 }, c: 'x' };
    expect(censorNested(clean)).toBe(clean);
  });
});
