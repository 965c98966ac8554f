/** Revocation watermarks across two gateway processes on the standalone Redis at 127.0.0.1:6379, under a fresh key prefix. */
import { REDIS_URL } from '../support/gateway.js';
import { testPrefix } from '../support/gateway-process.js';
import { describeRevocations } from './revocation-suite.js';

describeRevocations('standalone Redis', async () => ({ store: { url: REDIS_URL, prefix: testPrefix() }, stop: async () => {} }));
