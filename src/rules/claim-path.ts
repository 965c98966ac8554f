/**
 * Claim paths: `repository`, `org.team`, `groups.0`. Segments are split on dots; `\.` is a literal dot
 * and `\\` a literal backslash, so namespaced claims such as `https://acme\.com/roles` stay addressable.
 */

/** Marks a claim path that does not resolve; distinct from every JSON value, including `null`. */
export const MISSING: unique symbol = Symbol('missing claim');
export type Missing = typeof MISSING;

/** Splits a claim path into segments; returns a description of the fault when it is malformed. */
export function parseClaimPath(path: string): { segments: string[] } | { error: string } {
  if (path.length === 0) return { error: 'an empty claim path' };
  const segments: string[] = [];
  let current = '';
  for (let i = 0; i < path.length; i++) {
    const ch = path[i]!;
    if (ch === '\\') {
      const next = path[i + 1];
      if (next !== '.' && next !== '\\') return { error: `a stray backslash at offset ${i} (only \\. and \\\\ are escapes)` };
      current += next;
      i++;
    } else if (ch === '.') {
      if (current.length === 0) return { error: `an empty segment at offset ${i}` };
      segments.push(current);
      current = '';
    } else {
      current += ch;
    }
  }
  if (current.length === 0) return { error: 'an empty last segment' };
  segments.push(current);
  return { segments };
}

const ARRAY_INDEX = /^(?:0|[1-9][0-9]*)$/;

/**
 * Resolves a parsed claim path over own properties only. The prototype chain is never consulted, so
 * `__proto__`, `constructor` or `toString` are ordinary names that exist only if the token carries them.
 * Arrays are indexed by canonical decimal indexes only (`groups.0`, never `groups.length`).
 * An own property holding `undefined` counts as missing (JSON cannot produce it).
 */
export function resolveClaim(claims: unknown, segments: readonly string[]): unknown {
  let current: unknown = claims;
  for (const segment of segments) {
    if (current === null || typeof current !== 'object') return MISSING;
    if (Array.isArray(current)) {
      if (!ARRAY_INDEX.test(segment)) return MISSING;
      const index = Number(segment);
      if (index >= current.length) return MISSING;
      current = current[index];
    } else {
      if (!Object.hasOwn(current, segment)) return MISSING;
      current = (current as Record<string, unknown>)[segment];
    }
    if (current === undefined) return MISSING;
  }
  return current;
}
