/**
 * `stsgate credentials --role R [--gateway URL]`: prints a credential set as AWS `credential_process` JSON
 * (Version 1, AccessKeyId, SecretAccessKey, SessionToken, Expiration) on stdout, so that
 *
 *   [profile gateway-deployer]
 *   credential_process = stsgate credentials --role deployer
 *
 * in `~/.aws/config` gives AWS SDKs and the AWS CLI stsgate's credentials. A set is cached in the config
 * folder (0600) and reused while more than five minutes remain, so SDKs that call the process often do not
 * each mint one; nearer its expiry a new one is fetched with the terminal session (`stsgate login`).
 */
import { readCredentialProcessJson, type ProcessCredentials } from '../credentials/credential-formats.js';
import type { ConfigFolder, SavedSession, SessionsFile } from './config-folder.js';
import { gatewayErrorText } from './gateway-url.js';

/**
 * A set with less than this left is replaced. The AWS SDKs refresh process credentials themselves about
 * five minutes before `Expiration` and would ask again at once if we handed back one already inside that window.
 */
export const REFRESH_MARGIN_MS = 5 * 60_000;

export interface TerminalCredentialsOptions {
  /** The gateway's origin; default: the gateway of the last login. */
  gateway?: string;
  /** Default: the role the last login asked for. */
  role?: string;
  /** A broker target instead of a role: the cloud's own credentials (`GET /v1/credentials?target=`). */
  target?: string;
  folder: ConfigFolder;
  now?: () => number;
}

/** A failure with a message for the person (no secret in it); the CLI prints it on stderr and exits 1. */
export class TerminalCredentialsError extends Error {}

/** A GCP or Azure broker target's access token, as the gateway answers it (an OAuth token response). */
export interface AccessTokenCredentials {
  access_token: string;
  token_type: 'Bearer';
  expires_in: number;
  expires_at: string;
  scope: string;
  cloud: 'gcp' | 'azure';
  target: string;
}

/**
 * What to print: AWS keys (a role, or an aws broker target) in credential_process shape, the cached set
 * while it has more than REFRESH_MARGIN_MS left, else a new one from the gateway; or a GCP or Azure
 * broker target's access token, which the gateway caches (this terminal does not keep bearer tokens).
 */
export async function terminalCredentials(options: TerminalCredentialsOptions): Promise<ProcessCredentials | AccessTokenCredentials> {
  const now = options.now ?? Date.now;
  const sessions = await options.folder.readSessions();
  const gateway = options.gateway ?? sessions.default_gateway;
  if (gateway === undefined) throw new TerminalCredentialsError('not signed in to any gateway: run stsgate login --gateway URL first');
  // Cached credentials are handed out only while this terminal is signed in (as target tokens are).
  const session = liveSession(gateway, sessions, now);
  if (options.target !== undefined && options.role !== undefined) throw new TerminalCredentialsError('give --role or --target, not both');
  const role = options.target === undefined ? (options.role ?? session.role) : undefined;
  if (role === undefined && options.target === undefined) throw new TerminalCredentialsError('--role is required (or sign in with stsgate login --role R to set a default)');

  // Role names never contain ":" (IAM characters), so a target's entry cannot collide with a role's.
  const key = options.target === undefined ? `${gateway} ${role}` : `${gateway} target:${options.target}`;
  const cache = await options.folder.readCredentials();
  const cached = cache.entries[key];
  if (cached !== undefined && Date.parse(cached.Expiration) - now() > REFRESH_MARGIN_MS) return cached;

  const url = new URL('/v1/credentials', gateway);
  if (options.target !== undefined) url.searchParams.set('target', options.target);
  else url.searchParams.set('role', role!);
  const response = await sessionRequest({ gateway, url, sessions, folder: options.folder, now });
  if (!response.ok) throw new TerminalCredentialsError(`${gateway} refused credentials for ${options.target === undefined ? role : `target ${options.target}`}: ${await gatewayErrorText(response)}`);
  const body: unknown = await response.json();
  const accessToken = readAccessTokenJson(body);
  if (accessToken !== undefined) return accessToken;
  const credentials = readCredentialProcessJson(body);
  if (credentials === undefined) throw new TerminalCredentialsError(`${gateway} answered with something that is not a credential set`);
  cache.entries[key] = credentials;
  // Expired sets are dropped on the way (they are useless, and still secrets).
  for (const [name, entry] of Object.entries(cache.entries)) if (Date.parse(entry.Expiration) <= now()) delete cache.entries[name];
  await options.folder.writeCredentials(cache);
  return credentials;
}

