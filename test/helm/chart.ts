/**
 * Reading the chart for the tests: its files, its values with their `# --` documentation, the `.Values`
 * paths its templates use, and a structural check of Go templates. Test support, not product code.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isMap, isScalar, parseDocument, type Node as YamlNode } from 'yaml';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const CHART_DIR = join(REPO_ROOT, 'helm', 'stsgate');
export const EXAMPLE_VALUES = join(CHART_DIR, 'examples', 'production-values.yaml');

export function readChartFile(relative: string): string {
  return readFileSync(join(CHART_DIR, relative), 'utf8');
}

/** Every file under templates/ and its folders, relative to the chart (templates/_helpers.tpl, templates/tests/check-config.yaml, ...). */
export function templateFiles(): string[] {
  return readdirSync(join(CHART_DIR, 'templates'), { recursive: true, encoding: 'utf8' })
    .filter((name) => /\.(yaml|tpl|txt)$/.test(name))
    .map((name) => `templates/${name.split(sep).join('/')}`)
    .sort();
}

export function loadYamlFile(path: string): Record<string, unknown> {
  return parseDocument(readFileSync(path, 'utf8')).toJS() as Record<string, unknown>;
}

/** One key of values.yaml, reached through mappings only (keys inside list items are data, not values). */
export interface ValueEntry {
  path: string;
  /** The `# --` paragraph without its marker, or undefined when the key has none. */
  doc: string | undefined;
  /** A type given as `# -- (type) text`, helm-docs style. */
  declaredType: string | undefined;
  value: unknown;
  /** True when some child key is documented (the parent's row in the table then shows no default). */
  hasDocumentedChildren: boolean;
}

/** The `# --` paragraph of a comment block: the last line starting with `--`, and the lines after it. */
function docParagraph(comment: string | null | undefined): { doc?: string; declaredType?: string } {
  if (!comment) return {};
  const lines = comment.split('\n').map((line) => line.replace(/^ ?/, ''));
  let start = -1;
  lines.forEach((line, i) => {
    if (line.startsWith('-- ') || line === '--') start = i;
  });
  if (start === -1) return {};
  const text = [lines[start]!.slice(2), ...lines.slice(start + 1)].map((l) => l.trim()).join(' ').trim();
  const typed = /^\(([^)]+)\)\s*(.*)$/.exec(text);
  return typed ? { declaredType: typed[1]!, doc: typed[2]! } : { doc: text };
}

/** Every key of a values file in document order, with its documentation. */
export function valueEntries(text: string): ValueEntry[] {
  const doc = parseDocument(text);
  const entries: ValueEntry[] = [];
  const walk = (node: unknown, prefix: string, data: Record<string, unknown>): boolean => {
    if (!isMap(node)) return false;
    let anyDocumented = false;
    node.items.forEach((pair, index) => {
      const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
      const path = prefix ? `${prefix}.${key}` : key;
      // The comment before a collection's first key is kept on the collection itself.
      const keyComment = (pair.key as YamlNode | null)?.commentBefore;
      const comment = keyComment ?? (index === 0 ? node.commentBefore : undefined);
      const { doc: text, declaredType } = docParagraph(comment);
      const value = data[key] ?? null;
      const entry: ValueEntry = { path, doc: text, declaredType, value, hasDocumentedChildren: false };
      entries.push(entry);
      entry.hasDocumentedChildren = isPlainObject(value) && walk(pair.value, path, value);
      anyDocumented ||= text !== undefined;
    });
    return anyDocumented;
  };
  const data = doc.toJS() as unknown;
  if (isPlainObject(data)) walk(doc.contents, '', data);
  return entries;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** A leaf of values.yaml: a key whose value is not a mapping with keys (lists and scalars are leaves). */
export function isLeaf(entry: ValueEntry): boolean {
  const v = entry.value;
  return !(v !== null && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length > 0);
}

export function typeName(entry: ValueEntry): string {
  if (entry.declaredType) return entry.declaredType;
  const v = entry.value;
  if (Array.isArray(v)) return 'list';
  if (v === null) return 'null';
  if (typeof v === 'object') return 'object';
  if (typeof v === 'number') return Number.isInteger(v) ? 'int' : 'float';
  if (typeof v === 'boolean') return 'bool';
  return 'string';
}

/** `.Values.a.b.c` paths used anywhere in a template (also `$.Values...`). */
export function valuesReferences(template: string): string[] {
  return [...template.matchAll(/\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)/g)].map((m) => m[1]!.slice(1));
}

