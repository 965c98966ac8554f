/**
 * The keys a gateway reads at start besides its configuration file: the signing keys file
 * (`signing.keys_file`, every algorithm the configuration signs with) and, with a shared store, the rule
 * that replicas share their keys. `startGateway` and `stsgate check-config` both call `openGatewayKeys`,
 * so check-config refuses exactly what a start refuses, with the same messages.
 */
import { ConfigError, ProblemList } from '../config/problems.js';
import type { GatewayConfig } from '../config/types.js';
import { SigningKeysError, SigningKeysFile } from './signing-keys.js';

const KEYS_FILE = ['signing', 'keys_file'] as const;

/**
 * Opens `signing.keys_file` (undefined when the configuration has none: keys are generated at start).
 * Throws a `ConfigError` from `source` listing every problem by setting path, each naming the keys file.
 */
export async function openGatewayKeys(config: GatewayConfig, source = 'configuration', now = Date.now()): Promise<SigningKeysFile | undefined> {
  const problems = new ProblemList();
  if (config.store.kind !== 'memory') {
    // Replicas sharing a store must share keys too, or one replica's credentials fail on the next.
    const why = `the ${config.store.kind} Redis store is shared between gateway processes, whose keys must be the same`;
    if (!config.signing.keysFile) problems.add([...KEYS_FILE], `missing, expected a keys file: ${why} (generated keys differ per process)`);
    if (!config.encryptionKey) problems.add(['credentials', 'encryption_key'], `missing, expected a key: ${why} (a generated key differs per process, so stored secrets would not open on the next)`);
  }
  const file = config.signing.keysFile;
  let keysFile: SigningKeysFile | undefined;
  if (file) {
    try {
      keysFile = await SigningKeysFile.open(file, config.signing.algorithm);
    } catch (err) {
      if (!(err instanceof SigningKeysError)) throw err;
      for (const problem of err.problems) problems.add([...KEYS_FILE], problem);
    }
  }
  if (keysFile && file) {
    const set = keysFile.set;
    // Access tokens sign with signing.algorithm from the first request: a key must sign now.
    try {
      set.current(now, config.signing.algorithm);
    } catch (err) {
      const alg = config.signing.algorithm;
      problems.add([...KEYS_FILE], `${file}: ${(err as Error).message}, expected an ${alg} key that signs now, as signing.algorithm is ${alg} (add one: stsgate keys generate --alg ${alg})`);
    }
    // Every target's algorithm needs a key: fail at start, not at the first token a cloud asks for.
    for (const [index, target] of (config.targets ?? []).entries()) {
      if (target.algorithm === config.signing.algorithm || set.keys.some((key) => key.alg === target.algorithm)) continue;
      problems.add([...KEYS_FILE], `${file}: found no ${target.algorithm} key, expected one for targets[${index}] ${JSON.stringify(target.name)}, which signs with ${target.algorithm} (add one: stsgate keys generate --alg ${target.algorithm})`);
    }
  }
  if (!problems.empty) {
    keysFile?.stop();
    throw new ConfigError(problems.items, source);
  }
  return keysFile;
}
