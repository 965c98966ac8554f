/**
 * Writes a few log lines through the process logger to its real stdout, then exits at once: what
 * `test/observability/log-format.test.ts` runs on a pseudo-terminal and through a pipe. The first
 * argument, when given, is the configured `log.format`.
 */
import { createLogger, type LogFormat } from '../../src/observability/logger.js';

const format = process.argv[2] as LogFormat | undefined;
const logger = createLogger(format ? { format } : {});
logger.info({ method: 'POST', path: '/', status: 200, ms: 1.5 }, 'request');
logger.child({ log: 'audit' }).info({ event: 'denied', subject: 'repo:acme/app', reason: 'no rule grants role deployer', headers: { authorization: 'Bearer canary-secret-in-a-header' } });
logger.warn({ store: 'connect ECONNREFUSED' }, 'store connection error');
// Exiting straight away: a line still buffered would be lost here.
process.exit(0);
