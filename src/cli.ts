/** The `stsgate` command: thin; every subcommand calls into the modules. */
import { link, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import type { JWK } from 'jose';
import { releaseWorker } from './cluster.js';
import { ConfigError } from './config/problems.js';
import type { SigningAlgorithm } from './config/types.js';
import { RevocationRequestError } from './credentials/revocations.js';
import { TerminalUsageError } from './terminal/gateway-url.js';

// Each command loads only what it needs (dynamic imports below): `stsgate credentials` runs as an AWS
// credential_process on every SDK refresh and must not pay for loading the gateway (Koa, ioredis, zod).

const USAGE = `usage:
  stsgate serve --config FILE
  stsgate check-config --config FILE [--connect]
  stsgate explain --config FILE (--identity FILE|- | --token FILE|-)
  stsgate keys generate [--alg ES256|EdDSA|RS256]
  stsgate keys rotate --file KEYS.json [--alg ES256] [--config FILE | --max-lifetime SECONDS] [--publish-ahead SECONDS]
  stsgate revoke --config FILE (--subject S [--source ID] | --role R | --all) [--issued-before TIME|now] [--reason TEXT]
  stsgate revoke --config FILE --list
  stsgate demo [--port 8080] [--idp-port N]
  stsgate login --gateway URL [--provider P] [--role R] [--no-browser]
  stsgate credentials (--role R | --target NAME) [--gateway URL] [--format json|token]
  stsgate token --target NAME [--gateway URL] [--format jwt|gcp-executable]
  stsgate kube-token --target NAME [--gateway URL]
  stsgate kubeconfig --target NAME [--gateway URL] [--server URL] [--certificate-authority FILE] [--insecure-skip-tls-verify] [--kubeconfig FILE] [--context NAME]
  stsgate oidc export --config FILE --out DIR
  stsgate logout [--gateway URL]`;

const write = (line: string) => process.stdout.write(`${line}\n`);

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: 'string', short: 'c' },
      identity: { type: 'string' },
      alg: { type: 'string', default: 'ES256' },
      file: { type: 'string' },
      'publish-ahead': { type: 'string', default: '900' },
      'max-lifetime': { type: 'string' },
      port: { type: 'string' },
      gateway: { type: 'string' },
      provider: { type: 'string' },
      role: { type: 'string' },
      subject: { type: 'string' },
      source: { type: 'string' },
      all: { type: 'boolean' },
      list: { type: 'boolean' },
      'issued-before': { type: 'string' },
      reason: { type: 'string' },
      'no-browser': { type: 'boolean' },
      connect: { type: 'boolean' },
      target: { type: 'string' },
      server: { type: 'string' },
      'certificate-authority': { type: 'string' },
      'insecure-skip-tls-verify': { type: 'boolean' },
      kubeconfig: { type: 'string' },
      context: { type: 'string' },
      out: { type: 'string' },
      format: { type: 'string' },
      token: { type: 'string' },
      'idp-port': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const [command, sub] = positionals;
  if (values.help || command === undefined) {
    write(USAGE);
    return command === undefined && !values.help ? 2 : 0;
  }
  switch (command) {
    case 'serve':
      return serve(requireOption(values.config, '--config'));
    case 'check-config': {
      const { checkConfigCommand } = await import('./commands/check-config.js');
      const problems = (line: string) => process.stderr.write(`${line}\n`);
      return checkConfigCommand(requireOption(values.config, '--config'), { out: write, err: problems }, { connect: values.connect === true });
    }
    case 'explain': {
      const { explainCommand } = await import('./commands/explain.js');
      return explainCommand(
        { configFile: requireOption(values.config, '--config'), ...(values.identity !== undefined ? { identity: values.identity } : {}), ...(values.token !== undefined ? { token: values.token } : {}) },
        write,
      );
    }
    case 'revoke': {
      const { revokeCommand } = await import('./commands/revoke.js');
      return revokeCommand(
        {
          configFile: requireOption(values.config, '--config'),
          ...(values.subject !== undefined ? { subject: values.subject } : {}),
          ...(values.source !== undefined ? { source: values.source } : {}),
          ...(values.role !== undefined ? { role: values.role } : {}),
          ...(values.all ? { all: true } : {}),
          ...(values.list ? { list: true } : {}),
          ...(values['issued-before'] !== undefined ? { issuedBefore: values['issued-before'] } : {}),
          ...(values.reason !== undefined ? { reason: values.reason } : {}),
        },
        write,
      );
    }
    case 'demo': {
      // Loaded only here: the development identity provider (oidc-provider) has no business in `serve`.
      const { demoCommand } = await import('./demo/demo.js');
      return demoCommand({ ...(values.port !== undefined ? { port: portNumber(values.port) } : {}), ...(values['idp-port'] !== undefined ? { idpPort: portNumber(values['idp-port']) } : {}) });
    }
    case 'login': {
      const { loginCommand } = await import('./terminal/commands.js');
      return loginCommand({
        gateway: requireOption(values.gateway, '--gateway'),
        ...(values.provider !== undefined ? { provider: values.provider } : {}),
        ...(values.role !== undefined ? { role: values.role } : {}),
        openBrowser: values['no-browser'] !== true,
      });
    }
    case 'credentials': {
      const { credentialsCommand } = await import('./terminal/commands.js');
      return credentialsCommand(
        {
          ...(values.gateway !== undefined ? { gateway: values.gateway } : {}),
          ...(values.role !== undefined ? { role: values.role } : {}),
          ...(values.target !== undefined ? { target: values.target } : {}),
          ...(values.format !== undefined ? { format: values.format } : {}),
        },
        write,
      );
    }
    case 'token':
    case 'kube-token': {
      const { kubeTokenCommand, tokenCommand } = await import('./terminal/commands.js');
      const options = { target: requireOption(values.target, '--target'), ...(values.gateway !== undefined ? { gateway: values.gateway } : {}) };
      return command === 'token' ? tokenCommand({ ...options, ...(values.format !== undefined ? { format: values.format } : {}) }, write) : kubeTokenCommand(options, write);
    }
    case 'kubeconfig': {
      const { kubeconfigCommand } = await import('./terminal/commands.js');
      return kubeconfigCommand({
        target: requireOption(values.target, '--target'),
        ...(values.gateway !== undefined ? { gateway: values.gateway } : {}),
        ...(values.server !== undefined ? { server: values.server } : {}),
        ...(values['certificate-authority'] !== undefined ? { certificateAuthority: values['certificate-authority'] } : {}),
        ...(values['insecure-skip-tls-verify'] ? { insecureSkipTlsVerify: true } : {}),
        ...(values.kubeconfig !== undefined ? { kubeconfig: values.kubeconfig } : {}),
        ...(values.context !== undefined ? { context: values.context } : {}),
      });
    }
    case 'oidc': {
      if (sub !== 'export') break;
      const { oidcExportCommand } = await import('./commands/oidc-export.js');
      return oidcExportCommand(requireOption(values.config, '--config'), requireOption(values.out, '--out'), write);
    }
    case 'logout': {
      const { logoutCommand } = await import('./terminal/commands.js');
      return logoutCommand(values.gateway !== undefined ? { gateway: values.gateway } : {});
    }
    case 'keys': {
      const { generateSigningJwk } = await import('./credentials/signing-keys.js');
      if (!['ES256', 'EdDSA', 'RS256'].includes(values.alg)) throw new UsageError('--alg must be ES256, EdDSA or RS256');
      const alg = values.alg as SigningAlgorithm;
      if (sub === 'generate') {
        write(JSON.stringify(await generateSigningJwk(alg), null, 2));
        return 0;
      }
      if (sub === 'rotate') {
        return rotate(requireOption(values.file, '--file'), alg, {
          publishAhead: seconds(values['publish-ahead'], '--publish-ahead'),
          maxLifetime: values['max-lifetime'] !== undefined ? seconds(values['max-lifetime'], '--max-lifetime') : undefined,
          configFile: values.config,
        });
      }
      break;
    }
  }
  throw new UsageError(`unknown command: ${positionals.join(' ')}`);
}

