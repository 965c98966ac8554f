/**
 * How independent the machine's cores are: CPU-bound work (SHA-256 of 1 KB blocks) on one thread alone,
 * then on `threads` threads at once. On a machine whose cores are hyperthreads of one physical core, or
 * shared with other guests, `threads` threads do much less than `threads` times the work of one; no
 * number of gateway workers can gain more than that.
 */
import { once } from 'node:events';
import { Worker } from 'node:worker_threads';

/** Hashes until the deadline the message gives, and answers how many blocks it hashed; plain JS, no loader. */
const SPIN = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const block = Buffer.alloc(1024, 1);
parentPort.once('message', (ms) => {
  const end = performance.now() + ms;
  let blocks = 0;
  while (performance.now() < end) {
    createHash('sha256').update(block).digest();
    blocks++;
  }
  parentPort.postMessage(blocks);
});
`;

/** The work `threads` threads did at once over what one did alone, each for `ms`. */
export async function parallelScaling(threads: number, ms = 1000): Promise<number> {
  const alone = await spin(1, ms);
  const together = await spin(threads, ms);
  return alone === 0 ? 0 : together / alone;
}

/** Blocks hashed by `threads` threads started together, in total. */
async function spin(threads: number, ms: number): Promise<number> {
  const workers = Array.from({ length: threads }, () => new Worker(SPIN, { eval: true }));
  try {
    await Promise.all(workers.map((worker) => once(worker, 'online')));
    const counts = await Promise.all(
      workers.map((worker) => {
        const answer = once(worker, 'message') as Promise<[number]>;
        worker.postMessage(ms);
        return answer.then(([blocks]) => blocks);
      }),
    );
    return counts.reduce((a, b) => a + b, 0);
  } finally {
    await Promise.all(workers.map((worker) => worker.terminate()));
  }
}
