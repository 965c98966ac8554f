/**
 * A loopback OpenID Connect issuer for tests: a real HTTP server on 127.0.0.1 that serves a discovery
 * document and a JWKS, mints signed JWTs, rotates keys, counts fetches, and can be told to misbehave.
 *
 *   const idp = await TestIssuer.start();
 *   const token = await idp.mint({ repository: 'acme/app' });           // RS256, aud sts.example.com
 *   const es = await idp.mint({ sub: 'x' }, { alg: 'ES256' });
 *   idp.fail('jwks', { kind: 'status', status: 500 });                  // until idp.heal()
 *   expect(idp.fetches.jwks).toBe(1);
 *   await idp.close();
 *
 * Its URLs are plain http: the gateway must run with `allowInsecureHttp: true` against it.
 */

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

import { CompactSign, exportJWK, generateKeyPair, type CryptoKey, type JWK } from 'jose';

/** Algorithms the double can sign with. */
export type TestIssuerAlgorithm = 'RS256' | 'ES256';

/** One signing key the double holds; `publicJwk` is what its JWKS serves. */
export interface TestIssuerKey {
  kid: string;
  alg: TestIssuerAlgorithm;
  privateKey: CryptoKey;
  publicKey: CryptoKey;
  publicJwk: JWK;
}

/** How an endpoint misbehaves until `heal()`. */
export type TestIssuerFailure =
  | { kind: 'status'; status: number }
  /** Accept the request and never answer. */
  | { kind: 'hang' }
  /** Answer normally after `delayMs`. */
  | { kind: 'slow'; delayMs: number }
  /** 200 with a body that is not JSON. */
  | { kind: 'non-json' }
  /** This exact body, with `status` (default 200) and a JSON content type. */
  | { kind: 'body'; body: string; status?: number }
  /** 200 with a valid JSON body of about `bytes` bytes (default 2 MiB). */
  | { kind: 'huge'; bytes?: number }
  /** Discovery only: a document whose `issuer` is `issuer` (default: the real one plus a trailing slash). */
  | { kind: 'wrong-issuer'; issuer?: string };

export interface TestIssuerOptions {
  /** Path of the JWKS. Default `/jwks`. */
  jwksPath?: string;
  /** Path appended to the origin to form the issuer, e.g. `/tenant-a`. Default: none. */
  issuerPath?: string;
}

export interface MintOptions {
  /** Which algorithm signs; the newest key of that algorithm is used. Default RS256. */
  alg?: TestIssuerAlgorithm;
  /** Sign with this key instead (its alg wins). */
  kid?: string;
  /** Merged over the protected header `{ alg, kid, typ: 'JWT' }`; a value of `undefined` removes it. */
  header?: Record<string, unknown>;
  /** Seconds from `iat` to `exp`. Default 300. */
  expiresIn?: number;
  /** `iat`, epoch seconds. Default now. */
  issuedAt?: number;
}

/** Default `aud` of minted tokens. */
export const TEST_AUDIENCE = 'sts.example.com';
/** Default `sub` of minted tokens. */
export const TEST_SUBJECT = 'repo:acme/app:ref:refs/heads/main';

/** The loopback OIDC issuer double. */
export class TestIssuer {
  /** The issuer (`iss`), e.g. `http://127.0.0.1:43123`. */
  readonly url: string;
  readonly discoveryUrl: string;
  readonly jwksUri: string;
  /** How many requests each endpoint has received (including failed ones). */
  readonly fetches = { discovery: 0, jwks: 0, other: 0 };

  readonly #server: Server;
  readonly #jwksPath: string;
  readonly #discoveryPath: string;
  readonly #keys: TestIssuerKey[] = [];
  /** Public keys served beside its own, which it never signs with (see `publish`). */
  readonly #published: JWK[] = [];
  readonly #failures = new Map<'discovery' | 'jwks', TestIssuerFailure>();
  readonly #timers = new Set<NodeJS.Timeout>();
  readonly #counters: Record<TestIssuerAlgorithm, number> = { RS256: 0, ES256: 0 };

  private constructor(server: Server, origin: string, options: TestIssuerOptions) {
    this.#server = server;
    this.url = `${origin}${options.issuerPath ?? ''}`;
    this.#jwksPath = options.jwksPath ?? '/jwks';
    this.#discoveryPath = `${options.issuerPath ?? ''}/.well-known/openid-configuration`;
    this.discoveryUrl = `${origin}${this.#discoveryPath}`;
    this.jwksUri = `${origin}${this.#jwksPath}`;
  }

