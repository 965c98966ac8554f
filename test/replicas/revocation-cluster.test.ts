/** Revocation watermarks across two gateway processes on a real 3-master Redis Cluster on loopback ports. */
import { testPrefix } from '../support/gateway-process.js';
import { startRedisCluster } from '../support/redis-servers.js';
import { describeRevocations } from './revocation-suite.js';

describeRevocations('a 3-master Redis Cluster', async () => {
  const cluster = await startRedisCluster({ masters: 3 });
  return { store: { cluster: { nodes: cluster.nodes }, prefix: testPrefix() }, stop: () => cluster.stop() };
});
