/**
 * A real Helm binary for the chart tests, and `helm template` / `helm lint` runs.
 *
 * Helm is found, in order: `$HELM_BIN`; `helm` on PATH; the copy that `npm test`'s pretest step
 * (scripts/fetch-helm.ts) put under node_modules/.cache. The tests themselves never reach the network.
 * Without any of them the rendering tests are skipped, with the reason printed.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { HELM_CACHED_BINARY } from '../../scripts/fetch-helm.js';
import { CHART_DIR } from './chart.js';

function runs(binary: string): boolean {
  return spawnSync(binary, ['version', '--short'], { encoding: 'utf8' }).status === 0;
}

function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const candidate = join(dir, name);
    if (dir && existsSync(candidate)) return candidate;
  }
  return undefined;
}

/** The Helm binary to use, or undefined when none is at hand. */
export function locateHelm(): string | undefined {
  const candidates = [process.env.HELM_BIN, onPath('helm'), HELM_CACHED_BINARY];
  for (const candidate of candidates) if (candidate && existsSync(candidate) && runs(candidate)) return candidate;
  return undefined;
}

export interface HelmRun {
  ok: boolean;
  stdout: string;
  stderr: string;
}

/** Runs helm with the chart directory (or a copy of it) as the working directory. */
export function runHelm(helm: string, args: string[], chartDir = CHART_DIR): HelmRun {
  const result = spawnSync(helm, args, { cwd: chartDir, encoding: 'utf8', env: { ...process.env, HELM_CACHE_HOME: join(tmpdir(), 'stsgate-helm-home'), HELM_CONFIG_HOME: join(tmpdir(), 'stsgate-helm-home'), HELM_DATA_HOME: join(tmpdir(), 'stsgate-helm-home') } });
  return { ok: result.status === 0, stdout: result.stdout, stderr: result.stderr };
}

/** A Kubernetes object as rendered. */
export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [field: string]: unknown;
}

/** Values for one render: files (absolute paths) and `--set-json` pairs. */
export interface RenderInput {
  valuesFiles?: string[];
  setJson?: Record<string, unknown>;
}

function renderArgs(input: RenderInput): string[] {
  const args: string[] = [];
  for (const file of input.valuesFiles ?? []) args.push('--values', file);
  for (const [path, value] of Object.entries(input.setJson ?? {})) args.push('--set-json', `${path}=${JSON.stringify(value)}`);
  return args;
}

/** `helm template` of the chart; parses every rendered document. Throws with Helm's message on failure. */
export function renderChart(helm: string, input: RenderInput = {}): K8sObject[] {
  const run = runHelm(helm, ['template', 'rel', '.', '--namespace', 'stsgate', ...renderArgs(input)]);
  if (!run.ok) throw new Error(run.stderr.trim());
  return parseAllDocuments(run.stdout)
    .map((doc) => {
      if (doc.errors.length > 0) throw new Error(`rendered YAML does not parse: ${doc.errors[0]!.message}`);
      return doc.toJS() as K8sObject | null;
    })
    .filter((obj): obj is K8sObject => obj !== null);
}

/** `helm template` expected to fail: returns Helm's error output. */
export function renderError(helm: string, input: RenderInput): string {
  const run = runHelm(helm, ['template', 'rel', '.', '--namespace', 'stsgate', ...renderArgs(input)]);
  if (run.ok) throw new Error('helm template succeeded, expected it to fail');
  return run.stderr;
}

/** `helm lint --strict` of the chart with the given values. */
export function lintChart(helm: string, input: RenderInput = {}): HelmRun {
  return runHelm(helm, ['lint', '.', '--strict', ...renderArgs(input)]);
}

/**
 * NOTES.txt as `helm install` would print it. `helm template` never renders NOTES.txt, and `helm install
 * --dry-run` needs a cluster; so a copy of the chart wraps the file's text in a `define` and renders it into
 * a ConfigMap, with the same values and context.
 */
export function renderNotes(helm: string, input: RenderInput = {}): string {
  const copy = mkdtempSync(join(tmpdir(), 'stsgate-notes-'));
  try {
    cpSync(CHART_DIR, copy, { recursive: true });
    const notes = readFileSync(join(copy, 'templates', 'NOTES.txt'), 'utf8');
    writeFileSync(join(copy, 'templates', '_notes_probe.tpl'), `{{- define "stsgate.notesProbe" -}}\n${notes}\n{{- end -}}\n`);
    writeFileSync(join(copy, 'templates', 'notes-probe.yaml'), 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes\ndata:\n  notes: {{ include "stsgate.notesProbe" . | toJson }}\n');
    const run = runHelm(helm, ['template', 'stsgate', '.', '--namespace', 'stsgate', '--show-only', 'templates/notes-probe.yaml', ...renderArgs(input)], copy);
    if (!run.ok) throw new Error(run.stderr.trim());
    return (parseAllDocuments(run.stdout)[0]!.toJS() as { data: { notes: string } }).data.notes;
  } finally {
    rmSync(copy, { recursive: true, force: true });
  }
}
