/** The `stsgate` command: thin; every subcommand calls into the modules. */
import { parseArgs } from 'node:util';
import { checkConfigCommand } from './commands/check-config.js';
import { explainCommand } from './commands/explain.js';
import { ConfigError, loadConfig } from './config/load.js';
import type { SigningAlgorithm } from './config/types.js';
import { generateSigningJwk } from './credentials/signing-keys.js';
import { startGateway } from './main.js';
import { createLogger } from './observability/logger.js';

const USAGE = `usage:
  stsgate serve --config FILE
  stsgate check-config --config FILE
  stsgate explain --config FILE --identity FILE
  stsgate keys generate [--alg ES256|EdDSA|RS256]`;

const write = (line: string) => process.stdout.write(`${line}\n`);

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: 'string', short: 'c' },
      identity: { type: 'string' },
      alg: { type: 'string', default: 'ES256' },
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
    case 'check-config':
      return checkConfigCommand(requireOption(values.config, '--config'), write);
    case 'explain':
      return explainCommand(requireOption(values.config, '--config'), requireOption(values.identity, '--identity'), write);
    case 'keys':
      if (sub !== 'generate') break;
      if (!['ES256', 'EdDSA', 'RS256'].includes(values.alg)) throw new UsageError('--alg must be ES256, EdDSA or RS256');
      write(JSON.stringify(await generateSigningJwk(values.alg as SigningAlgorithm), null, 2));
      return 0;
  }
  throw new UsageError(`unknown command: ${positionals.join(' ')}`);
}

async function serve(configFile: string): Promise<number> {
  const logger = createLogger();
  const config = await loadConfig(configFile);
  const gateway = await startGateway(config, { logger });
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      logger.info({ signal }, 'shutting down');
      gateway.close().then(resolve, (err: unknown) => {
        logger.error({ err: String(err) }, 'shutdown failed');
        resolve();
      });
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  return 0;
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
    } else if (err instanceof UsageError) {
      process.stderr.write(`${err.message}\n${USAGE}\n`);
      process.exitCode = 2;
      return;
    } else {
      process.stderr.write(`stsgate: ${err instanceof Error ? err.message : String(err)}\n`);
    }
    process.exitCode = 1;
  },
);
