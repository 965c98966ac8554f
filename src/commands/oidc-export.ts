/**
 * `stsgate oidc export --config FILE --out DIR`: writes `DIR/.well-known/openid-configuration` and
 * `DIR/.well-known/jwks.json` exactly as the gateway serves them, for static hosting (an S3 bucket or GCS
 * behind the public URL) when the clouds that must fetch them cannot reach the gateway itself. Only the
 * public halves of the keys are written (the same function builds the served JWKS).
 */
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadConfig } from '../config/load.js';
import { discoveryClaims, discoveryDocument, publishedJwks } from '../credentials/discovery.js';
import { loadSigningKeys } from '../credentials/signing-keys.js';

export async function oidcExportCommand(configFile: string, outDir: string, write: (line: string) => void): Promise<number> {
  const config = await loadConfig(configFile);
  if (!config.signing.keysFile) {
    write('stsgate: signing.keys_file is not set: keys generated at start cannot be published ahead (set a keys file first)');
    return 1;
  }
  const keys = await loadSigningKeys(config.signing.keysFile, config.signing.algorithm);
  const wellKnown = join(outDir, '.well-known');
  await mkdir(wellKnown, { recursive: true });
  const documents: [string, unknown][] = [
    ['openid-configuration', discoveryDocument({ publicUrl: config.publicUrl, introspectionMethods: [...new Set((config.introspection?.clients ?? []).map((c) => c.auth))], ...discoveryClaims(config) }, keys)],
    ['jwks.json', publishedJwks(keys)],
  ];
  for (const [name, document] of documents) {
    const file = join(wellKnown, name);
    await writeFile(`${file}.tmp`, `${JSON.stringify(document, null, 2)}\n`, { mode: 0o644 });
    await rename(`${file}.tmp`, file);
    write(`wrote ${file}`);
  }
  write(`Host both under ${config.publicUrl}/.well-known/ (Content-Type application/json), and export again after every key rotation, before the new key's nbf.`);
  return 0;
}