/** Runs the gateway (or, with `workers` > 1, the primary that forks it) until SIGTERM or SIGINT. */
async function serve(configFile: string): Promise<number> {
  const [{ loadGatewayInputs }, { DEFAULT_SHUTDOWN }, { isClusterPrimary, reportListening, runPrimary, shareMetricsWithPrimary, workerCount, workerId }, { startGateway }, { createLogger }, { GatewayMetrics }] = await Promise.all([
    import('./commands/gateway-inputs.js'),
    import('./config/schema.js'),
    import('./cluster.js'),
    import('./main.js'),
    import('./observability/logger.js'),
    import('./observability/metrics.js'),
  ]);
  // Everything check-config checks, by the same function: a problem is named by its setting and file.
  const { config, keysFile } = await loadGatewayInputs(configFile);
  const workers = workerCount(config.workers ?? 1);
  const { delaySeconds, graceSeconds } = config.shutdown ?? DEFAULT_SHUTDOWN;
  if (isClusterPrimary(workers)) {
    return runPrimary({ workers, logger: createLogger({ format: config.log?.format }), stopTimeoutMs: (delaySeconds + graceSeconds) * 1000 + 5_000 });
  }
  const id = workerId();
  const logger = id === undefined ? createLogger({ format: config.log?.format }) : createLogger({ format: config.log?.format }).child({ worker: id });
  const metrics = new GatewayMetrics();
  await shareMetricsWithPrimary(metrics);
  const gateway = await startGateway(config, { logger, metrics, ...(keysFile ? { keysFile } : {}) });
  reportListening();
  const signal = await new Promise<string>((resolve) => {
    // Later signals are ignored: shutdown is already bounded by the delay and grace period, and a worker
    // gets the terminal's Ctrl-C and the primary's forwarded signal both.
    const first = (name: string) => {
      process.on('SIGTERM', () => logger.info({ signal: 'SIGTERM' }, 'already shutting down'));
      process.on('SIGINT', () => logger.info({ signal: 'SIGINT' }, 'already shutting down'));
      resolve(name);
    };
    process.once('SIGTERM', () => first('SIGTERM'));
    process.once('SIGINT', () => first('SIGINT'));
  });
  logger.info({ signal }, 'shutting down');
  let code = 0;
  try {
    await gateway.close();
  } catch (err) {
    logger.error({ err: String(err) }, 'shutdown failed');
    code = 1;
  }
  releaseWorker();
  // Everything is closed; a handle some library left open must not keep the process (and the pod) alive.
  setTimeout(() => {
    logger.warn('a handle was still open a second after shutdown; exiting anyway');
    process.exit(code);
  }, 1_000).unref();
  return code;
}

