/**
 * Loading the gateway file: YAML → `${VAR}` interpolation → `<name>_file` secrets → zod validation and
 * consistency checks, whose transforms give the `GatewayConfig`. Every problem is collected and thrown at once as a `ConfigError`.
 */
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { parseDocument } from 'yaml';
import { providerDefinitions } from './provider-definitions.js';
import { checkConsistency } from './consistency.js';
import { interpolateTree, resolveSecretFiles } from './interpolate.js';
import { ConfigError, ProblemList, found } from './problems.js';
import { checkSafety } from './safety.js';
import { isMapping } from '../util/validation.js';
import { configErrorMap, gatewaySchema } from './schema.js';
import type { GatewayConfig } from './types.js';

export { ConfigError } from './problems.js';

type Env = Readonly<Record<string, string | undefined>>;

/** Aliases a document may expand; bounds "billion laughs" documents. */
const MAX_ALIAS_COUNT = 100;

/** Parses YAML into plain data, reporting syntax errors, duplicate keys and unknown tags as problems. */
function parseYaml(text: string, problems: ProblemList): unknown {
  // prettyErrors computes line/column positions; the excerpt it appends to the message is dropped.
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true, strict: true });
  for (const error of [...doc.errors, ...doc.warnings]) {
    const position = error.linePos?.[0];
    const where = position ? `line ${position.line}, column ${position.col}` : '(yaml)';
    const message = error.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
    problems.add(where, `${message}, expected valid YAML`);
  }
  if (!problems.empty) return undefined;
  try {
    return doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (err) {
    problems.add('(yaml)', `${err instanceof Error ? err.message : String(err)}, expected valid YAML`);
    return undefined;
  }
}

/** Whether the value at `path` is missing from `tree` because `interpolated` gave it as `<name>_file` instead. */
function givenAsFile(interpolated: unknown, tree: unknown, path: readonly PropertyKey[]): boolean {
  const name = path.at(-1);
  if (typeof name !== 'string') return false;
  const parentOf = (root: unknown): unknown =>
    path.slice(0, -1).reduce<unknown>((node, key) => (node !== null && typeof node === 'object' && Object.hasOwn(node, key as string) ? (node as Record<string, unknown>)[key as string] : undefined), root);
  const raw = parentOf(interpolated);
  const resolved = parentOf(tree);
  return isMapping(raw) && Object.hasOwn(raw, `${name}_file`) && !(isMapping(resolved) && Object.hasOwn(resolved, name));
}

/**
 * An introspection client's or an OpenID Provider client's `secret:` must come from the environment (`\${VAR}`) or a file (`secret_file`):
 * written into the gateway file, it would travel wherever the file does (ConfigMaps, repositories).
 */
function literalClientSecrets(tree: Record<string, unknown>, problems: ProblemList): void {
  const introspection = tree.introspection;
  const sections: [readonly PropertyKey[], unknown][] = [
    [['introspection', 'clients'], isMapping(introspection) ? introspection.clients : undefined],
    // The OpenID Provider's clients: the same rule for their secrets.
    [['clients'], tree.clients],
  ];
  for (const [path, clients] of sections) {
    (Array.isArray(clients) ? clients : []).forEach((client: unknown, index) => {
      if (isMapping(client) && typeof client.secret === 'string' && !client.secret.includes('${')) {
        problems.add([...path, index, 'secret'], 'found a secret written in the file, expected secret: ${VAR} from the environment or secret_file: PATH');
      }
    });
  }
}

/**
 * A directory provider's `bind_password:` likewise (`\${VAR}` or `bind_password_file`): it is a directory
 * credential that can read every user and group.
 */
function literalBindPasswords(tree: Record<string, unknown>, problems: ProblemList): void {
  const providers = Array.isArray(tree.providers) ? tree.providers : [];
  providers.forEach((provider: unknown, index) => {
    if (isMapping(provider) && typeof provider.bind_password === 'string' && provider.bind_password !== '' && !provider.bind_password.includes('${')) {
      problems.add(['providers', index, 'bind_password'], 'found a password written in the file, expected bind_password: ${VAR} from the environment or bind_password_file: PATH');
    }
  });
}

/**
 * Parses and validates gateway YAML text. `env` feeds `${VAR}` interpolation; relative `<name>_file`
 * paths resolve against `baseDir`. Throws `ConfigError` listing every problem.
 */
export function parseConfig(text: string, env: Env = process.env, baseDir: string = process.cwd(), source = 'configuration'): GatewayConfig {
  const problems = new ProblemList();
  const parsed = parseYaml(text, problems);
  if (!problems.empty) throw new ConfigError(problems.items, source);
  if (!isMapping(parsed)) {
    const what = parsed === null || parsed === undefined ? 'found an empty document' : found(parsed);
    problems.add([], `${what}, expected a mapping of settings (public_url, issuers, roles, rules, ...)`);
    throw new ConfigError(problems.items, source);
  }

  literalClientSecrets(parsed, problems);
  literalBindPasswords(parsed, problems);
  const interpolated = interpolateTree(parsed, env, problems) as Record<string, unknown>;
  const tree = resolveSecretFiles(interpolated, baseDir, problems) as Record<string, unknown>;

  // Plain-http acceptance depends on this flag, so it is read (strictly: only `true`) before validation.
  const dev = tree.dev;
  const allowInsecureHttp = isMapping(dev) && dev.allow_insecure_http === true;
  // The provider definitions (providers/*.yaml) are read here, once, not when the schema module is imported.
  const result = gatewaySchema({ allowInsecureHttp, providers: providerDefinitions() }).safeParse(tree, { error: configErrorMap });
  if (!result.success) {
    for (const issue of result.error.issues) {
      // A secret given as `<name>_file` that could not be read is reported once, at `<name>_file`, not again as missing.
      if (givenAsFile(interpolated, tree, issue.path)) continue;
      problems.add(issue.path, issue.message);
    }
  }
  checkConsistency(tree, problems);
  if (!result.success || !problems.empty) throw new ConfigError(problems.items, source);

  // A well-formed, consistent file can still be dangerous (a rule any GitHub repository can satisfy).
  const config: GatewayConfig = result.data;
  checkSafety(config, problems);
  if (!problems.empty) throw new ConfigError(problems.items, source);
  return config;
}

/** Reads, validates and normalizes the gateway file; throws `ConfigError` with every problem at once. */
export async function loadConfig(file: string, env: Env = process.env): Promise<GatewayConfig> {
  const path = resolve(file);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    throw new ConfigError([{ path: file, message: `cannot read the configuration file (${code}), expected a readable YAML file` }], file);
  }
  return parseConfig(text, env, dirname(path), file);
}
