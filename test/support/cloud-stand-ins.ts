/**
 * Loopback stand-ins for GCP's and Azure's token endpoints (issue 13), for what cannot run here (Google's
 * and Microsoft's own servers). Each trusts the gateway under test as an OIDC issuer by discovery, verifies
 * the target token it is handed by the gateway's JWKS (signature, issuer, audience, lifetime, the cloud's
 * own limits), checks each request parameter the cloud documents, records every request, and answers as
 * the cloud does, or as scripted (errors, 429 with Retry-After, garbage, silence).
 *
 * - GCP: `POST /v1/token` (STS token exchange, workload identity federation and Credential Access
 *   Boundary downscoping), `POST /v1/projects/-/serviceAccounts/<email>:generateAccessToken` (IAM
 *   Credentials), and `GET /tokeninfo?access_token=` (who a token is, as Google's tokeninfo says).
 * - Azure (https: MSAL refuses anything else): the tenant's OpenID configuration and
 *   `POST /<tenant>/oauth2/v2.0/token` (client credentials with a client assertion, matched against the
 *   application's federated identity credentials), and `GET /me` (who a token is).
 */
import { execFileSync } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify, type JWTPayload } from 'jose';

export type ScriptedAnswer =
  | { kind: 'error'; status: number; body?: unknown; retryAfter?: number }
  | { kind: 'garbage' }
  | { kind: 'hang' };

export interface RecordedRequest {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  form?: URLSearchParams;
  json?: Record<string, unknown>;
}

/** What a stand-in issued: its access token and whom it names. */
interface IssuedToken {
  principal: string;
  sub: string;
  scopes: string[];
  expiresAtMs: number;
  boundary?: unknown;
}

abstract class StandIn {
  readonly requests: RecordedRequest[] = [];
  /** Scripted answers, each used once, before the stand-in's own logic. */
  readonly script: ScriptedAnswer[] = [];
  readonly issued = new Map<string, IssuedToken>();
  /** How long each POST waits before its answer (a slow cloud, so that concurrent requests overlap). */
  delayMs = 0;
  url = '';
  protected server!: Server;
  readonly #hanging = new Set<ServerResponse>();
  #jwks: ReturnType<typeof createRemoteJWKSet> | undefined;

  /** `issuer`: the gateway's public URL; `reach`: where it answers, when that differs (set both when the gateway starts after the stand-in). */
  constructor(public issuer: string, public reach: string = issuer) {}

  protected async listen(server: Server, scheme: 'http' | 'https'): Promise<void> {
    this.server = server;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    this.url = `${scheme}://127.0.0.1:${(server.address() as { port: number }).port}`;
  }

