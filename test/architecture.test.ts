/**
 * Imports point one way (ARCHITECTURE.md, style.md): commands and the composition root -> http ->
 * services -> store interface, rules, domain, errors and the other leaves. Only the composition root and
 * the commands import concrete store adapters; nothing but main.ts imports http/; rules/, domain/ and
 * errors/ import no I/O; there is no import cycle anywhere. Every folder of src/ has a row, so a new
 * folder fails here until someone decides where it sits.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { checkLayering, importsOf, sourceFiles, type LayerPolicy } from './support/layering.js';

const SRC = join(import.meta.dirname, '..', 'src');

/** The leaves: pure or near-pure modules every layer above may use. */
const LEAVES = ['util', 'domain', 'errors', 'jwt', 'rules', 'config', 'observability'] as const;
/** What a service may use: the leaves and the Store interface (never an adapter: see concreteAdapters). */
const SERVICE_BASE = [...LEAVES, 'store'] as const;
/** Everything below the HTTP layer. */
const BELOW_HTTP = [...SERVICE_BASE, 'issuers', 'limits', 'credentials', 'idp', 'op'] as const;

const POLICY: LayerPolicy = {
  mayImport: {
    // Composition root: the one place that knows every concrete part.
    'main.ts': 'anything',
    'cluster.ts': [...BELOW_HTTP, 'main.ts'],
    // The `stsgate` command and its subcommands: start the root, never reach into http/.
    'cli.ts': [...BELOW_HTTP, 'main.ts', 'cluster.ts', 'commands', 'demo', 'terminal'],
    commands: [...BELOW_HTTP],
    demo: [...BELOW_HTTP, 'main.ts'],
    terminal: [...BELOW_HTTP],
    // Protocol layer: parse, call a service, render.
    http: [...BELOW_HTTP],
    // Services, ordered so that none needs the one above it. op/ (stsgate as an OpenID Provider) signs
    // people in through idp/'s browser sessions.
    op: [...SERVICE_BASE, 'issuers', 'limits', 'credentials', 'idp'],
    idp: [...SERVICE_BASE, 'issuers', 'limits', 'credentials'],
    credentials: [...SERVICE_BASE, 'issuers', 'limits'],
    issuers: [...SERVICE_BASE],
    limits: [...SERVICE_BASE],
    // The Store interface, its keys, and (store/index.ts, store/memory, store/redis) its adapters.
    store: ['util', 'domain', 'errors', 'config', 'observability'],
    // Leaves.
    observability: ['util', 'domain', 'errors', 'config'],
    config: ['util', 'domain', 'errors', 'rules', 'jwt'],
    rules: ['util', 'domain', 'errors'],
    jwt: ['util', 'domain', 'errors'],
    errors: ['domain'],
    domain: [],
    util: [],
  },
  // The audit line describes a service's result; reading its type adds no runtime arrow.
  mayImportTypes: { observability: ['credentials', 'idp', 'issuers'] },
  pure: ['rules', 'domain', 'errors'],
  // A prefix match, as before: `fs` also catches `fs-extra`, `koa` any koa-* middleware.
  ioModules: /^(node:)?(fs|http|https|net|tls|dgram|dns|child_process|cluster|worker_threads|os)|^(ioredis|koa|@koa\/router|pino|prom-client|openid-client|raw-body|undici)/,
  concreteAdapters: {
    files: ['store/index.ts', 'store/memory/', 'store/redis/'],
    importers: ['main.ts', 'cluster.ts', 'cli.ts', 'commands', 'demo', 'store/index.ts'],
  },
};


describe('import direction', () => {
  const violations = checkLayering(SRC, POLICY);

  it('src/ keeps the layers of ARCHITECTURE.md and has no import cycle', () => {
    expect(violations).toEqual([]);
  });

  it('every folder and top-level file of src/ has a row in the layer table', () => {
    expect(violations.filter((violation) => violation.startsWith('no layer:'))).toEqual([]);
    expect(sourceFiles(SRC).length).toBeGreaterThan(50);
  });
});

