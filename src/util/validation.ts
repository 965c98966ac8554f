/**
 * Validation helpers shared by the config schema and the rule vocabulary (rules/): how a found value is
 * worded in a problem (`found "x", expected ...`; secrets never shown), did-you-mean suggestions, and
 * zod values checked by hand for messages zod's built-ins cannot phrase well. Pure: no I/O.
 */
import { z } from 'zod';

/** Whether a value is a YAML mapping (a plain object, not a list). */
export function isMapping(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/**
 * A mapping whose unknown keys are problems, one per key, with a did-you-mean. Built on a loose object plus
 * a check that always runs (`when`), so unknown keys are reported together with every other problem.
 */
export function strict<T extends z.ZodRawShape>(shape: T) {
  const allowed = Object.keys(shape);
  return z.looseObject(shape).superRefine(
    (value, ctx) => {
      for (const key of Object.keys(value)) {
        if (!allowed.includes(key)) ctx.addIssue({ code: 'custom', message: `unknown key ${JSON.stringify(key)}${suggestion(key, allowed, 'allowed keys')}`, path: [] });
      }
    },
    { when: (payload) => isMapping(payload.value) },
  );
}

/** A value checked and converted by hand, for messages zod's built-ins cannot phrase well. */
export function custom<T>(convert: (value: unknown) => { ok: T } | { problem: string }) {
  return z.unknown().transform((value, ctx): T => {
    const result = convert(value);
    if ('ok' in result) return result.ok;
    ctx.addIssue({ code: 'custom', message: result.problem });
    return z.NEVER;
  });
}

const MAX_SHOWN = 60;

/** Describes a value for a problem message: `"text"`, `42`, `true`, `null`, `a list`, `a mapping`. */
export function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return value.length === 0 ? 'an empty list' : 'a list';
  switch (typeof value) {
    case 'string': {
      const shown = JSON.stringify(value);
      return shown.length > MAX_SHOWN ? `${shown.slice(0, MAX_SHOWN)}…"` : shown;
    }
    case 'number':
    case 'boolean':
      return String(value);
    case 'object':
      return 'a mapping';
    default:
      return typeof value;
  }
}

/** Like `describeValue`, but never shows the content: for secrets. */
export function describeSecret(value: unknown): string {
  if (typeof value === 'string') return value.length === 0 ? 'an empty string' : `a string of ${value.length} characters`;
  if (typeof value === 'number') return 'a number';
  if (typeof value === 'boolean') return 'a boolean';
  return describeValue(value);
}

/** "found X" or "missing", for the start of a message. */
export function found(value: unknown, secret = false): string {
  if (value === undefined) return 'missing';
  return `found ${secret ? describeSecret(value) : describeValue(value)}`;
}

/** Optimal string alignment distance (Levenshtein plus adjacent transpositions, so "mtach" is 1 from "match"). */
export function editDistance(a: string, b: string): number {
  const rows = a.length + 1;
  const cols = b.length + 1;
  const d: number[][] = Array.from({ length: rows }, (_, i) => Array.from({ length: cols }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, d[i - 2]![j - 2]! + 1);
      d[i]![j] = best;
    }
  }
  return d[a.length]![b.length]!;
}

/** The closest candidate to `word` when it is close enough to be a typo (case-insensitive), else undefined. */
export function closest(word: string, candidates: Iterable<string>): string | undefined {
  const lower = word.toLowerCase();
  const limit = Math.max(1, Math.floor(word.length / 3));
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const distance = editDistance(lower, candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return bestDistance <= limit ? best : undefined;
}

/** `; did you mean "x"?` when a candidate is close, else `; allowed: a, b, c` (or `; known: …`). */
export function suggestion(word: string, candidates: readonly string[], noun = 'allowed'): string {
  const guess = closest(word, candidates);
  if (guess !== undefined) return `; did you mean ${JSON.stringify(guess)}?`;
  if (candidates.length === 0) return `; none are defined`;
  return `; ${noun}: ${candidates.join(', ')}`;
}