/** Exactly the members of a GCP or Azure access token answer, or undefined when it is not one. */
function readAccessTokenJson(body: unknown): AccessTokenCredentials | undefined {
  if (body === null || typeof body !== 'object') return undefined;
  const { access_token, token_type, expires_in, expires_at, scope, cloud, target } = body as Record<string, unknown>;
  if ((cloud !== 'gcp' && cloud !== 'azure') || typeof access_token !== 'string' || access_token === '' || token_type !== 'Bearer') return undefined;
  if (typeof expires_in !== 'number' || typeof expires_at !== 'string' || Number.isNaN(Date.parse(expires_at)) || typeof scope !== 'string' || typeof target !== 'string') return undefined;
  return { access_token, token_type, expires_in, expires_at, scope, cloud, target };
}

/** The saved terminal session of `gateway`, or a TerminalCredentialsError when there is none or it has expired. */
export function liveSession(gateway: string, sessions: SessionsFile, now: () => number): SavedSession {
  const session = sessions.gateways[gateway];
  if (session === undefined) throw new TerminalCredentialsError(`not signed in to ${gateway}: run stsgate login --gateway ${gateway}`);
  if (Date.parse(session.expires_at) <= now()) throw new TerminalCredentialsError(`the session for ${gateway} has expired: run stsgate login --gateway ${gateway}`);
  return session;
}

/**
 * GET `url` with the terminal session of `gateway` as a bearer token (RFC 6750 §2.1). A session unknown
 * here, expired, or refused by the gateway (401: ended or expired there) is a TerminalCredentialsError; a
 * refused one is forgotten with the tokens cached for it, so the next run says "not signed in" straight away.
 */
export async function sessionRequest(request: { gateway: string; url: URL; sessions: SessionsFile; folder: ConfigFolder; now: () => number }): Promise<Response> {
  const { gateway, sessions } = request;
  const session = liveSession(gateway, sessions, request.now);
  let response: Response;
  try {
    response = await fetch(request.url, { headers: { authorization: `Bearer ${session.session_token}`, accept: 'application/json' }, signal: AbortSignal.timeout(30_000) });
  } catch (err) {
    throw new TerminalCredentialsError(`${gateway} could not be reached: ${(err as Error).message}`);
  }
  if (response.status === 401) {
    delete sessions.gateways[gateway];
    await request.folder.writeSessions(sessions);
    await request.folder.forgetCachedTokens(gateway);
    throw new TerminalCredentialsError(`the session for ${gateway} has expired or was ended: run stsgate login --gateway ${gateway}`);
  }
  return response;
}

/** `stsgate logout`: ends the terminal session at the gateway and forgets it and its cached credentials here. */
export async function terminalLogout(options: { gateway?: string; folder: ConfigFolder }): Promise<string | undefined> {
  const sessions = await options.folder.readSessions();
  const gateway = options.gateway ?? sessions.default_gateway;
  if (gateway === undefined) return undefined;
  const session = sessions.gateways[gateway];
  if (session !== undefined) {
    try {
      await fetch(new URL('/cli/logout', gateway), { method: 'POST', headers: { authorization: `Bearer ${session.session_token}` }, signal: AbortSignal.timeout(10_000) });
    } catch {
      // Unreachable: the local copy is forgotten anyway; the gateway's record expires on its own.
    }
  }
  delete sessions.gateways[gateway];
  if (sessions.default_gateway === gateway) delete sessions.default_gateway;
  await options.folder.writeSessions(sessions);
  // Target tokens too (`stsgate token`, `stsgate kube-token`): after a logout nothing of the session is used.
  await options.folder.forgetCachedTokens(gateway);
  return gateway;
}