  /** Starts a double with one RS256 key (`rs-1`) and one ES256 key (`es-1`). */
  static async start(options: TestIssuerOptions = {}): Promise<TestIssuer> {
    let self: TestIssuer | undefined;
    const server = createServer((req, res) => {
      if (self) self.#handle(req, res);
      else res.writeHead(503).end();
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const { port } = server.address() as AddressInfo;
    self = new TestIssuer(server, `http://127.0.0.1:${port}`, options);
    await self.rotate('RS256');
    await self.rotate('ES256');
    return self;
  }

  /** Adds a new key for `alg` (kid `rs-2`, `es-2`, ...); older keys stay published. Returns it. */
  async rotate(alg: TestIssuerAlgorithm = 'RS256'): Promise<TestIssuerKey> {
    const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
    const kid = `${alg === 'RS256' ? 'rs' : 'es'}-${++this.#counters[alg]}`;
    const publicJwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
    const key = { kid, alg, privateKey, publicKey, publicJwk };
    this.#keys.push(key);
    return key;
  }

  /** The newest key for `alg`, or the key with id `kid`. */
  key(selector: { alg?: TestIssuerAlgorithm; kid?: string } = {}): TestIssuerKey {
    const found = selector.kid
      ? this.#keys.find((k) => k.kid === selector.kid)
      : this.#keys.filter((k) => k.alg === (selector.alg ?? 'RS256')).at(-1);
    if (!found) throw new Error(`test issuer has no key ${JSON.stringify(selector)}`);
    return found;
  }

  /** Serves `jwk` in its JWKS from now on, after its own keys: a foreign, weak or otherwise unusable key. */
  publish(jwk: JWK): void {
    this.#published.push({ ...jwk });
  }

  /** The public JWKS it serves, for inline-keys configurations. */
  jwks(): { keys: JWK[] } {
    return { keys: [...this.#keys.map((k) => ({ ...k.publicJwk })), ...this.#published.map((k) => ({ ...k }))] };
  }

  /**
   * A signed JWT. Defaults: `iss` = this issuer, `sub` = TEST_SUBJECT, `aud` = TEST_AUDIENCE,
   * `iat` = now, `exp` = iat + 300. `claims` override them; a claim set to `undefined` is left out.
   */
  async mint(claims: Record<string, unknown> = {}, options: MintOptions = {}): Promise<string> {
    const key = this.key(options.kid ? { kid: options.kid } : { alg: options.alg ?? 'RS256' });
    const iat = options.issuedAt ?? Math.floor(Date.now() / 1000);
    const payload = { iss: this.url, sub: TEST_SUBJECT, aud: TEST_AUDIENCE, iat, exp: iat + (options.expiresIn ?? 300), ...claims };
    const header = withoutUndefined({ alg: key.alg, kid: key.kid, typ: 'JWT', ...options.header });
    return new CompactSign(new TextEncoder().encode(JSON.stringify(payload)))
      .setProtectedHeader(header as { alg: string })
      .sign(key.privateKey);
  }

  /** Makes `endpoint` misbehave until `heal()`. */
  fail(endpoint: 'discovery' | 'jwks' | 'both', failure: TestIssuerFailure): void {
    if (endpoint !== 'jwks') this.#failures.set('discovery', failure);
    if (endpoint !== 'discovery') this.#failures.set('jwks', failure);
  }

  /** Ends every failure mode. */
  heal(): void {
    this.#failures.clear();
  }

  /** Resets the fetch counters. */
  resetFetches(): void {
    this.fetches.discovery = 0;
    this.fetches.jwks = 0;
    this.fetches.other = 0;
  }

  /** Stops the server, dropping hanging requests. */
  async close(): Promise<void> {
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const endpoint = path === this.#discoveryPath ? 'discovery' : path === this.#jwksPath ? 'jwks' : undefined;
    if (!endpoint || req.method !== 'GET') {
      this.fetches.other++;
      res.writeHead(404).end();
      return;
    }
    this.fetches[endpoint]++;
    const body = endpoint === 'discovery' ? { issuer: this.url, jwks_uri: this.jwksUri, id_token_signing_alg_values_supported: ['RS256', 'ES256'] } : this.jwks();
    const failure = this.#failures.get(endpoint);
    switch (failure?.kind) {
      case undefined:
        return sendJson(res, body);
      case 'status':
        res.writeHead(failure.status, { 'content-type': 'text/plain' }).end('failure');
        return;
      case 'hang':
        return;
      case 'slow': {
        const timer = setTimeout(() => {
          this.#timers.delete(timer);
          sendJson(res, body);
        }, failure.delayMs);
        this.#timers.add(timer);
        return;
      }
      case 'non-json':
        res.writeHead(200, { 'content-type': 'application/json' }).end('<html>not json</html>');
        return;
      case 'body':
        res.writeHead(failure.status ?? 200, { 'content-type': 'application/json' }).end(failure.body);
        return;
      case 'huge':
        sendJson(res, { ...body, padding: 'x'.repeat(failure.bytes ?? 2 * 1024 * 1024) });
        return;
      case 'wrong-issuer':
        sendJson(res, endpoint === 'discovery' ? { ...body, issuer: failure.issuer ?? `${this.url}/` } : body);
        return;
    }
  }
}

function sendJson(res: ServerResponse, body: unknown): void {
  res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

function withoutUndefined(record: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(record).filter(([, value]) => value !== undefined));
}
