/**
 * Configuration problems: every one is `path: what was found, what is allowed`, all collected and
 * reported at once (oauth2-proxy's validation style), with did-you-mean suggestions for typos.
 */

/** A path into the configuration document, e.g. `["rules", 2, "match", "all", 0]`. */
export type ConfigPath = readonly PropertyKey[];

/** One problem: where, and what is wrong. */
export interface ConfigProblem {
  path: string;
  message: string;
}

/** Thrown by `loadConfig`/`parseConfig` with every problem found, each formatted `path: message`. */
export class ConfigError extends Error {
  readonly problems: readonly string[];

  constructor(problems: readonly ConfigProblem[], source = 'configuration') {
    const lines = problems.map(formatProblem);
    super(`${source}: ${lines.length} problem${lines.length === 1 ? '' : 's'}\n${lines.map((l) => `  ${l}`).join('\n')}`);
    this.name = 'ConfigError';
    this.problems = lines;
  }
}

/** `path: message` */
export function formatProblem(problem: ConfigProblem): string {
  return `${problem.path}: ${problem.message}`;
}

const PLAIN_KEY = /^[A-Za-z_][A-Za-z0-9_-]*$/;

/** Formats `["rules", 2, "match"]` as `rules[2].match`; odd keys are quoted: `claims["a.b"]`. */
export function formatPath(path: ConfigPath): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else if (typeof key === 'string' && PLAIN_KEY.test(key)) out += out ? `.${key}` : key;
    else out += `[${JSON.stringify(String(key))}]`;
  }
  return out || '(top level)';
}

/** Collects problems during one load. */
export class ProblemList {
  readonly items: ConfigProblem[] = [];

  add(path: ConfigPath | string, message: string): void {
    this.items.push({ path: typeof path === 'string' ? path : formatPath(path), message });
  }

  get empty(): boolean {
    return this.items.length === 0;
  }
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

/** Key names whose values must never be echoed back in problems or logs. */
const SECRET_KEY = /(?:^|_)(?:secret|password|passphrase|token|private_key|encryption_key)$/i;

/** Whether the last key of `path` names a secret. */
export function isSecretPath(path: ConfigPath): boolean {
  const last = [...path].reverse().find((k) => typeof k === 'string');
  return typeof last === 'string' && SECRET_KEY.test(last);
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