  async close(): Promise<void> {
    for (const res of this.#hanging) res.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** The calls that reached `path` (a suffix match). */
  calls(path: string): RecordedRequest[] {
    return this.requests.filter((r) => r.path.endsWith(path));
  }

  protected async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    const url = new URL(req.url ?? '/', 'http://stand-in');
    const type = req.headers['content-type'] ?? '';
    const recorded: RecordedRequest = {
      method: req.method ?? 'GET',
      path: url.pathname,
      headers: req.headers,
      ...(type.startsWith('application/x-www-form-urlencoded') ? { form: new URLSearchParams(text) } : {}),
      ...(type.startsWith('application/json') && text !== '' ? { json: JSON.parse(text) as Record<string, unknown> } : {}),
    };
    this.requests.push(recorded);
    if (req.method === 'POST' && this.delayMs > 0) await new Promise((resolve) => setTimeout(resolve, this.delayMs));
    const scripted = req.method === 'POST' ? this.script.shift() : undefined;
    if (scripted?.kind === 'hang') {
      this.#hanging.add(res);
      return;
    }
    if (scripted?.kind === 'garbage') return send(res, 200, '<html>not JSON</html>', 'text/html');
    if (scripted?.kind === 'error') {
      return send(res, scripted.status, JSON.stringify(scripted.body ?? { error: 'server_error' }), 'application/json', scripted.retryAfter !== undefined ? { 'retry-after': String(scripted.retryAfter) } : {});
    }
    try {
      const [status, body] = await this.answer(recorded, url);
      send(res, status, JSON.stringify(body), 'application/json');
    } catch (err) {
      send(res, 500, JSON.stringify({ error: 'stand_in_bug', error_description: (err as Error).message }), 'application/json');
    }
  }

  protected abstract answer(request: RecordedRequest, url: URL): Promise<[number, unknown]>;

  /** Verifies a token stsgate signed, by its published JWKS (found by discovery), for `audience`. */
  protected async verify(token: string, audience: string, algorithms: string[]): Promise<JWTPayload> {
    if (!this.#jwks) {
      const discovery = (await (await fetch(`${this.reach}/.well-known/openid-configuration`)).json()) as { jwks_uri: string; issuer: string };
      if (discovery.issuer !== this.issuer) throw new Error(`discovery names issuer ${discovery.issuer}`);
      const jwksUri = new URL(discovery.jwks_uri);
      this.#jwks = createRemoteJWKSet(new URL(jwksUri.pathname, this.reach));
    }
    const { payload } = await jwtVerify(token, this.#jwks, { issuer: this.issuer, audience, algorithms });
    return payload;
  }

  protected mint(token: Omit<IssuedToken, 'expiresAtMs'>, seconds: number, prefix: string): string {
    const value = `${prefix}${randomBytes(24).toString('base64url')}`;
    this.issued.set(value, { ...token, expiresAtMs: Date.now() + seconds * 1000 });
    return value;
  }

  protected live(authorization: string | undefined): IssuedToken | undefined {
    const token = /^Bearer (\S+)$/.exec(authorization ?? '')?.[1];
    const issued = token === undefined ? undefined : this.issued.get(token);
    return issued && issued.expiresAtMs > Date.now() ? issued : undefined;
  }
}

function send(res: ServerResponse, status: number, body: string, type: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': type, ...headers });
  res.end(body);
}

const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';
const CLOUD_PLATFORM = 'https://www.googleapis.com/auth/cloud-platform';

export interface GcpStandInOptions {
  /** The workload identity pool provider's resource name (projects/N/locations/global/workloadIdentityPools/P/providers/X). */
  provider: string;
  /** Service accounts the pool's principals may impersonate: email -> the `sub` values allowed. */
  serviceAccounts: Record<string, string[]>;
  /** The longest generateAccessToken lifetime the organization allows (seconds; Google's default 3600). */
  maxLifetimeSeconds?: number;
}

export class GcpStandIn extends StandIn {
  private constructor(issuer: string, private readonly options: GcpStandInOptions & { reach?: string }) {
    super(issuer, options.reach);
  }

  static async start(issuer: string, options: GcpStandInOptions & { reach?: string }): Promise<GcpStandIn> {
    const standIn = new GcpStandIn(issuer, options);
    await standIn.listen(createHttpServer((req, res) => void standIn.handle(req, res)), 'http');
    return standIn;
  }

  protected async answer(request: RecordedRequest, url: URL): Promise<[number, unknown]> {
    if (request.method === 'POST' && request.path === '/v1/token') return this.#sts(request.form ?? new URLSearchParams());
    const impersonate = /^\/v1\/projects\/-\/serviceAccounts\/([^/:]+):generateAccessToken$/.exec(request.path);
    if (request.method === 'POST' && impersonate) return this.#generateAccessToken(decodeURIComponent(impersonate[1]!), request);
    if (request.method === 'GET' && request.path === '/tokeninfo') {
      const issued = this.issued.get(url.searchParams.get('access_token') ?? '');
      if (!issued || issued.expiresAtMs <= Date.now()) return [400, { error: 'invalid_token', error_description: 'Invalid Value' }];
      return [200, { sub: issued.sub, email: issued.principal, scope: issued.scopes.join(' '), expires_in: Math.floor((issued.expiresAtMs - Date.now()) / 1000), ...(issued.boundary ? { access_boundary: issued.boundary } : {}) }];
    }
    return [404, { error: { code: 404, message: 'Not Found', status: 'NOT_FOUND' } }];
  }

  /** Google STS: https://cloud.google.com/iam/docs/reference/sts/rest/v1/TopLevel/token */
  async #sts(form: URLSearchParams): Promise<[number, unknown]> {
    const refuse = (error: string, description: string): [number, unknown] => [400, { error, error_description: description }];
    if (form.get('grant_type') !== TOKEN_EXCHANGE) return refuse('invalid_request', 'Invalid value for "grant_type"');
    if (form.get('requested_token_type') !== ACCESS_TOKEN_TYPE) return refuse('invalid_request', 'Invalid value for "requested_token_type"');
    const subjectToken = form.get('subject_token') ?? '';
    const subjectType = form.get('subject_token_type');
    if (subjectType === ACCESS_TOKEN_TYPE) {
      // Downscoping (Credential Access Boundary): the subject is a Google access token, `options` the boundary.
      const source = this.issued.get(subjectToken);
      if (!source || source.expiresAtMs <= Date.now()) return refuse('invalid_grant', 'The subject token is invalid or expired');
      const options = JSON.parse(form.get('options') ?? '{}') as { accessBoundary?: { accessBoundaryRules?: { availableResource?: string; availablePermissions?: string[] }[] } };
      const rules = options.accessBoundary?.accessBoundaryRules ?? [];
      if (rules.length < 1 || rules.length > 10 || !rules.every((r) => typeof r.availableResource === 'string' && r.availablePermissions?.length && r.availablePermissions.every((p) => p.startsWith('inRole:')))) {
        return refuse('invalid_request', 'Invalid access boundary');
      }
      const seconds = Math.floor((source.expiresAtMs - Date.now()) / 1000);
      const token = this.mint({ principal: source.principal, sub: source.sub, scopes: source.scopes, boundary: options.accessBoundary }, seconds, 'ya29.d.');
      // Google gives the downscoped token's lifetime only when the source is a service account's.
      return [200, { access_token: token, issued_token_type: ACCESS_TOKEN_TYPE, token_type: 'Bearer', ...(source.principal.includes('@') ? { expires_in: seconds } : {}) }];
    }
    if (subjectType !== 'urn:ietf:params:oauth:token-type:jwt' && subjectType !== 'urn:ietf:params:oauth:token-type:id_token') return refuse('invalid_request', 'Invalid value for "subject_token_type"');
    const audience = `//iam.googleapis.com/${this.options.provider}`;
    if (form.get('audience') !== audience) return refuse('invalid_target', 'The target service indicated by the "audience" parameters is invalid');
    const scopes = (form.get('scope') ?? '').split(' ').filter(Boolean);
    if (scopes.length === 0) return refuse('invalid_scope', 'Scope is required');
    let claims: JWTPayload;
    try {
      // A provider's default allowed audience: its full resource name as an https URL.
      claims = await this.verify(subjectToken, `https://iam.googleapis.com/${this.options.provider}`, ['RS256', 'ES256']);
    } catch (err) {
      return refuse('invalid_grant', `The audience in ID Token [...] does not match the expected audience, or the token is invalid: ${(err as Error).message}`);
    }
    if (typeof claims.sub !== 'string' || new TextEncoder().encode(claims.sub).length > 127) return refuse('invalid_grant', 'The size of mapped attribute google.subject exceeds the 127 bytes limit');
    if (claims.exp! - claims.iat! >= 48 * 3600) return refuse('invalid_grant', 'The token lifetime exceeds 48 hours');
    const principal = `principal://iam.googleapis.com/${this.options.provider.replace(/\/providers\/[^/]+$/, '')}/subject/${claims.sub}`;
    const token = this.mint({ principal, sub: claims.sub, scopes }, 3600, 'ya29.fed.');
    return [200, { access_token: token, issued_token_type: ACCESS_TOKEN_TYPE, token_type: 'Bearer', expires_in: 3600 }];
  }

  /** IAM Credentials: https://cloud.google.com/iam/docs/reference/credentials/rest/v1/projects.serviceAccounts/generateAccessToken */
  async #generateAccessToken(email: string, request: RecordedRequest): Promise<[number, unknown]> {
    const refuse = (status: number, message: string, code: string): [number, unknown] => [status, { error: { code: status, message, status: code } }];
    const caller = this.live(request.headers.authorization);
    if (!caller) return refuse(401, 'Request had invalid authentication credentials.', 'UNAUTHENTICATED');
    if (!caller.scopes.includes(CLOUD_PLATFORM)) return refuse(403, 'Request had insufficient authentication scopes.', 'PERMISSION_DENIED');
    const allowed = this.options.serviceAccounts[email];
    if (!allowed?.includes(caller.sub)) return refuse(403, `Permission 'iam.serviceAccounts.getAccessToken' denied on resource (or it may not exist).`, 'PERMISSION_DENIED');
    const body = request.json ?? {};
    const scopes = body.scope;
    if (!Array.isArray(scopes) || scopes.length === 0 || !scopes.every((s) => typeof s === 'string')) return refuse(400, 'Scope required.', 'INVALID_ARGUMENT');
    const lifetime = /^(\d+)s$/.exec(String(body.lifetime ?? '3600s'));
    const seconds = lifetime ? Number(lifetime[1]) : NaN;
    if (!(seconds >= 1 && seconds <= (this.options.maxLifetimeSeconds ?? 3600))) return refuse(400, 'The lifetime of the token is out of range.', 'INVALID_ARGUMENT');
    const token = this.mint({ principal: email, sub: caller.sub, scopes: scopes as string[] }, seconds, 'ya29.c.');
    return [200, { accessToken: token, expireTime: new Date(this.issued.get(token)!.expiresAtMs).toISOString() }];
  }
}