/** Paths whose whole subtree a template consumes: passed to `toYaml` or opened with `with`. */
export function wholeSubtreeReferences(template: string): string[] {
  return [...template.matchAll(/\b(?:toYaml|with)\s+\(?\$?\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)/g)].map((m) => m[1]!.slice(1));
}

/** Go `text/template` actions that open a block closed by `{{ end }}`. */
const BLOCK_KEYWORDS = new Set(['if', 'range', 'with', 'define', 'block']);

/**
 * A structural check of a Go template: every `{{` has its `}}`, comments are closed, quotes and
 * parentheses inside actions balance, and every if/range/with/define/block is closed by `end` (with
 * `else` only inside if/range/with). Returns the problems found, each with its line.
 */
export function goTemplateProblems(text: string): string[] {
  const problems: string[] = [];
  const stack: { keyword: string; line: number }[] = [];
  const lineAt = (offset: number) => text.slice(0, offset).split('\n').length;
  let i = 0;
  while (i < text.length) {
    const open = text.indexOf('{{', i);
    const stray = text.indexOf('}}', i);
    if (stray !== -1 && (open === -1 || stray < open)) {
      problems.push(`line ${lineAt(stray)}: "}}" without "{{"`);
      i = stray + 2;
      continue;
    }
    if (open === -1) break;
    let j = open + 2;
    if (text[j] === '-' && /\s/.test(text[j + 1] ?? '')) j += 2;
    const rest = text.slice(j).trimStart();
    if (rest.startsWith('/*')) {
      const close = text.indexOf('*/', j);
      const after = close === -1 ? -1 : text.slice(close + 2).search(/\S/);
      const tail = close === -1 ? '' : text.slice(close + 2 + Math.max(after, 0));
      if (close === -1 || !(tail.startsWith('}}') || tail.startsWith('-}}'))) {
        problems.push(`line ${lineAt(open)}: comment not closed by "*/}}"`);
        break;
      }
      i = close + 2 + after + (tail.startsWith('-') ? 3 : 2);
      continue;
    }
    // Scan the action, skipping quoted strings, to its closing "}}".
    let depth = 0;
    let k = j;
    let closed = -1;
    while (k < text.length) {
      const c = text[k]!;
      if (c === '"' || c === '`' || c === "'") {
        const end = c === '`' ? text.indexOf('`', k + 1) : findClosingQuote(text, k + 1, c);
        if (end === -1) {
          problems.push(`line ${lineAt(k)}: unterminated ${c} string`);
          return problems;
        }
        k = end + 1;
        continue;
      }
      if (c === '(') depth++;
      if (c === ')') depth--;
      if (c === '}' && text[k + 1] === '}') {
        closed = k;
        break;
      }
      if (c === '{' && text[k + 1] === '{') break;
      k++;
    }
    if (closed === -1) {
      problems.push(`line ${lineAt(open)}: "{{" without "}}"`);
      return problems;
    }
    if (depth !== 0) problems.push(`line ${lineAt(open)}: unbalanced parentheses`);
    const action = text.slice(j, closed).replace(/-\s*$/, '').trim();
    const word = /^[a-z]+/.exec(action)?.[0] ?? '';
    if (BLOCK_KEYWORDS.has(word)) {
      stack.push({ keyword: word, line: lineAt(open) });
    } else if (word === 'else') {
      const top = stack[stack.length - 1];
      if (!top || !['if', 'range', 'with'].includes(top.keyword)) problems.push(`line ${lineAt(open)}: "else" outside if/range/with`);
    } else if (word === 'end') {
      if (!stack.pop()) problems.push(`line ${lineAt(open)}: "end" without an open block`);
    }
    i = closed + 2;
  }
  for (const open of stack) problems.push(`line ${open.line}: "${open.keyword}" is never closed by "end"`);
  return problems;
}

function findClosingQuote(text: string, from: number, quote: string): number {
  for (let k = from; k < text.length; k++) {
    if (text[k] === '\\') k++;
    else if (text[k] === quote) return k;
    else if (text[k] === '\n') return -1;
  }
  return -1;
}
