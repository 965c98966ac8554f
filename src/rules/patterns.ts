/**
 * String matching for conditions: case folding, globs and linear-time regular expressions (RE2).
 * Nothing here backtracks, so a hostile claim value cannot make a rule slow.
 */
import { createRequire } from 'node:module';
import type * as Re2js from 're2js';

let re2js: typeof Re2js.RE2JS | undefined;
/**
 * re2js, loaded at its first use (a `matches` condition, a glob with `?` or more than one `*`): most
 * configurations have none, and it is the largest module the rules would otherwise load (about 0.5 MB of
 * heap held for the life of the process).
 */
function RE2(): typeof Re2js.RE2JS {
  re2js ??= (createRequire(import.meta.url)('re2js') as typeof Re2js).RE2JS;
  return re2js;
}

const ASCII_ONLY = /^[\x00-\x7f]*$/;

/**
 * Lowercases with `toLowerCase` only: no Unicode normalization, so look-alikes (Cyrillic "а" vs Latin
 * "a") stay different. Characters are lowered one code point at a time, and a non-ASCII character whose
 * lowercase would be ASCII (U+212A KELVIN SIGN lowers to "k") is kept as it is, so it cannot pose as a
 * Latin letter.
 */
export function foldCase(value: string): string {
  if (ASCII_ONLY.test(value)) return value.toLowerCase();
  let out = '';
  for (const ch of value) {
    const lower = ch.toLowerCase();
    out += ASCII_ONLY.test(lower) && !ASCII_ONLY.test(ch) ? ch : lower;
  }
  return out;
}

/** A compiled string predicate. */
export type StringMatcher = (value: string) => boolean;

/**
 * Compiles a `matches` pattern with full-match semantics: the pattern must match the whole value, as if
 * written `^(?:pattern)$`, so `acme/.*` cannot be satisfied by `evil/acme/x` (no prefix or suffix tricks).
 * RE2 syntax; throws RE2JS syntax errors for patterns RE2 refuses (backreferences, lookaround).
 */
export function compileRegex(pattern: string): StringMatcher {
  const re = RE2().compile(pattern);
  return (value) => re.testExact(value);
}

/** Returns why `pattern` does not compile under RE2, or undefined when it does. */
export function regexProblem(pattern: string): string | undefined {
  try {
    RE2().compile(pattern);
    return undefined;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}

/**
 * Compiles a glob anchored at both ends: `*` is any run of characters (including none), `?` exactly one
 * character (code point), everything else literal. Single-star globs (`*.example.com`, `refs/tags/v*`)
 * become a length check plus startsWith/endsWith; the rest go through RE2, which is linear-time.
 */
export function compileGlob(pattern: string): StringMatcher {
  if (!pattern.includes('?')) {
    const parts = pattern.split('*');
    if (parts.length === 1) return (value) => value === pattern;
    if (parts.length === 2) {
      const [prefix, suffix] = parts as [string, string];
      const minLength = prefix.length + suffix.length;
      return (value) => value.length >= minLength && value.startsWith(prefix) && value.endsWith(suffix);
    }
  }
  let source = '';
  let literal = '';
  const flush = () => {
    if (literal) source += RE2().quote(literal);
    literal = '';
  };
  for (const ch of pattern) {
    if (ch === '*') {
      flush();
      source += '(?s:.*)';
    } else if (ch === '?') {
      flush();
      source += '(?s:.)';
    } else {
      literal += ch;
    }
  }
  flush();
  const re = RE2().compile(source);
  return (value) => re.testExact(value);
}
