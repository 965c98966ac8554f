/**
 * `stsgate demo`: the gateway of examples/demo.yaml plus a development identity provider with sample
 * users, both on loopback, the in-memory store and keys generated at start, so that a newcomer signs in at
 * http://127.0.0.1:8080 and sees credentials a minute after cloning. Everything about it is for trying
 * stsgate out: anyone who reaches the provider's page can sign in as anyone, so it only ever listens on
 * 127.0.0.1, marks every page and its start as a demo, and refuses to start with NODE_ENV=production.
 */
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseConfig } from '../config/load.js';
import type { GatewayConfig } from '../config/types.js';
import { startGateway, type RunningGateway } from '../main.js';
import type { Logger } from '../observability/logger.js';
import { compileRules } from '../rules/index.js';
import { DevelopmentIdentityProvider } from './development-idp.js';
import { SAMPLE_USERS } from './sample-users.js';

/** The demo's configuration file (from src/demo/ and from the compiled dist/demo/ alike). */
export const DEMO_CONFIG_FILE = fileURLToPath(new URL('../../examples/demo.yaml', import.meta.url));

/** The provider id examples/demo.yaml configures for the development identity provider. */
const DEMO_PROVIDER_ID = 'demo';

/** On top of every gateway page and the provider's login page. */
export const DEMO_NOTICE = 'DEMO — stsgate demo: a built-in development identity provider signs anyone in as any sample user. Never use it for anything real.';

/** `stsgate demo` refused to start; the message says why. */
export class DemoRefusedError extends Error {}

export interface DemoOptions {
  /** The gateway's port on 127.0.0.1 (default 8080). */
  port?: number;
  /** The development identity provider's port on 127.0.0.1 (default: a free one). */
  idpPort?: number;
  env?: Readonly<Record<string, string | undefined>>;
  logger?: Logger;
}

/** A started demo. */
export interface RunningDemo {
  /** The page to open. */
  url: string;
  gateway: RunningGateway;
  idp: DevelopmentIdentityProvider;
  config: GatewayConfig;
  /** The sample users and the roles the demo's rules give them (for the start banner). */
  users: { name: string; email: string; description: string; roles: string[] }[];
  close(): Promise<void>;
}

/** Starts the development identity provider and the gateway; refuses with NODE_ENV=production. */
export async function startDemo(options: DemoOptions = {}): Promise<RunningDemo> {
  const env = options.env ?? process.env;
  if (env.NODE_ENV === 'production') {
    throw new DemoRefusedError(
      'stsgate demo refuses to start with NODE_ENV=production: its built-in identity provider signs anyone in as anyone. Run stsgate serve --config FILE with a real identity provider instead.',
    );
  }
  const port = options.port ?? 8080;
  const publicUrl = `http://127.0.0.1:${port}`;
  // A fresh client secret at every start: nothing the demo uses is worth keeping.
  const clientSecret = randomBytes(24).toString('base64url');
  const idp = await DevelopmentIdentityProvider.start({
    users: { ...SAMPLE_USERS },
    clients: [{ clientId: 'stsgate-demo', clientSecret, redirectUri: `${publicUrl}/callback/${DEMO_PROVIDER_ID}` }],
    requirePkce: true,
    notice: DEMO_NOTICE,
    ...(options.idpPort !== undefined ? { port: options.idpPort } : {}),
  });
  try {
    const text = await readFile(DEMO_CONFIG_FILE, 'utf8');
    const config = parseConfig(
      text,
      { ...env, STSGATE_DEMO_PUBLIC_URL: publicUrl, STSGATE_DEMO_ISSUER: idp.issuer, STSGATE_DEMO_CLIENT_SECRET: clientSecret },
      dirname(DEMO_CONFIG_FILE),
      DEMO_CONFIG_FILE,
    );
    const gateway = await startGateway(config, {
      port,
      // A free port: several demos (or a demo beside a gateway) must not fight over 9090.
      adminPort: 0,
      pageNotice: DEMO_NOTICE,
      // Nothing balances load in front of a demo: stop at once on Ctrl-C.
      shutdownDelayMs: 0,
      shutdownGraceMs: 2_000,
      ...(options.logger ? { logger: options.logger } : {}),
    });
    const rules = compileRules(config);
    const users = Object.entries(SAMPLE_USERS).map(([name, user]) => {
      const { description, userinfoOnly, ...claims } = user;
      return { name, email: user.email ?? '', description: description ?? '', roles: rules.evaluate({ source: DEMO_PROVIDER_ID, subject: user.sub, claims: { ...claims, ...userinfoOnly } }).roles };
    });
    return {
      url: publicUrl,
      gateway,
      idp,
      config,
      users,
      async close() {
        await gateway.close();
        await idp.close();
      },
    };
  } catch (err) {
    await idp.close();
    throw err;
  }
}

/** The start banner (stderr): loud, and enough to get going. */
export function demoBanner(demo: RunningDemo): string[] {
  const rule = '='.repeat(78);
  return [
    rule,
    '  stsgate DEMO -- NOT FOR PRODUCTION',
    '  A built-in development identity provider signs in anyone as any sample user;',
    '  signing keys are generated at start and everything is kept in memory.',
    '-'.repeat(78),
    `  Open ${demo.url} and choose "Sign in with Demo IdP", then a sample user:`,
    ...demo.users.map((u) => `    ${u.name.padEnd(6)} ${u.email.padEnd(26)} ${u.roles.length > 0 ? `roles: ${u.roles.join(', ')}` : 'no role: denied'}`),
    `  Configuration: ${DEMO_CONFIG_FILE}`,
    `  From a terminal: stsgate login --gateway ${demo.url}`,
    `  Metrics: ${demo.gateway.adminUrl}/metrics`,
    '  Stop with Ctrl-C.',
    rule,
  ];
}

/** `stsgate demo [--port N] [--idp-port N]`: runs until SIGINT or SIGTERM; exit 1 (and why, on stderr) when it refuses to start. */
export async function demoCommand(options: { port?: number; idpPort?: number }): Promise<number> {
  let demo: RunningDemo;
  try {
    demo = await startDemo(options);
  } catch (err) {
    if (err instanceof DemoRefusedError) {
      process.stderr.write(`stsgate: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
  process.stderr.write(`${demoBanner(demo).join('\n')}\n`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  await demo.close();
  // Everything is closed; a timer some library left behind must not keep the terminal waiting.
  setTimeout(() => process.exit(0), 1_000).unref();
  return 0;
}
