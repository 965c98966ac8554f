/**
 * A small import-graph checker for src/: reads every import form TypeScript knows (static imports,
 * `import type`, `export ... from`, side-effect imports, dynamic `import()` and `import('...')` types)
 * from the parsed source rather than from regexes, so a comment or a string never counts and a
 * multi-line import never slips through. test/architecture.test.ts feeds it the layer policy of
 * ARCHITECTURE.md.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import ts from 'typescript';

/** One import of one file: what it names, where that resolves in src/ (relative imports only) and whether only types cross. */
export interface ImportEdge {
  from: string;
  specifier: string;
  /** src-relative path of the imported file, or undefined for a package or node: built-in */
  target?: string;
  typeOnly: boolean;
  dynamic: boolean;
}

/** The layer a folder of src/ (or a file at its top) belongs to, and which layers it may import. */
export interface LayerPolicy {
  /** top-level folder name or top-level file (`main.ts`) -> the folders/files it may import besides itself */
  mayImport: Record<string, readonly string[] | 'anything'>;
  /** arrows allowed for `import type` only (no runtime dependency), e.g. observability reading a service's result type */
  mayImportTypes?: Record<string, readonly string[]>;
  /** folders whose files may import no I/O module */
  pure: readonly string[];
  /** package names or node: built-ins that do I/O */
  ioModules: RegExp;
  /** files (src-relative, prefix match) that are concrete adapters, and the units allowed to import them */
  concreteAdapters: { files: readonly string[]; importers: readonly string[] };
}

/** A broken rule, as a stable one-line text (`kind: from -> target`) so known exceptions can be listed by value. */
export type Violation = string;

/** Every .ts file under dir (declaration files included: they may import too), src-relative with `/` separators. */
export function sourceFiles(srcDir: string, dir = srcDir): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .flatMap((entry) => (entry.isDirectory() ? sourceFiles(srcDir, join(dir, entry.name)) : entry.name.endsWith('.ts') ? [relative(srcDir, join(dir, entry.name))] : []))
    .map((path) => path.split(sep).join('/'))
    .sort();
}

/** The unit of layering a src-relative path belongs to: its top folder, or the file itself at the top. */
export function unitOf(path: string): string {
  const slash = path.indexOf('/');
  return slash === -1 ? path : path.slice(0, slash);
}

function resolveRelative(srcDir: string, fromFile: string, specifier: string): string | undefined {
  // NodeNext style: './x.js' names './x.ts'; a folder import names its index.ts.
  const base = resolve(srcDir, dirname(fromFile), specifier).replace(/\.js$/, '');
  for (const candidate of [`${base}.ts`, `${base}.d.ts`, join(base, 'index.ts')]) {
    if (existsSync(candidate)) return relative(srcDir, candidate).split(sep).join('/');
  }
  return undefined;
}

/** The imports of one file, every syntactic form included. */
export function importsOf(srcDir: string, file: string): ImportEdge[] {
  const text = readFileSync(join(srcDir, file), 'utf8');
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const edges: ImportEdge[] = [];
  const add = (specifier: string, typeOnly: boolean, dynamic: boolean) => {
    const target = specifier.startsWith('.') ? (resolveRelative(srcDir, file, specifier) ?? `unresolved:${specifier}`) : undefined;
    edges.push({ from: file, specifier, target, typeOnly, dynamic });
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node) && ts.isStringLiteral(node.moduleSpecifier)) {
      const clause = node.importClause;
      // `import type {...}`, or `import { type A, type B }` with no value binding at all, is erased at runtime.
      const typeOnly =
        clause !== undefined &&
        (clause.isTypeOnly ||
          (clause.name === undefined &&
            clause.namedBindings !== undefined &&
            ts.isNamedImports(clause.namedBindings) &&
            clause.namedBindings.elements.length > 0 &&
            clause.namedBindings.elements.every((element) => element.isTypeOnly)));
      add(node.moduleSpecifier.text, typeOnly, false);
    } else if (ts.isExportDeclaration(node) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
      const clause = node.exportClause;
      const typeOnly = node.isTypeOnly || (clause !== undefined && ts.isNamedExports(clause) && clause.elements.length > 0 && clause.elements.every((element) => element.isTypeOnly));
      add(node.moduleSpecifier.text, typeOnly, false);
    } else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference) && ts.isStringLiteral(node.moduleReference.expression)) {
      add(node.moduleReference.expression.text, node.isTypeOnly, false);
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      const [argument] = node.arguments;
      if (argument && ts.isStringLiteralLike(argument)) add(argument.text, false, true);
      else edges.push({ from: file, specifier: '<computed>', target: 'unresolved:<computed dynamic import>', typeOnly: false, dynamic: true });
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument) && ts.isStringLiteral(node.argument.literal)) {
      add(node.argument.literal.text, true, false);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return edges;
}