/**
 * Writes the next version of a keys file (see signing-keys.ts for the schedule). A missing file is
 * created with one key that signs at once. The file is replaced atomically, mode 0600, under a lock:
 * two rotations at once would each read the same file and the second rename would drop the first one's
 * key, which may already be signing (or be about to).
 */
async function rotate(file: string, alg: SigningAlgorithm, options: { publishAhead: number; maxLifetime: number | undefined; configFile: string | undefined }): Promise<number> {
  const release = await lockKeysFile(file);
  try {
    return await rotateLocked(file, alg, options);
  } finally {
    await release();
  }
}

/**
 * Takes `<file>.lock`, holding this process's pid: written to a temporary file first and linked into
 * place, so that the lock never exists without its content. As with git's index.lock, a lock that is
 * there refuses the rotation, and one left behind by a rotation that was killed is removed by hand (the
 * message says whether its process still runs): taking over "stale" locks automatically races when two
 * rotations find the same one.
 */
async function lockKeysFile(file: string): Promise<() => Promise<void>> {
  const lock = `${file}.lock`;
  const temporary = join(dirname(file), `.${basename(file)}.lock.${process.pid}.tmp`);
  await writeFile(temporary, `${process.pid}\n`, { mode: 0o600 });
  try {
    await link(temporary, lock);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    const holder = Number((await readFile(lock, 'utf8').catch(() => '')).trim());
    const state = Number.isSafeInteger(holder) && holder > 0 ? (isRunning(holder) ? ` (pid ${holder}, running)` : ` (pid ${holder}, no longer running: remove ${lock} and rotate again)`) : '';
    throw new Error(`another \`stsgate keys rotate\` holds ${lock}${state}; the keys file was not changed`);
  } finally {
    await rm(temporary, { force: true });
  }
  return () => rm(lock, { force: true });
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists, under another user.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function rotateLocked(file: string, alg: SigningAlgorithm, options: { publishAhead: number; maxLifetime: number | undefined; configFile: string | undefined }): Promise<number> {
  const { generateSigningJwk, rotateKeysFile } = await import('./credentials/signing-keys.js');
  const newKey = await generateSigningJwk(alg);
  let next: { keys: unknown[] };
  try {
    const current = JSON.parse(await readFile(file, 'utf8')) as { keys: JWK[] };
    let maxLifetime = options.maxLifetime;
    if (maxLifetime === undefined) {
      if (!options.configFile) throw new UsageError('--config (to read the longest role session) or --max-lifetime is required to rotate');
      const { loadConfig } = await import('./config/load.js');
      const config = await loadConfig(options.configFile);
      // Own tokens live at most the longest role session; a minute of skew on top, as verifiers allow.
      maxLifetime = Math.max(...config.roles.map((r) => r.maxSessionSeconds)) + 60;
    }
    next = rotateKeysFile(current, newKey, { publishAheadSeconds: options.publishAhead, maxTokenLifetimeSeconds: maxLifetime });
    write(`added key ${newKey.kid}: published now, signs from ${new Date((Date.now() / 1000 + options.publishAhead) * 1000).toISOString()}; older keys retire after ${maxLifetime} s more`);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    next = { keys: [newKey] };
    write(`created ${file} with key ${newKey.kid}`);
  }
  const temporary = join(dirname(file), `.${basename(file)}.${process.pid}.tmp`);
  await writeFile(temporary, `${JSON.stringify(next, null, 2)}\n`, { mode: 0o600 });
  await rename(temporary, file);
  return 0;
}

function seconds(value: string, name: string): number {
  if (!/^\d{1,6}$/.test(value)) throw new UsageError(`${name} must be a number of seconds`);
  return Number(value);
}

function portNumber(value: string): number {
  if (!/^\d{1,5}$/.test(value) || Number(value) < 1 || Number(value) > 65_535) throw new UsageError('--port must be a port number (1-65535)');
  return Number(value);
}

class UsageError extends Error {}

function requireOption(value: string | undefined, name: string): string {
  if (!value) throw new UsageError(`${name} is required`);
  return value;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
    } else if (err instanceof UsageError || err instanceof TerminalUsageError || err instanceof RevocationRequestError) {
      process.stderr.write(`${err.message}\n${USAGE}\n`);
      process.exitCode = 2;
      return;
    } else {
      process.stderr.write(`stsgate: ${err instanceof Error ? err.message : String(err)}\n`);
    }
    process.exitCode = 1;
    // A worker that failed to start must let go of the primary's channel, or it would never exit.
    releaseWorker();
  },
);
