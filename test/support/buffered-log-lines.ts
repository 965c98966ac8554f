/**
 * Writes many lines through the buffered process logger (the gateway's) to its real stdout, then ends
 * as the first argument says: `exit` (process.exit at once, as a crash handler or the shutdown timer
 * would) or `flush-then-kill` (flushLogs, then SIGKILL, which runs no exit handler: what was not written
 * by then is lost), or `idle` (one line, then the process stays up for 5 s without logging: the line must
 * still go out, by the flush timer). Run by test/observability/buffered-log.test.ts.
 */
import { createLogger, flushLogs } from '../../src/observability/logger.js';

const [how = 'exit', count = '20000'] = process.argv.slice(2);
const logger = createLogger({ buffered: true, format: 'json' });
const padding = 'x'.repeat(120);
if (how === 'idle') {
  logger.info({ n: 0 }, 'alone');
  setTimeout(() => process.exit(0), 5_000);
} else {
  await burst();
}

async function burst(): Promise<void> {
  for (let n = 0; n < Number(count); n++) logger.info({ n, padding }, 'line');
  if (how === 'exit') process.exit(0);
  await flushLogs();
  process.kill(process.pid, 'SIGKILL');
}