export interface AzureStandInOptions {
  tenantId: string;
  /** The application's federated identity credentials: client id -> subjects it accepts. */
  applications: Record<string, string[]>;
}

export class AzureStandIn extends StandIn {
  /** The PEM CA certificate of the stand-in's TLS certificate (the broker's `ca_file` points at it). */
  caFile = '';
  #dir = '';

  private constructor(issuer: string, private readonly options: AzureStandInOptions & { reach?: string }) {
    super(issuer, options.reach);
  }

  static async start(issuer: string, options: AzureStandInOptions & { reach?: string }): Promise<AzureStandIn> {
    const standIn = new AzureStandIn(issuer, options);
    const dir = mkdtempSync(join(tmpdir(), 'stsgate-azure-'));
    standIn.#dir = dir;
    const key = join(dir, 'key.pem');
    standIn.caFile = join(dir, 'cert.pem');
    execFileSync('/usr/bin/openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', standIn.caFile], { stdio: 'ignore' });
    const server = createHttpsServer({ key: readFileSync(key), cert: readFileSync(standIn.caFile) }, (req, res) => void standIn.handle(req, res));
    await standIn.listen(server, 'https');
    return standIn;
  }

  override async close(): Promise<void> {
    await super.close();
    rmSync(this.#dir, { recursive: true, force: true });
  }

  protected async answer(request: RecordedRequest): Promise<[number, unknown]> {
    const tenant = this.options.tenantId;
    const base = `${this.url}/${tenant}`;
    if (request.method === 'GET' && request.path === `/${tenant}/v2.0/.well-known/openid-configuration`) {
      return [200, {
        issuer: `${this.url}/${tenant}/v2.0`,
        token_endpoint: `${base}/oauth2/v2.0/token`,
        authorization_endpoint: `${base}/oauth2/v2.0/authorize`,
        end_session_endpoint: `${base}/oauth2/v2.0/logout`,
        jwks_uri: `${this.url}/${tenant}/discovery/v2.0/keys`,
        response_types_supported: ['code', 'id_token', 'code id_token', 'id_token token'],
        subject_types_supported: ['pairwise'],
        id_token_signing_alg_values_supported: ['RS256'],
        token_endpoint_auth_methods_supported: ['client_secret_post', 'private_key_jwt', 'client_secret_basic'],
      }];
    }
    if (request.method === 'POST' && request.path === `/${tenant}/oauth2/v2.0/token`) return this.#token(request.form ?? new URLSearchParams());
    if (request.method === 'GET' && request.path === '/me') {
      const caller = this.live(request.headers.authorization);
      return caller ? [200, { appid: caller.principal, sub: caller.sub, scp: caller.scopes.join(' ') }] : [401, { error: { code: 'InvalidAuthenticationToken', message: 'Access token is empty or invalid.' } }];
    }
    return [404, { error: 'not_found' }];
  }

  /** Entra ID's client credentials grant with a federated client assertion. */
  async #token(form: URLSearchParams): Promise<[number, unknown]> {
    const refuse = (status: number, error: string, code: number, description: string): [number, unknown] => {
      const trace = randomUUID();
      const correlation = randomUUID();
      return [status, { error, error_description: `AADSTS${code}: ${description} Trace ID: ${trace} Correlation ID: ${correlation} Timestamp: ${new Date().toISOString()}`, error_codes: [code], timestamp: new Date().toISOString(), trace_id: trace, correlation_id: correlation }];
    };
    if (form.get('grant_type') !== 'client_credentials') return refuse(400, 'unsupported_grant_type', 70003, 'The app requested an unsupported grant type.');
    const clientId = form.get('client_id') ?? '';
    const subjects = this.options.applications[clientId];
    if (!subjects) return refuse(400, 'unauthorized_client', 700016, `Application with identifier '${clientId}' was not found in the directory.`);
    if (form.get('client_assertion_type') !== 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer') return refuse(400, 'invalid_request', 90014, 'The required field client_assertion_type is missing.');
    const scope = form.get('scope') ?? '';
    const resource = scope.split(' ').find((s) => s.endsWith('/.default'));
    if (!resource) return refuse(400, 'invalid_scope', 1002012, 'The provided value for scope is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier.');
    const assertion = form.get('client_assertion') ?? '';
    let claims: JWTPayload;
    try {
      if (decodeProtectedHeader(assertion).alg !== 'RS256') throw new Error('only RS256 is accepted');
      claims = await this.verify(assertion, 'api://AzureADTokenExchange', ['RS256']);
    } catch (err) {
      return refuse(400, 'invalid_client', 700211, `No matching federated identity record found for presented assertion issuer or audience: ${(err as Error).message}`);
    }
    if (typeof claims.sub !== 'string' || !subjects.includes(claims.sub)) return refuse(400, 'invalid_client', 700213, `No matching federated identity record found for presented assertion subject '${String(claims.sub)}'.`);
    const token = this.mint({ principal: clientId, sub: claims.sub, scopes: [resource] }, 3599, 'eyJ0eXAiOi.');
    return [200, { token_type: 'Bearer', expires_in: 3599, ext_expires_in: 3599, access_token: token }];
  }
}
