/**
 * One LDAP login against a directory (OpenLDAP, Active Directory, 389-DS...), through ldapts:
 * search-then-bind. The gateway binds as its service account, finds the one entry the user filter names,
 * binds as that entry's DN with the password the person typed, binds back as the service account and
 * reads the groups (memberOf, a group search, nested groups). Every connection is TLS (ldaps:// or
 * StartTLS, verified against the configured CA) unless the configuration is a development one; every
 * operation has a timeout and the whole login a deadline, after which the socket is destroyed.
 *
 * The failure path does the same work whether the username is unknown or the password wrong (a bind is
 * attempted either way), and both give the same LoginFailure, so the answer does not tell which.
 *
 * Connections are pooled: a login that succeeded leaves its connection bound as the service account
 * (TLS already set up), and the next login takes it instead of connecting, binding and negotiating TLS
 * again. At most POOL_SIZE wait, none longer than POOL_IDLE_MS; a login that failed in any way (a wrong
 * password, a timeout, a refusal) closes its connection, so a pooled one is always one that just worked.
 */
import { isIP, connect as netConnect, type Socket } from 'node:net';
import { checkServerIdentity, connect as tlsConnect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import { Client, InvalidCredentialsError, ResultCodeError, type Entry } from 'ldapts';
import type { LdapSettings } from '../../config/types.js';
import { LoginFailure, providerFailed, providerUnreachable } from '../login-failure.js';
import { accountRefusal } from './accounts.js';
import { attributeText, attributeTexts, GroupSet, ldapProfile } from './claims.js';
import { anyMemberFilter, groupFilter, userFilter } from './filters.js';

/** The longest username and password taken from the form; anything longer is a wrong login, not a search. */
export const MAX_USERNAME_LENGTH = 256;
export const MAX_PASSWORD_LENGTH = 1024;
/** DNs per search of one level of an iterative nested-group search (`(|(member=a)(member=b)...)`). */
const DNS_PER_NESTED_SEARCH = 50;
/** Page size of group searches (Active Directory's MaxPageSize is 1000; OpenLDAP's default size limit 500). */
const PAGE_SIZE = 250;

/** Idle connections kept per directory, and how long one may wait before it is closed instead of reused. */
export const POOL_SIZE = 8;
export const POOL_IDLE_MS = 30_000;

/** A connection and the sockets under it (so that a deadline can destroy them wherever they hang). */
interface Connection {
  client: Client;
  sockets: Socket[];
  /** Set up (StartTLS) and bound as the service account: a pooled connection. */
  ready: boolean;
  idleSince: number;
}

/** The one answer to a wrong password, an unknown user and an ambiguous filter alike. */
export function credentialsRejected(displayName: string, debug: string): LoginFailure {
  return new LoginFailure('credentials_rejected', `${displayName} did not accept this username and password.`, { status: 401, code: 'AccessDenied', debug });
}

/** A directory and how to log in against it. */
export class LdapDirectory {
  readonly #settings: LdapSettings;
  readonly #displayName: string;
  readonly #now: () => Date;
  /** Connections that just served a login, newest last. */
  readonly #idle: Connection[] = [];
  /** Connections opened so far (tests read it to see the pool work). */
  opened = 0;

  constructor(settings: LdapSettings, displayName: string, now: () => Date = () => new Date()) {
    this.#settings = settings;
    this.#displayName = displayName;
    this.#now = now;
  }

  /**
   * Checks a username and password; returns the profile the `ldap` definition's claims are read from.
   * Throws LoginFailure: `credentials_rejected` (401), `account_disabled` / `account_expired` (403),
   * `provider_unreachable` (503: down, slow, TLS refused) or `provider_failed` (502).
   */
  async authenticate(username: string, password: string): Promise<Record<string, unknown>> {
    // An empty password would be an unauthenticated bind (RFC 4513 §5.1.2), which many directories answer
    // with success: it must never count as a login, so it never reaches the directory.
    if (password === '') throw credentialsRejected(this.#displayName, 'empty password');
    if (username === '' || username.length > MAX_USERNAME_LENGTH || password.length > MAX_PASSWORD_LENGTH) {
      throw credentialsRejected(this.#displayName, 'username empty or too long, or password too long');
    }
    const connection = this.#take();
    if (!connection.ready) return this.#attempt(connection, username, password);
    try {
      return await this.#attempt(connection, username, password);
    } catch (err) {
      // A pooled connection the directory has closed meanwhile: once more on a new one.
      if (err instanceof LoginFailure && err.reason === 'provider_unreachable') return this.#attempt(this.#connect(), username, password);
      throw err;
    }
  }

  /** One login on `connection`, within the deadline; back to the pool when it worked, closed when not. */
  async #attempt(connection: Connection, username: string, password: string): Promise<Record<string, unknown>> {
    for (const socket of connection.sockets) socket.ref();
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        for (const socket of connection.sockets) socket.destroy();
        reject(providerUnreachable(this.#displayName, `no answer within ${this.#settings.timeoutMs} ms`));
      }, this.#settings.timeoutMs);
    });
    try {
      const profile = await Promise.race([this.#login(connection, username, password), deadline]);
      clearTimeout(timer);
      this.#release(connection);
      return profile;
    } catch (err) {
      clearTimeout(timer);
      close(connection);
      throw this.#classify(err);
    }
  }

  /** Closes the idle connections (the provider is going away). */
  close(): void {
    for (const connection of this.#idle.splice(0)) close(connection);
  }

  /** The newest idle connection young enough to reuse (older ones are closed on the way), else a new one. */
  #take(): Connection {
    const now = Date.now();
    for (let connection = this.#idle.pop(); connection !== undefined; connection = this.#idle.pop()) {
      const alive = connection.sockets.length > 0 && connection.sockets.every((socket) => !socket.destroyed);
      if (alive && now - connection.idleSince < POOL_IDLE_MS) return connection;
      close(connection);
    }
    return this.#connect();
  }

  #connect(): Connection {
    const sockets: Socket[] = [];
    this.opened++;
    return { client: this.#client(sockets), sockets, ready: false, idleSince: Date.now() };
  }

  /** Back to the pool after a login that worked (bound as the service account), or closed when it is full. */
  #release(connection: Connection): void {
    if (this.#idle.length >= POOL_SIZE) return close(connection);
    connection.ready = true;
    connection.idleSince = Date.now();
    // An idle connection never keeps the process alive.
    for (const socket of connection.sockets) socket.unref();
    this.#idle.push(connection);
  }

  #client(sockets: Socket[]): Client {
    const settings = this.#settings;
    const url = new URL(settings.url);
    const host = url.hostname.replace(/^\[|\]$/g, '');
    // The name the certificate must carry: tls.server_name, else the URL's host (an IP address needs an IP SAN).
    const expectedName = settings.serverName ?? host;
    const tlsOptions: ConnectionOptions = {
      ...(settings.ca !== undefined ? { ca: settings.ca } : {}),
      // RFC 6066 §3: SNI carries host names only.
      ...(isIP(expectedName) === 0 ? { servername: expectedName } : {}),
      // Checked explicitly: a StartTLS upgrade hands Node a socket without a host to check against.
      checkServerIdentity: (_name, certificate) => checkServerIdentity(expectedName, certificate),
      minVersion: 'TLSv1.2',
    };
    return new Client({
      url: settings.url,
      timeout: settings.timeoutMs,
      connectTimeout: settings.connectTimeoutMs,
      // ldapts takes any tlsOptions as "connect with TLS": given for ldaps:// only; StartTLS gets them below.
      ...(url.protocol === 'ldaps:' ? { tlsOptions } : {}),
      strictDN: true,
      // Every socket is kept, so that the login's deadline can destroy it wherever it hangs.
      createConnection: ((...args: Parameters<typeof netConnect>) => {
        const socket = netConnect(...args);
        sockets.push(socket);
        return socket;
      }) as typeof netConnect,
      createSecureConnection: ((...args: Parameters<typeof tlsConnect>) => {
        // StartTLS passes one options object with the plain socket; ldaps:// passes (port, host, options).
        const withOptions = args.length === 1 && typeof args[0] === 'object' ? [{ ...tlsOptions, ...(args[0] as ConnectionOptions) }] : args;
        const socket: TLSSocket = (tlsConnect as (...a: unknown[]) => TLSSocket)(...withOptions);
        sockets.push(socket);
        return socket;
      }) as typeof tlsConnect,
    });
  }

  async #login(connection: Connection, username: string, password: string): Promise<Record<string, unknown>> {
    const settings = this.#settings;
    const { client } = connection;
    if (!connection.ready) {
      if (settings.startTls) await client.startTLS({});
      await this.#bindServiceAccount(client);
    }
    const user = settings.user;
    const attributes = [...new Set([user.idAttribute, user.usernameAttribute, user.emailAttribute, user.nameAttribute, 'memberOf', 'userAccountControl', 'accountExpires'].filter((a) => a !== 'dn'))];
    const { searchEntries } = await client.search(user.baseDn, {
      scope: 'sub',
      filter: userFilter(user.filter, username),
      attributes,
      // Two are enough to know the filter is ambiguous.
      sizeLimit: 2,
      timeLimit: Math.ceil(settings.timeoutMs / 1000),
      explicitBufferAttributes: ['objectGUID'],
    });
    const entry = searchEntries.length === 1 ? searchEntries[0]! : undefined;
    // The same work either way: a bind with this password, as the entry or as a DN that does not exist.
    const bindDn = entry?.dn ?? `cn=stsgate-no-such-user,${user.baseDn}`;
    try {
      await client.bind(bindDn, password);
    } catch (err) {
      if (err instanceof InvalidCredentialsError) throw credentialsRejected(this.#displayName, entry ? 'wrong password' : `${searchEntries.length} entries matched the user filter`);
      throw err;
    }
    if (!entry) throw credentialsRejected(this.#displayName, `${searchEntries.length} entries matched the user filter, and the bind as a made-up DN succeeded`);
    const refusal = accountRefusal({ userAccountControl: attributeText('userAccountControl', entry.userAccountControl), accountExpires: attributeText('accountExpires', entry.accountExpires) }, this.#now());
    if (refusal === 'account_disabled') throw new LoginFailure(refusal, `This account is disabled in ${this.#displayName}.`, { status: 403, code: 'AccessDenied' });
    if (refusal === 'account_expired') throw new LoginFailure(refusal, `This account has expired in ${this.#displayName}.`, { status: 403, code: 'AccessDenied' });
    // Back to the service account: the user may not be allowed to read groups.
    await this.#bindServiceAccount(client);
    const groups = await this.#groups(client, entry);
    const text = (name: string) => (name === 'dn' ? entry.dn : attributeText(name, entry[name] as never));
    const id = text(user.idAttribute);
    if (id === undefined) throw providerFailed(this.#displayName, `the user entry has no ${user.idAttribute}`);
    const email = text(user.emailAttribute);
    const name = text(user.nameAttribute);
    return ldapProfile({ dn: entry.dn, id, username: text(user.usernameAttribute) ?? username, ...(email !== undefined ? { email } : {}), ...(name !== undefined ? { name } : {}) }, groups, settings.groups.max);
  }

  async #bindServiceAccount(client: Client): Promise<void> {
    try {
      await client.bind(this.#settings.bindDn, this.#settings.bindPassword);
    } catch (err) {
      if (err instanceof ResultCodeError) throw providerFailed(this.#displayName, `the service account bind was refused: ${err.message}`, err);
      throw err;
    }
  }

  /**
   * The user's groups: memberOf, then the group search (in-chain for AD), then iterative nesting. The
   * searches stop once more than `max` groups are known (the claim is capped at `max` and says so).
   */
  async #groups(client: Client, entry: Entry): Promise<GroupSet> {
    const { groups: settings } = this.#settings;
    const found = new GroupSet();
    const limit = settings.max + 1;
    // memberOf came with the entry: all of it is kept (and capped by name when the claims are made).
    if (settings.memberOf) for (const dn of attributeTexts(entry.memberOf)) found.add(dn);
    const search = settings.search;
    if (search === undefined) return found;
    const inChain = settings.nested === 'ad';
    await this.#searchGroups(client, groupFilter(search.filter, entry.dn, inChain), found, limit);
    if (settings.nested !== 'search') return found;
    // Nested groups level by level, for directories without an in-chain rule: the groups whose members
    // include any group of the last level, `max_depth` levels at most (a cycle ends at the first repeat).
    let frontier = found.dns();
    for (let depth = 1; depth <= settings.maxDepth && frontier.length > 0 && found.size < limit; depth++) {
      const sizeBefore = found.size;
      for (let i = 0; i < frontier.length && found.size < limit; i += DNS_PER_NESTED_SEARCH) {
        await this.#searchGroups(client, anyMemberFilter(search.filter, frontier.slice(i, i + DNS_PER_NESTED_SEARCH)), found, limit);
      }
      frontier = found.dns().slice(sizeBefore);
    }
    return found;
  }

  async #searchGroups(client: Client, filter: string, found: GroupSet, limit: number): Promise<void> {
    const search = this.#settings.groups.search!;
    const pages = client.searchPaginated(search.baseDn, { scope: 'sub', filter, attributes: [search.nameAttribute], paged: { pageSize: PAGE_SIZE }, timeLimit: Math.ceil(this.#settings.timeoutMs / 1000) });
    for await (const page of pages) {
      for (const group of page.searchEntries) {
        if (found.size >= limit) return;
        found.add(group.dn, attributeText(search.nameAttribute, group[search.nameAttribute] as never));
      }
    }
  }

  /** Anything not already a LoginFailure: a result code is the directory's answer (502); anything else, no answer (503). */
  #classify(err: unknown): unknown {
    if (err instanceof LoginFailure) return err;
    const detail = err instanceof Error ? `${(err as { code?: unknown }).code ?? err.name}: ${err.message}` : String(err);
    if (err instanceof ResultCodeError) return providerFailed(this.#displayName, `LDAP result ${err.code}: ${err.message}`, err);
    return providerUnreachable(this.#displayName, detail, err);
  }
}

/** Unbinds (best effort) and destroys a connection's sockets. */
function close(connection: Connection): void {
  connection.client.unbind().catch(() => undefined);
  for (const socket of connection.sockets) socket.destroy();
}
