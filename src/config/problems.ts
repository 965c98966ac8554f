/**
 * Configuration problems: every one is `path: what was found, what is allowed`, all collected and
 * reported at once (oauth2-proxy's validation style), with did-you-mean suggestions for typos.
 */

export { closest, describeSecret, describeValue, editDistance, found, suggestion } from '../util/validation.js';

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

/** Key names whose values must never be echoed back in problems or logs. */
const SECRET_KEY = /(?:^|_)(?:secret|password|passphrase|token|private_key|encryption_key)$/i;

/** Whether the last key of `path` names a secret. */
export function isSecretPath(path: ConfigPath): boolean {
  const last = [...path].reverse().find((k) => typeof k === 'string');
  return typeof last === 'string' && SECRET_KEY.test(last);
}
