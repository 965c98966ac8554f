/**
 * Imports point one way (style.md): http -> services -> store interface, domain, errors. Only main.ts
 * (and the CLI) import concrete store adapters; rules/, domain/ and errors/ import no I/O.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = join(import.meta.dirname, '..', 'src');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? sourceFiles(join(dir, entry.name)) : entry.name.endsWith('.ts') ? [join(dir, entry.name)] : [],
  );
}

const files = sourceFiles(SRC).map((file) => {
  const text = readFileSync(file, 'utf8');
  const imports = [...text.matchAll(/^\s*(?:import|export)\s[^;]*?from\s+'([^']+)'/gm)].map((m) => m[1]!);
  return { path: relative(SRC, file), imports };
});

const IO_MODULES = /^(node:(fs|http|https|net|child_process|dgram|tls)|fs|http|ioredis|koa|@koa\/router|pino|openid-client|raw-body)/;

describe('import direction', () => {
  it.each(files.filter((f) => /^(rules|domain|errors)\//.test(f.path)).map((f) => [f.path, f.imports]))('%s imports no I/O', (_path, imports) => {
    expect((imports as string[]).filter((i) => IO_MODULES.test(i))).toEqual([]);
  });

  it.each(files.filter((f) => /^(rules|domain|errors)\//.test(f.path)).map((f) => [f.path, f.imports]))('%s imports nothing outside domain, errors, util and itself', (path, imports) => {
    const own = (path as string).split('/')[0];
    const outside = (imports as string[]).filter((i) => i.startsWith('.') && !new RegExp(`^(\\./|\\.\\./(${own}|domain|errors|util))`).test(i));
    expect(outside).toEqual([]);
  });

  it('only the composition root and its factory import concrete store adapters', () => {
    const offenders = files
      .filter((f) => !['main.ts', 'store/index.ts'].includes(f.path) && !f.path.startsWith('store/'))
      .filter((f) => f.imports.some((i) => /store\/(memory|redis)\//.test(i)))
      .map((f) => f.path);
    expect(offenders).toEqual([]);
  });

  it('nothing imports the HTTP layer but the composition root', () => {
    const offenders = files.filter((f) => !f.path.startsWith('http/') && f.path !== 'main.ts' && f.imports.some((i) => /\/http\//.test(i))).map((f) => f.path);
    expect(offenders).toEqual([]);
  });
});
