/** The `stsgate` command: thin; every subcommand calls into the modules. */
import { readFileSync } from 'node:fs';
import { link, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import type { JWK } from 'jose';
import { releaseWorker } from './cluster.js';
import { ConfigError } from './config/problems.js';
import type { SigningAlgorithm } from './config/types.js';
import { RevocationRequestError } from './credentials/revocations.js';
import { TerminalUsageError } from './terminal/gateway-url.js';

// Each command loads only what it needs (dynamic imports in the actions): `stsgate credentials` runs as an
// AWS credential_process on every SDK refresh and must not pay for loading the gateway (Koa, ioredis, zod).

/** Exit codes, the same for every command (README.md, "Commands"). */
const EXIT = { ok: 0, failure: 1, usage: 2 } as const;

const write = (line: string) => process.stdout.write(`${line}\n`);
// A reader that stops early (`stsgate explain ... | head`) closes the pipe: that ends the command quietly, as
// for any Unix tool, instead of an unhandled EPIPE with a stack trace.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(process.exitCode ?? EXIT.ok);
  throw err;
});

/** A command-line mistake found after parsing (a value out of range, options that exclude each other): exit 2 with the command's help. */
class UsageError extends Error {}

/** The version in package.json (next to `src/` and `dist/`, in the repository and in the image). */
function packageVersion(): string {
  return (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
}

/** The help's closing lines: examples, each with a line saying what it does. */
function examples(...lines: [command: string, what: string][]): string {
  return `\nExamples:\n${lines.map(([command, what]) => `  # ${what}\n  $ ${command}`).join('\n')}\n`;
}

const configOption = () => new Option('-c, --config <file>', 'the gateway configuration (YAML)').makeOptionMandatory();
const gatewayOption = () => new Option('--gateway <url>', 'the gateway (default: the last one signed in to)');

/**
 * Builds the command tree. Every command declares its own options, so a flag another command takes is
 * refused like any unknown one. `run` receives each action's exit code.
 */
function program(run: (code: number) => void): Command {
  const root = new Command('stsgate')
    .description('Identity federation gateway: trade an identity you already have for short-lived, scoped credentials.')
    .version(packageVersion(), '-v, --version', 'print the version')
    .helpOption('-h, --help', 'show this help')
    .helpCommand(false)
    .showHelpAfterError()
    .exitOverride()
    .configureOutput({ outputError: (text, out) => out(text.replace(/^error: /, 'stsgate: ')) })
    .addHelpText('after', '\nExit codes: 0 done, 1 failed, 2 usage error (unknown command or option, missing or bad value).\nRun stsgate help <command> for a command\'s options and examples.\n');

  root
    .command('serve')
    .summary('run the gateway')
    .description('Run the gateway until SIGTERM or SIGINT (with workers > 1, the primary that forks them).')
    .addOption(configOption())
    .option('--port <port>', 'listen on this port instead of listen.port')
    .option('--host <host>', 'listen on this address instead of listen.host')
    .addHelpText('after', examples(['stsgate serve --config /etc/stsgate/gateway.yaml', 'serve as configured'], ['stsgate serve --config gateway.yaml --host 127.0.0.1 --port 18080', 'on loopback only, on another port']))
    .action(async (o: { config: string; port?: string; host?: string }) => {
      run(await serve(o.config, { ...(o.port !== undefined ? { port: portNumber(o.port) } : {}), ...(o.host !== undefined ? { host: hostName(o.host) } : {}) }));
    });

  root
    .command('check-config')
    .summary('validate a configuration and run its tests')
    .description('Validate a configuration file and everything serve loads with it (the keys file too), report every problem by path on stderr (exit 1), and run its tests: cases. A configuration that grants nothing is a warning.')
    .addOption(configOption())
    .option('--connect', 'also PING Redis and fetch each trusted issuer\'s discovery document and JWKS')
    .addHelpText('after', examples(['stsgate check-config --config gateway.yaml', 'check before deploying'], ['stsgate check-config --config gateway.yaml --connect', 'and reach Redis and the issuers']))
    .action(async (o: { config: string; connect?: true }) => {
      const { checkConfigCommand } = await import('./commands/check-config.js');
      const problems = (line: string) => process.stderr.write(`${line}\n`);
      run(await checkConfigCommand(o.config, { out: write, err: problems }, { connect: o.connect === true }));
    });

  root
    .command('explain')
    .summary('show which rules grant an identity which roles, and why')
    .description('Show which rules match an identity (a JSON file: source, subject, claims; or a JWT\'s claims, decoded without verifying it), which condition failed and why, and the targets it may get.')
    .addOption(configOption())
    .option('--identity <file>', 'the identity, as JSON (- reads standard input)')
    .option('--token <file>', 'a JWT whose claims are the identity, decoded, not verified (- reads standard input)')
    .addHelpText('after', examples(['stsgate explain --config gateway.yaml --identity identity.json', 'why does this identity get (or not get) a role?'], ['echo "$TOKEN" | stsgate explain --config gateway.yaml --token -', 'what would this token get?']))
    .action(async (o: { config: string; identity?: string; token?: string }) => {
      if ((o.identity === undefined) === (o.token === undefined)) throw new UsageError('give one of --identity FILE or --token FILE (- reads standard input)');
      const { explainCommand } = await import('./commands/explain.js');
      run(await explainCommand({ configFile: o.config, ...(o.identity !== undefined ? { identity: o.identity } : {}), ...(o.token !== undefined ? { token: o.token } : {}) }, write));
    });

  const keys = root.command('keys').summary('make and rotate signing keys').description('Make and rotate the gateway\'s signing keys.');
  const algOption = () => new Option('--alg <alg>', 'the signing algorithm').choices(['ES256', 'EdDSA', 'RS256']).default('ES256');
  keys
    .command('generate')
    .summary('print a new private JWK')
    .description('Print a new private signing key (JWK) on stdout.')
    .addOption(algOption())
    .addHelpText('after', examples(['stsgate keys generate --alg EdDSA', 'a new Ed25519 key']))
    .action(async (o: { alg: SigningAlgorithm }) => {
      const { generateSigningJwk } = await import('./credentials/signing-keys.js');
      write(JSON.stringify(await generateSigningJwk(o.alg), null, 2));
      run(EXIT.ok);
    });
  keys
    .command('rotate')
    .summary('write the next version of a keys file')
    .description('Write the next version of a keys file: a new key published now that signs after --publish-ahead; older keys retire once their tokens have expired. A missing file is created with one key.')
    .requiredOption('--file <keys.json>', 'the keys file (replaced atomically, mode 0600)')
    .addOption(algOption())
    .option('-c, --config <file>', 'the gateway configuration, to read the longest role session')
    .option('--max-lifetime <seconds>', 'the longest token lifetime (instead of --config)')
    .option('--publish-ahead <seconds>', 'how long the new key is published before it signs', '900')
    .addHelpText('after', examples(['stsgate keys rotate --file /etc/stsgate/keys.json --config gateway.yaml', 'rotate, retiring keys after the longest role session']))
    .action(async (o: { file: string; alg: SigningAlgorithm; config?: string; maxLifetime?: string; publishAhead: string }) => {
      run(
        await rotate(o.file, o.alg, {
          publishAhead: seconds(o.publishAhead, '--publish-ahead'),
          maxLifetime: o.maxLifetime !== undefined ? seconds(o.maxLifetime, '--max-lifetime') : undefined,
          configFile: o.config,
        }),
      );
    });

  root
    .command('revoke')
    .summary('revoke credentials and sessions issued before a time')
    .description('Write a revocation watermark: everything issued to a subject, for a role, or to everyone before a time is void on every replica. --list shows the live watermarks.')
    .usage('--config FILE (--subject S [--source ID] | --role R | --all) [--issued-before TIME|now] [--reason TEXT]\n       stsgate revoke --config FILE --list')
    .addOption(configOption())
    .option('--subject <subject>', 'a subject (as in the identity)')
    .option('--source <id>', 'the provider or issuer id of --subject')
    .option('--role <role>', 'every session of a role')
    .option('--all', 'every session')
    .option('--list', 'list the live watermarks and their TTLs')
    .option('--issued-before <time>', 'an ISO 8601 time, or now (the default)')
    .option('--reason <text>', 'why (kept in the audit log)')
    .addHelpText('after', examples(['stsgate revoke --config gateway.yaml --subject 1001 --source google --reason "laptop stolen"', 'a person\'s sessions and credentials'], ['stsgate revoke --config gateway.yaml --list', 'what is revoked now']))
    .action(async (o: { config: string; subject?: string; source?: string; role?: string; all?: true; list?: true; issuedBefore?: string; reason?: string }) => {
      const { revokeCommand } = await import('./commands/revoke.js');
      const { config, ...rest } = o;
      run(await revokeCommand({ configFile: config, ...rest }, write));
    });

  root
    .command('demo')
    .summary('run a gateway and a development identity provider on loopback (never in production)')
    .description('Run a gateway and a development identity provider on loopback, configured by examples/demo.yaml. Refuses NODE_ENV=production.')
    .option('--port <port>', 'the gateway\'s port (default: 8080)')
    .option('--idp-port <port>', 'the development identity provider\'s port (default: a free one)')
    .addHelpText('after', examples(['stsgate demo --port 18080', 'then open http://127.0.0.1:18080']))
    .action(async (o: { port?: string; idpPort?: string }) => {
      // Loaded only here: the development identity provider (oidc-provider) has no business in `serve`.
      const { demoCommand } = await import('./demo/demo.js');
      run(await demoCommand({ ...(o.port !== undefined ? { port: portNumber(o.port) } : {}), ...(o.idpPort !== undefined ? { idpPort: portNumber(o.idpPort) } : {}) }));
    });

  root
    .command('login')
    .summary('sign a terminal in through the browser')
    .description('Sign this terminal in through the browser (like aws sso login) and keep the session for stsgate credentials, token and kube-token.')
    .requiredOption('--gateway <url>', 'the gateway')
    .option('--provider <id>', 'the login provider (default: the gateway asks)')
    .option('--role <role>', 'the role stsgate credentials uses when given none')
    .option('--no-browser', 'do not open a browser: print the address to open')
    .option('--paste-code', 'for a machine without a browser: sign in on any device, then paste the one-time code the gateway shows')
    .option('--device', 'the device authorization grant (RFC 8628) at the gateway\'s OpenID Provider: sign in on any device, nothing to paste')
    .option('--client <id>', 'with --device: the clients: entry with terminal_login: true (default: stsgate-cli)')
    .addHelpText('after', examples(['stsgate login --gateway https://sts.example.com --role deployer', 'opens the browser'], ['stsgate login --gateway https://sts.example.com --paste-code', 'over SSH: open the address elsewhere, paste the code here']))
    .action(async (o: { gateway: string; provider?: string; role?: string; browser: boolean; pasteCode?: true; device?: true; client?: string }) => {
      if (o.client !== undefined && o.device !== true) throw new UsageError('--client goes with --device');
      if (o.device === true && o.pasteCode === true) throw new UsageError('give --device or --paste-code, not both');
      const { loginCommand } = await import('./terminal/commands.js');
      run(
        await loginCommand({
          gateway: o.gateway,
          ...(o.provider !== undefined ? { provider: o.provider } : {}),
          ...(o.role !== undefined ? { role: o.role } : {}),
          openBrowser: o.browser && o.pasteCode !== true,
          pasteCode: o.pasteCode === true,
          ...(o.device === true ? { deviceClient: o.client ?? 'stsgate-cli' } : {}),
        }),
      );
    });

  root
    .command('credentials')
    .summary('print credentials for the terminal session (AWS credential_process)')
    .description('Print credentials for the terminal session: AWS credential_process JSON for a role or an AWS broker target, or a GCP or Azure target\'s access token. Cached until five minutes before they expire.')
    .option('--role <role>', 'the role (default: the one stsgate login --role chose)')
    .option('--target <name>', 'a broker target instead of a role')
    .addOption(gatewayOption())
    .addOption(new Option('--format <format>', 'json, or token: the bearer token alone (GCP and Azure targets)').choices(['json', 'token']))
    .addHelpText('after', examples(['stsgate credentials --role deployer', 'credential_process JSON'], ['stsgate credentials --target gcp-dev --format token', 'for CLOUDSDK_AUTH_ACCESS_TOKEN']))
    .action(async (o: { role?: string; target?: string; gateway?: string; format?: string }) => {
      const { credentialsCommand } = await import('./terminal/commands.js');
      run(await credentialsCommand(o, write));
    });

  for (const [name, summary] of [
    ['token', 'print a target\'s token for the terminal session'],
    ['kube-token', 'print a target\'s token as a kubectl ExecCredential'],
  ] as const) {
    const command = root
      .command(name)
      .summary(summary)
      .description(`${summary[0]!.toUpperCase()}${summary.slice(1)} (cached until half its lifetime).`)
      .requiredOption('--target <name>', 'the target')
      .addOption(gatewayOption());
    if (name === 'token') {
      command
        .addOption(new Option('--format <format>', 'jwt: the token alone; gcp-executable: the answer of a GCP executable credential source').choices(['jwt', 'gcp-executable']).default('jwt'))
        .addHelpText('after', examples([`stsgate token --target vault`, summary], ['stsgate token --target gcp-dev --format gcp-executable', 'as a GCP external account\'s executable']));
    } else {
      command.addHelpText('after', examples([`stsgate ${name} --target kube`, summary]));
    }
    command.action(async (o: { target: string; gateway?: string; format?: string }) => {
      const { kubeTokenCommand, tokenCommand } = await import('./terminal/commands.js');
      run(await (name === 'token' ? tokenCommand(o, write) : kubeTokenCommand(o, write)));
    });
  }

  root
    .command('kubeconfig')
    .summary('add a kubectl context that runs stsgate kube-token')
    .description('Merge a user running stsgate kube-token (and with --server a cluster and a context) into a kubeconfig.')
    .requiredOption('--target <name>', 'the Kubernetes target')
    .addOption(gatewayOption())
    .option('--server <url>', 'the API server (https://)')
    .option('--certificate-authority <file>', 'the API server\'s CA certificate')
    .option('--insecure-skip-tls-verify', 'do not verify the API server\'s certificate')
    .option('--kubeconfig <file>', 'the kubeconfig to write (default: $KUBECONFIG\'s first file or ~/.kube/config)')
    .option('--context <name>', 'the context\'s name')
    .addHelpText('after', examples(['stsgate kubeconfig --target kube --server https://k8s.example.com:6443 --certificate-authority ca.pem', 'then kubectl --context stsgate-kube get pods']))
    .action(async (o: { target: string; gateway?: string; server?: string; certificateAuthority?: string; insecureSkipTlsVerify?: true; kubeconfig?: string; context?: string }) => {
      const { kubeconfigCommand } = await import('./terminal/commands.js');
      run(await kubeconfigCommand(o));
    });

  root
    .command('configure')
    .summary('write an AWS CLI profile that gets its credentials from stsgate')
    .description('Write an AWS CLI profile into ~/.aws/config (or $AWS_CONFIG_FILE): credential_process running stsgate credentials, STS calls sent to the gateway, and a region. Shows the change and asks first (--yes: do not ask).')
    .requiredOption('--profile <name>', 'the profile to write (replaced if it exists)')
    .option('--role <role>', 'the role (or --target)')
    .option('--target <name>', 'an AWS broker target (or --role)')
    .addOption(gatewayOption())
    .option('--region <region>', 'the profile\'s region', 'us-east-1')
    .option('-y, --yes', 'write without asking')
    .addHelpText('after', examples(['stsgate configure --profile dev --role deployer --gateway https://sts.example.com', 'then aws sts get-caller-identity --profile dev']))
    .action(async (o: { profile: string; role?: string; target?: string; gateway?: string; region: string; yes?: true }) => {
      const { configureCommand } = await import('./terminal/commands.js');
      run(await configureCommand({ ...o, yes: o.yes === true }));
    });

  root
    .command('oidc')
    .summary('OIDC issuer documents')
    .description('OIDC issuer documents for the clouds that trust the gateway.')
    .command('export')
    .summary('write discovery and JWKS for static hosting')
    .description('Write the discovery document and the JWKS into a folder, for clouds that cannot reach the gateway (static hosting).')
    .addOption(configOption())
    .requiredOption('--out <dir>', 'the folder to write')
    .addHelpText('after', examples(['stsgate oidc export --config gateway.yaml --out public/', 'then upload public/.well-known/']))
    .action(async (o: { config: string; out: string }) => {
      const { oidcExportCommand } = await import('./commands/oidc-export.js');
      run(await oidcExportCommand(o.config, o.out, write));
    });

  root
    .command('logout')
    .summary('end the terminal session')
    .description('End the terminal session at the gateway and forget it, with its cached credentials and target tokens.')
    .addOption(gatewayOption())
    .addHelpText('after', examples(['stsgate logout', 'sign out of the last gateway']))
    .action(async (o: { gateway?: string }) => {
      const { logoutCommand } = await import('./terminal/commands.js');
      run(await logoutCommand(o));
    });

  root
    .command('help')
    .argument('[command...]', 'a command, such as serve or keys rotate')
    .summary('show the help of a command')
    .description('Show the help of stsgate or of one of its commands.')
    .addHelpText('after', examples(['stsgate help keys rotate', 'the options of keys rotate']))
    .action((words: string[]) => {
      // Commander's own help command names no unknown command and reaches one level only.
      let command = root;
      for (const word of words) {
        const sub = command.commands.find((c) => c.name() === word || c.aliases().includes(word));
        if (sub === undefined) return command.error(`stsgate: unknown command '${word}'`, { exitCode: EXIT.usage });
        command = sub;
      }
      command.outputHelp();
      run(EXIT.ok);
    });

  return root;
}

/** Parses `argv`, runs the command; the exit code (see EXIT). */
async function main(argv: string[]): Promise<number> {
  let code: number = EXIT.ok;
  const root = program((c) => {
    code = c;
  });
  // The command being run, for the help shown with a usage error thrown by its action.
  let active: Command = root;
  root.hook('preAction', (_root, command) => {
    active = command;
  });
  try {
    await root.parseAsync(argv, { from: 'user' });
    return code;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Commander has written the help (asked for: exit code 0), the version, or the error and the command's help.
      return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    if (err instanceof UsageError || err instanceof TerminalUsageError || err instanceof RevocationRequestError) {
      process.stderr.write(`stsgate: ${err.message}\n\n`);
      active.outputHelp({ error: true });
      return EXIT.usage;
    }
    throw err;
  }
}
/** Runs the gateway (or, with `workers` > 1, the primary that forks it) until SIGTERM or SIGINT. */
async function serve(configFile: string, listen: { port?: number; host?: string }): Promise<number> {
  const [{ loadGatewayInputs }, { DEFAULT_SHUTDOWN }, { isClusterPrimary, reportListening, runPrimary, shareMetricsWithPrimary, workerCount, workerId }, { createLogger, flushLogs }] = await Promise.all([
    import('./commands/gateway-inputs.js'),
    import('./config/schema.js'),
    import('./cluster.js'),
    import('./observability/logger.js'),
  ]);
  // Everything check-config checks, by the same function: a problem is named by its setting and file.
  const { config, keysFile } = await loadGatewayInputs(configFile);
  const workers = workerCount(config.workers ?? 1);
  const { delaySeconds, graceSeconds } = config.shutdown ?? DEFAULT_SHUTDOWN;
  if (isClusterPrimary(workers)) {
    return runPrimary({ workers, logger: createLogger({ format: config.log?.format }), stopTimeoutMs: (delaySeconds + graceSeconds) * 1000 + 5_000 });
  }
  // Only a process that serves loads the gateway: a cluster's primary never does.
  const [{ startGateway }, { GatewayMetrics }] = await Promise.all([import('./main.js'), import('./observability/metrics.js')]);
  const id = workerId();
  // Buffered unless log.sync: a request never waits for stdout; flushLogs below writes every line out before the exit.
  const processLogger = createLogger({ format: config.log?.format, buffered: !(config.log?.sync ?? false) });
  const logger = id === undefined ? processLogger : processLogger.child({ worker: id });
  const metrics = new GatewayMetrics();
  await shareMetricsWithPrimary(metrics);
  const gateway = await startGateway(config, { logger, metrics, ...listen, ...(keysFile ? { keysFile } : {}) });
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
  await flushLogs();
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

/** An address to listen on: an IP address or a host name, no port or scheme. */
function hostName(value: string): string {
  if (!/^(?:[A-Za-z0-9.-]{1,253}|[0-9A-Fa-f:.]{2,45})$/.test(value)) throw new UsageError('--host must be an IP address or a host name (0.0.0.0, ::, 127.0.0.1, localhost)');
  return value;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
    } else {
      process.stderr.write(`stsgate: ${err instanceof Error ? err.message : String(err)}\n`);
    }
    process.exitCode = EXIT.failure;
    // A worker that failed to start must let go of the primary's channel, or it would never exit.
    releaseWorker();
  },
);
