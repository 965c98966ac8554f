/**
 * The peer: oidc-provider's token endpoint with one client_credentials client, configured as plainly
 * as it allows (its defaults: opaque access tokens in its in-memory adapter, client_secret_basic).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import Provider from 'oidc-provider';
import { listenOnLoopback, serveUntilStopped } from './lifecycle.js';
import { PEER_CLIENT } from './settings.js';

let handle: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) => {
  res.writeHead(503).end();
};
const server = createServer((req, res) => handle(req, res));
await listenOnLoopback(server);
const { port } = server.address() as AddressInfo;
const provider = new Provider(`http://127.0.0.1:${port}`, {
  clients: [
    {
      client_id: PEER_CLIENT.id,
      client_secret: PEER_CLIENT.secret,
      grant_types: ['client_credentials'],
      redirect_uris: [],
      response_types: [],
    },
  ],
  features: { clientCredentials: { enabled: true } },
});
handle = provider.callback();
serveUntilStopped(server);