/** A cycle written from its smallest file, so the text does not depend on where the walk started. */
function canonicalCycle(members: string[]): string {
  const start = members.indexOf([...members].sort()[0]!);
  const rotated = [...members.slice(start), ...members.slice(0, start)];
  return [...rotated, rotated[0]].join(' -> ');
}

/** Every import cycle among src files, each as `a -> b -> a` (one per strongly connected back edge). */
export function importCycles(edges: readonly ImportEdge[]): string[] {
  const graph = new Map<string, string[]>();
  for (const edge of edges) {
    if (!edge.target || edge.target.startsWith('unresolved:')) continue;
    graph.set(edge.from, [...(graph.get(edge.from) ?? []), edge.target]);
  }
  const cycles: string[] = [];
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const walk = (node: string): void => {
    state.set(node, 'open');
    stack.push(node);
    for (const next of new Set(graph.get(node) ?? [])) {
      if (state.get(next) === 'open') cycles.push(canonicalCycle(stack.slice(stack.indexOf(next))));
      else if (!state.has(next)) walk(next);
    }
    stack.pop();
    state.set(node, 'done');
  };
  for (const node of [...graph.keys()].sort()) if (!state.has(node)) walk(node);
  return cycles;
}

/** Checks src/ against the policy; returns every violation, sorted, or [] when the tree keeps the layers. */
export function checkLayering(srcDir: string, policy: LayerPolicy): Violation[] {
  const files = sourceFiles(srcDir);
  const edges = files.flatMap((file) => importsOf(srcDir, file));
  const violations = new Set<Violation>();

  for (const unit of new Set(files.map(unitOf))) {
    if (!(unit in policy.mayImport)) violations.add(`no layer: ${unit} (add a row to the layer table)`);
  }
  for (const edge of edges) {
    const fromUnit = unitOf(edge.from);
    if (edge.target?.startsWith('unresolved:')) {
      violations.add(`unresolved import: ${edge.from} -> ${edge.target.slice('unresolved:'.length)}`);
      continue;
    }
    if (edge.target === undefined) {
      if (policy.pure.includes(fromUnit) && policy.ioModules.test(edge.specifier)) violations.add(`I/O in a pure layer: ${edge.from} -> ${edge.specifier}`);
      continue;
    }
    const toUnit = unitOf(edge.target);
    const allowed = policy.mayImport[fromUnit];
    const typeAllowed = policy.mayImportTypes?.[fromUnit] ?? [];
    if (toUnit !== fromUnit && allowed !== undefined && allowed !== 'anything' && !allowed.includes(toUnit) && !(edge.typeOnly && typeAllowed.includes(toUnit))) {
      violations.add(`layer: ${edge.from} -> ${edge.target}`);
    }
    const concrete = policy.concreteAdapters;
    const intoAdapter = concrete.files.find((prefix) => edge.target!.startsWith(prefix));
    if (intoAdapter && !edge.from.startsWith(intoAdapter) && !concrete.importers.some((importer) => edge.from === importer || unitOf(edge.from) === importer)) {
      violations.add(`concrete adapter: ${edge.from} -> ${edge.target}`);
    }
  }
  for (const cycle of importCycles(edges)) violations.add(`cycle: ${cycle}`);
  return [...violations].sort();
}