describe('the checker flags a planted wrong import', () => {
  const roots: string[] = [];
  afterAll(() => roots.forEach((root) => rmSync(root, { recursive: true, force: true })));

  /** A throwaway src/ tree: a clean layered base plus the files given. */
  function tree(files: Record<string, string>): string {
    const root = mkdtempSync(join(tmpdir(), 'stsgate-layering-'));
    roots.push(root);
    const base: Record<string, string> = {
      'main.ts': "import { app } from './http/app.js';\nimport { MemoryStore } from './store/memory/memory-store.js';\nexport { app, MemoryStore };\n",
      'http/app.ts': "import { issue } from '../credentials/issue.js';\nexport const app = issue;\n",
      'credentials/issue.ts': "import type { Store } from '../store/store.js';\nimport { GatewayError } from '../errors/gateway-error.js';\nexport const issue = (store: Store) => new GatewayError(String(store));\n",
      'store/store.ts': 'export interface Store { get(key: string): Promise<string | undefined> }\n',
      'store/memory/memory-store.ts': "import type { Store } from '../store.js';\nexport class MemoryStore implements Partial<Store> {}\n",
      'errors/gateway-error.ts': "import type { Identity } from '../domain/types.js';\nexport class GatewayError extends Error { identity?: Identity }\n",
      'domain/types.ts': 'export interface Identity { subject: string }\n',
      'rules/engine.ts': "import type { Identity } from '../domain/types.js';\nexport const grant = (identity: Identity) => identity.subject;\n",
      // A type-only arrow the table allows (observability may read a service's result type).
      'observability/audit.ts': "import type { issue } from '../credentials/issue.js';\nexport type Issued = ReturnType<typeof issue>;\n",
    };
    for (const [path, text] of Object.entries({ ...base, ...files })) {
      mkdirSync(dirname(join(root, path)), { recursive: true });
      writeFileSync(join(root, path), text);
    }
    return root;
  }

  it('a clean tree passes', () => {
    expect(checkLayering(tree({}), POLICY)).toEqual([]);
  });

  it.each([
    ['a static import up the layers', { 'rules/up.ts': "import { app } from '../http/app.js';\nexport { app };\n" }, 'layer: rules/up.ts -> http/app.ts'],
    ['an import type up the layers', { 'domain/up.ts': "import type { Store } from '../store/store.js';\nexport type S = Store;\n" }, 'layer: domain/up.ts -> store/store.ts'],
    ['a type-only named import up the layers', { 'errors/up.ts': "import { type Identity } from '../domain/types.js';\nimport { type Store } from '../store/store.js';\nexport type T = Identity | Store;\n" }, 'layer: errors/up.ts -> store/store.ts'],
    ['an inline import() type', { 'errors/inline.ts': "export type S = import('../store/store.js').Store;\n" }, 'layer: errors/inline.ts -> store/store.ts'],
    ['a re-export', { 'domain/reexport.ts': "export * from '../credentials/issue.js';\n" }, 'layer: domain/reexport.ts -> credentials/issue.ts'],
    ['a type-only re-export up the layers', { 'errors/types.ts': "export { type Store } from '../store/store.js';\n" }, 'layer: errors/types.ts -> store/store.ts'],
    ['a named re-export', { 'rules/reexport.ts': "export { issue } from '../credentials/issue.js';\n" }, 'layer: rules/reexport.ts -> credentials/issue.ts'],
    ['a side-effect import', { 'rules/side.ts': "import '../credentials/issue.js';\n" }, 'layer: rules/side.ts -> credentials/issue.ts'],
    ['a dynamic import', { 'rules/lazy.ts': "export const load = () => import('../credentials/issue.js');\n" }, 'layer: rules/lazy.ts -> credentials/issue.ts'],
    ['a dynamic import of a computed name', { 'credentials/lazy.ts': "const name = './issue.js';\nexport const load = () => import(name);\n" }, 'unresolved import: credentials/lazy.ts -> <computed dynamic import>'],
    ['a multi-line import', { 'rules/multi.ts': "import {\n  app,\n} from\n  '../http/app.js';\nexport { app };\n" }, 'layer: rules/multi.ts -> http/app.ts'],
    ['a value import where only types may cross', { 'observability/audit.ts': "import { issue } from '../credentials/issue.js';\nexport const issued = issue;\n" }, 'layer: observability/audit.ts -> credentials/issue.ts'],
    ['a service importing http/', { 'credentials/http.ts': "import { app } from '../http/app.js';\nexport { app };\n" }, 'layer: credentials/http.ts -> http/app.ts'],
    ['a route importing a concrete store adapter', { 'http/store.ts': "import { MemoryStore } from '../store/memory/memory-store.js';\nexport { MemoryStore };\n" }, 'concrete adapter: http/store.ts -> store/memory/memory-store.ts'],
    ['a service importing a concrete store adapter', { 'credentials/store.ts': "export const load = () => import('../store/memory/memory-store.js');\n" }, 'concrete adapter: credentials/store.ts -> store/memory/memory-store.ts'],
    ['I/O in rules/', { 'rules/io.ts': "import { readFileSync } from 'node:fs';\nexport const read = readFileSync;\n" }, 'I/O in a pure layer: rules/io.ts -> node:fs'],
    ['I/O in domain/ through a dynamic import', { 'domain/io.ts': "export const redis = () => import('ioredis');\n" }, 'I/O in a pure layer: domain/io.ts -> ioredis'],
    ['a folder with no layer', { 'gadgets/thing.ts': 'export const thing = 1;\n' }, 'no layer: gadgets (add a row to the layer table)'],
    ['an import of a missing file', { 'credentials/missing.ts': "export * from './nowhere.js';\n" }, 'unresolved import: credentials/missing.ts -> ./nowhere.js'],
    ['a two-file cycle', { 'credentials/a.ts': "import { b } from './b.js';\nexport const a = () => b;\n", 'credentials/b.ts': "import type { a } from './a.js';\nexport const b: typeof a | undefined = undefined;\n" }, 'cycle: credentials/a.ts -> credentials/b.ts -> credentials/a.ts'],
    ['a cycle through a dynamic import', { 'store/keys.ts': "export const load = () => import('../store/store.js');\n", 'store/store.ts': "import '../store/keys.js';\nexport interface Store { get(key: string): Promise<string | undefined> }\n" }, 'cycle: store/keys.ts -> store/store.ts -> store/keys.ts'],
  ] as const)('%s', (_name, files, expected) => {
    expect(checkLayering(tree(files), POLICY)).toContain(expected);
  });

  it('an import in a comment or a string is not an import', () => {
    const root = tree({ 'rules/quiet.ts': "// import { app } from '../http/app.js';\nexport const text = \"import('../http/app.js')\";\n" });
    expect(importsOf(root, 'rules/quiet.ts')).toEqual([]);
    expect(checkLayering(root, POLICY)).toEqual([]);
  });
});
