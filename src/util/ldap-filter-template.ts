/**
 * The shape of a configured LDAP filter template (`(&(objectClass=person)(uid={username}))`), checked at
 * config time; the values are filled in, RFC 4515-escaped, by `idp/ldap/filters.ts`. Pure.
 */

const PLACEHOLDER = /\{([a-z_]+)\}/g;

/**
 * What is wrong with a filter template, or undefined: it must be one parenthesized filter with balanced
 * parentheses, use only the allowed placeholders, and use each required one. Checked at config time.
 */
export function filterTemplateProblem(template: string, allowed: readonly string[], required: readonly string[]): string | undefined {
  if (!template.startsWith('(') || !template.endsWith(')')) return 'expected one filter in parentheses, such as (uid={username})';
  let depth = 0;
  for (let i = 0; i < template.length; i++) {
    const c = template[i];
    if (c === '\\') {
      i += 2;
      continue;
    }
    if (c === '(') depth++;
    if (c === ')') depth--;
    if (depth < 0 || (depth === 0 && i < template.length - 1)) return 'the parentheses do not balance into one filter';
  }
  if (depth !== 0) return 'the parentheses do not balance into one filter';
  const used = [...template.matchAll(PLACEHOLDER)].map((m) => m[1]!);
  const unknown = used.find((name) => !allowed.includes(name));
  if (unknown !== undefined) return `unknown placeholder {${unknown}}, expected ${allowed.map((a) => `{${a}}`).join(' or ')}`;
  const missing = required.find((name) => !used.includes(name));
  if (missing !== undefined) return `the filter does not use {${missing}}, so it would match the same entries for everyone`;
  return undefined;
}
