/**
 * Loaded into a benchmark server with `--import` by `npm run bench:gc -- --sites`: V8's sampling heap
 * profiler, started and stopped by its parent over the IPC channel, so that the sampled window is exactly
 * a measured pass. `all`: every sampled allocation, collected or not (who allocates); `promoted`: those a
 * young-generation collection did not free (who makes old-generation garbage).
 */
import { Session } from 'node:inspector/promises';

export interface HeapSamplingRequest {
  type: 'heap-sampling';
  action: 'start' | 'stop';
  kind?: 'all' | 'promoted';
}

const session = new Session();
session.connect();

process.on('message', (message: HeapSamplingRequest) => {
  if (message?.type !== 'heap-sampling') return;
  void (async () => {
    if (message.action === 'start') {
      const all = message.kind !== 'promoted';
      await session.post('HeapProfiler.startSampling', { samplingInterval: 1024, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: all });
      process.send?.({ type: 'heap-sampling', started: true });
    } else {
      const { profile } = await session.post('HeapProfiler.stopSampling');
      process.send?.({ type: 'heap-sampling', profile });
    }
  })();
});
