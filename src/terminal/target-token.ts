/**
 * `stsgate token --target NAME` and `stsgate kube-token --target NAME`: a token for a target (a relying
 * party that trusts the gateway as its OIDC issuer) with the terminal session of `stsgate login`. A token
 * is cached in the config folder (`targets.json`, 0600) and reused until half its lifetime has passed,
 * so a kubectl that runs the exec plugin on every command does not mint one each time.
 */
import type { ConfigFolder } from './config-folder.js';
import { liveSession, sessionRequest, TerminalCredentialsError } from './credentials.js';
import { gatewayErrorText } from './gateway-url.js';

/** A compact JWS (three base64url parts): what is printed and cached must be a token, nothing else. */
const JWT_SHAPE = /^[\w-]+\.[\w-]+\.[\w-]+$/;

export interface TargetTokenOptions {
  /** The gateway's origin; default: the gateway of the last login. */
  gateway?: string;
  target: string;
  folder: ConfigFolder;
  now?: () => number;
}

/** A target token and when it ends. */
export interface TerminalTargetToken {
  token: string;
  expiresAt: Date;
}

/** The token to print: the cached one while less than half its lifetime has passed, else a new one from the gateway. */
export async function terminalTargetToken(options: TargetTokenOptions): Promise<TerminalTargetToken> {
  const now = options.now ?? Date.now;
  const sessions = await options.folder.readSessions();
  const gateway = options.gateway ?? sessions.default_gateway;
  if (gateway === undefined) throw new TerminalCredentialsError('not signed in to any gateway: run stsgate login --gateway URL first');
  // A cached token is handed out only while this terminal is signed in (a session forgotten after a 401 ends it too).
  liveSession(gateway, sessions, now);
  const key = `${gateway} ${options.target}`;
  const cache = await options.folder.readTargetTokens();
  const cached = cache.entries[key];
  if (cached !== undefined) {
    const [issued, expires] = [Date.parse(cached.issued_at), Date.parse(cached.expires_at)];
    if (now() < issued + (expires - issued) / 2) return { token: cached.token, expiresAt: new Date(expires) };
  }

  const url = new URL(`/v1/targets/${encodeURIComponent(options.target)}/token`, gateway);
  const response = await sessionRequest({ gateway, url, sessions, folder: options.folder, now });
  if (!response.ok) throw new TerminalCredentialsError(`${gateway} refused a token for target ${options.target}: ${await gatewayErrorText(response)}`);
  const body = (await response.json()) as { token?: unknown; expires_at?: unknown };
  const expiresAt = typeof body.expires_at === 'string' ? Date.parse(body.expires_at) : Number.NaN;
  if (typeof body.token !== 'string' || !JWT_SHAPE.test(body.token) || !Number.isFinite(expiresAt) || expiresAt <= now()) throw new TerminalCredentialsError(`${gateway} answered with something that is not a target token`);
  cache.entries[key] = { token: body.token, issued_at: new Date(now()).toISOString(), expires_at: new Date(expiresAt).toISOString() };
  // Expired tokens are dropped on the way (useless, and still bearer tokens).
  for (const [name, entry] of Object.entries(cache.entries)) if (Date.parse(entry.expires_at) <= now()) delete cache.entries[name];
  await options.folder.writeTargetTokens(cache);
  return { token: body.token, expiresAt: new Date(expiresAt) };
}
