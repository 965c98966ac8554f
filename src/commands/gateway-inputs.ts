/**
 * Everything `stsgate serve` reads before it opens a port: the configuration file (with its `<name>_file`
 * secrets, the encryption key, the provider definitions and the store's settings, all checked by the
 * loader) and the signing keys file. `serve` and `check-config` both call `loadGatewayInputs`, so a
 * configuration check-config calls valid is one serve starts with.
 */
import { loadConfig } from '../config/load.js';
import type { GatewayConfig } from '../config/types.js';
import { openGatewayKeys } from '../credentials/gateway-keys.js';
import type { SigningKeysFile } from '../credentials/signing-keys.js';

/** A configuration ready to start: validated, with its keys file (if it names one) read and checked. */
export interface GatewayInputs {
  config: GatewayConfig;
  /** Not yet watched for rotation: `startGateway` starts that. */
  keysFile: SigningKeysFile | undefined;
}

/**
 * Loads `file` and what it points to. Throws a `ConfigError` from `file` listing every problem by
 * setting path: the file's own first; when it has none, those of the keys it names.
 */
export async function loadGatewayInputs(file: string, env: Readonly<Record<string, string | undefined>> = process.env): Promise<GatewayInputs> {
  const config = await loadConfig(file, env);
  return { config, keysFile: await openGatewayKeys(config, file) };
}
