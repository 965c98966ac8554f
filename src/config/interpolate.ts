/**
 * Environment interpolation and `<name>_file` secrets, applied to the parsed YAML tree (never to the
 * text), so a variable's value is always one string and can never inject YAML structure.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { type ConfigPath, type ProblemList, found } from './problems.js';

type Env = Readonly<Record<string, string | undefined>>;

const REFERENCE = /^([A-Za-z_][A-Za-z0-9_]*)(?::-([\s\S]*))?$/;

/** Sets an own property even for keys such as `__proto__`, which plain assignment would treat as the prototype. */
function setOwn(target: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

function isMapping(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/**
 * Replaces `${NAME}` and `${NAME:-default}` in one string. As in the shell, `:-` also applies when NAME is
 * set but empty. `$${` is a literal `${`. An unset NAME without a default, or a malformed reference, is a
 * problem at `path`.
 */
export function interpolateString(text: string, env: Env, path: ConfigPath, problems: ProblemList): string {
  if (!text.includes('${')) return text;
  let out = '';
  let i = 0;
  while (i < text.length) {
    const dollar = text.indexOf('$', i);
    if (dollar === -1) {
      out += text.slice(i);
      break;
    }
    out += text.slice(i, dollar);
    if (text.startsWith('$${', dollar)) {
      out += '${';
      i = dollar + 3;
      continue;
    }
    if (text[dollar + 1] !== '{') {
      out += '$';
      i = dollar + 1;
      continue;
    }
    const close = text.indexOf('}', dollar + 2);
    if (close === -1) {
      problems.add(path, `found an unterminated "\${" in ${JSON.stringify(text)}, expected \${NAME} or \${NAME:-default} (write $\${ for a literal \${)`);
      return text;
    }
    const inner = text.slice(dollar + 2, close);
    const reference = REFERENCE.exec(inner);
    if (!reference) {
      problems.add(path, `found "\${${inner}}", expected \${NAME} or \${NAME:-default} with NAME of letters, digits and _ (write $\${ for a literal \${)`);
      return text;
    }
    const name = reference[1]!;
    const fallback = reference[2];
    const value = Object.hasOwn(env, name) ? env[name] : undefined;
    if (value !== undefined && (fallback === undefined || value !== '')) {
      out += value;
    } else if (fallback !== undefined) {
      out += fallback;
    } else {
      problems.add(path, `found "\${${name}}" but ${name} is not set, expected ${name} in the environment or a default: \${${name}:-value}`);
      return text;
    }
    i = close + 1;
  }
  return out;
}

/** Returns a copy of the tree with every string value interpolated (keys are left alone). */
export function interpolateTree(value: unknown, env: Env, problems: ProblemList, path: ConfigPath = []): unknown {
  if (typeof value === 'string') return interpolateString(value, env, path, problems);
  if (Array.isArray(value)) return value.map((item, index) => interpolateTree(item, env, problems, [...path, index]));
  if (isMapping(value)) {
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) setOwn(out, key, interpolateTree(item, env, problems, [...path, key]));
    return out;
  }
  return value;
}

/**
 * Subtrees where a key ending in `_file` is data, not a secret reference: rule conditions, test claims,
 * session tag names and inline JWKS members. `signing.keys_file` is a real setting (a path read at start).
 */
function isDataSubtree(path: ConfigPath): boolean {
  const [top, , third] = path;
  if (top === 'rules' || top === 'tests') return true;
  if (top === 'roles' && third === 'session_tags') return true;
  if (top === 'issuers' && third === 'keys') return true;
  return false;
}

function isSettingNamedFile(path: ConfigPath, key: string): boolean {
  return path.length === 1 && path[0] === 'signing' && key === 'keys_file';
}

/** Reads a secret file: the whole content with trailing newlines removed (what `echo x > file` adds). */
function readSecret(file: string, baseDir: string): { value: string } | { error: string } {
  try {
    return { value: readFileSync(resolve(baseDir, file), 'utf8').replace(/(?:\r?\n)+$/, '') };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return { error: code ?? (err instanceof Error ? err.message : String(err)) };
  }
}

/**
 * Returns a copy of the tree where every `<name>_file: PATH` becomes `<name>: <file content>`, PATH being
 * relative to `baseDir`. Giving both `<name>` and `<name>_file` is a problem, as is an unreadable file.
 */
export function resolveSecretFiles(value: unknown, baseDir: string, problems: ProblemList, path: ConfigPath = []): unknown {
  if (isDataSubtree(path)) return value;
  if (Array.isArray(value)) return value.map((item, index) => resolveSecretFiles(item, baseDir, problems, [...path, index]));
  if (!isMapping(value)) return value;
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) {
    if (!key.endsWith('_file') || key === '_file' || isSettingNamedFile(path, key)) {
      setOwn(out, key, resolveSecretFiles(item, baseDir, problems, [...path, key]));
      continue;
    }
    const name = key.slice(0, -'_file'.length);
    if (Object.hasOwn(value, name)) {
      problems.add(path, `found both ${name} and ${key}, expected only one of them`);
      continue;
    }
    if (typeof item !== 'string' || item.length === 0) {
      problems.add([...path, key], `${found(item)}, expected the path of a file holding ${name}`);
      continue;
    }
    const secret = readSecret(item, baseDir);
    if ('error' in secret) {
      problems.add([...path, key], `cannot read ${JSON.stringify(item)} (${secret.error}), expected a readable file holding ${name}`);
      continue;
    }
    setOwn(out, name, secret.value);
  }
  return out;
}
