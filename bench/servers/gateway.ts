/** The gateway under test: the real composition root (`startGateway`), Redis-backed, logging as in production. */
import { startGateway } from '../../src/main.js';
import { serveUntilStopped } from './lifecycle.js';
import { benchGatewayConfig, GATEWAY_SETTINGS_ENV, type GatewayBenchSettings } from './settings.js';

const raw = process.env[GATEWAY_SETTINGS_ENV];
if (!raw) throw new Error(`${GATEWAY_SETTINGS_ENV} is not set: start this through bench/run.ts`);
const gateway = await startGateway(benchGatewayConfig(JSON.parse(raw) as GatewayBenchSettings), { port: 0, adminPort: 0, shutdownGraceMs: 1000 });
serveUntilStopped(gateway.server, () => gateway.close(), gateway.adminUrl);
