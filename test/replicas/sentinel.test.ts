/** Two gateway processes on Redis behind Sentinel (a master and one Sentinel, found by name). */
import { testPrefix } from '../support/gateway-process.js';
import { startRedisSentinel } from '../support/redis-servers.js';
import { describeReplicas } from './replica-suite.js';

describeReplicas('Redis with Sentinel', async () => {
  const sentinel = await startRedisSentinel();
  return { store: { sentinel: { sentinels: sentinel.sentinels, name: sentinel.name }, prefix: testPrefix() }, stop: () => sentinel.stop() };
});
