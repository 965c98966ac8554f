/**
 * The GCP and Azure brokers (issue 13): stsgate trades a gcp target's token with Google's own library
 * (STS token exchange, service account impersonation, Credential Access Boundary) and an azure target's
 * with Microsoft's (@azure/identity ClientAssertionCredential), against loopback stand-ins of their token
 * endpoints that verify the token by stsgate's JWKS and check each documented parameter. The access
 * tokens then work at the stand-ins (tokeninfo, /me), are cached sealed in Redis, never shared between
 * identities, and the clouds' refusals and failures come back as the issue asks.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { parseConfig } from '../../src/config/load.js';
import { TOKEN_EXCHANGE_GRANT, TOKEN_TYPE } from '../../src/http/oauth.js';
import { AzureStandIn, GcpStandIn } from '../support/cloud-stand-ins.js';
import { ACCOUNT_ID, postForm } from '../support/common.js';
import { issuerFor, REDIS_URL, redisStoreConfig, standardRoles, startTestGateway, type TestGateway } from '../support/gateway.js';
import { reservePublicUrl } from '../support/browser-login.js';
import { TestIssuer } from '../support/test-issuer.js';

const PROVIDER = 'projects/123456789/locations/global/workloadIdentityPools/ci-pool/providers/stsgate';
const SA = 'deployer@acme-prod.iam.gserviceaccount.com';
const OTHER_SA = 'release-admin@acme-prod.iam.gserviceaccount.com';
const CLOUD_PLATFORM = 'https://www.googleapis.com/auth/cloud-platform';
const STORAGE_READ = 'https://www.googleapis.com/auth/devstorage.read_only';
const TENANT = '8eaef023-2b34-4da1-9baa-8bc8c9d6a490';
const APP = '0f6a1a9e-4b7c-4f0e-9a51-2d2f3c4b5a61';
const UNKNOWN_APP = '11111111-2222-4333-8444-555555555555';
const MANAGEMENT = 'https://management.azure.com/.default';
const GRAPH = 'https://graph.microsoft.com/.default';
const JOB = { repository: 'acme/app', repository_id: 4242, ref: 'refs/heads/main' };
const SUBJECT = (actor: string) => `repo:4242:actor:${actor}`;

describe('the GCP and Azure brokers', () => {
  let workload: TestIssuer;
  let gateway: TestGateway;
  let gcp: GcpStandIn;
  let azure: AzureStandIn;
  let redis: Redis;
  let prefix: string;

  beforeAll(async () => {
    workload = await TestIssuer.start();
    const { port, publicUrl } = await reservePublicUrl();
    gcp = await GcpStandIn.start(publicUrl, { provider: PROVIDER, serviceAccounts: { [SA]: [SUBJECT('octocat'), SUBJECT('hubot'), SUBJECT('bounded')] }, maxLifetimeSeconds: 3600 });
    azure = await AzureStandIn.start(publicUrl, { tenantId: TENANT, applications: { [APP]: [SUBJECT('octocat'), SUBJECT('hubot')] } });
    const subject = 'repo:{claims.repository_id}:actor:{claims.actor}';
    const gcpBroker = (extra: Record<string, unknown> = {}) => ({ token_url: `${gcp.url}/v1/token`, iam_credentials_url: gcp.url, timeout_seconds: 1, ...extra });
    const azureBroker = (extra: Record<string, unknown> = {}) => ({ tenant_id: TENANT, client_id: APP, authority_host: azure.url, ca_file: azure.caFile, scopes: [MANAGEMENT, GRAPH], timeout_seconds: 2, ...extra });
    const targets = parseConfig(
      stringify({
        public_url: publicUrl,
        account_id: ACCOUNT_ID,
        dev: { allow_insecure_http: true },
        targets: [
          { name: 'gcp-fed', kind: 'gcp', subject, gcp: { provider: PROVIDER }, broker: gcpBroker() },
          // A roomier timeout for the burst: a replica waits for another's call at most three times it.
          { name: 'gcp-burst', kind: 'gcp', subject, gcp: { provider: PROVIDER }, broker: gcpBroker({ timeout_seconds: 20 }) },
          { name: 'gcp-sa', kind: 'gcp', subject, gcp: { provider: PROVIDER }, broker: gcpBroker({ service_account: SA, scopes: [CLOUD_PLATFORM, STORAGE_READ], lifetime_seconds: 3600 }) },
          { name: 'gcp-other-sa', kind: 'gcp', subject, gcp: { provider: PROVIDER }, broker: gcpBroker({ service_account: OTHER_SA }) },
          {
            name: 'gcp-bounded',
            kind: 'gcp',
            subject,
            gcp: { provider: PROVIDER },
            broker: gcpBroker({ service_account: SA, access_boundary: [{ available_resource: '//storage.googleapis.com/projects/_/buckets/acme-artifacts', available_permissions: ['inRole:roles/storage.objectViewer'] }] }),
          },
          { name: 'azure-arm', kind: 'azure', subject, broker: azureBroker() },
          { name: 'azure-unknown-app', kind: 'azure', subject, broker: azureBroker({ client_id: UNKNOWN_APP }) },
        ],
      }),
      {},
      process.cwd(),
    ).targets!;
    const store = redisStoreConfig();
    prefix = (store as { prefix: string }).prefix;
    gateway = await startTestGateway({
      issuers: [issuerFor(workload)],
      port,
      store,
      keyAlgorithms: ['ES256', 'RS256'],
      roles: standardRoles().map((role) => (role.name === 'reader' ? { ...role, targets: targets.map((t) => t.name) } : role)),
      config: { publicUrl, targets },
    });
    redis = new Redis(REDIS_URL);
  }, 60_000);

  afterAll(async () => {
    await gateway?.close();
    await Promise.all([gcp?.close(), azure?.close(), workload?.close()]);
    await redis?.quit();
  });

  async function brokered(target: string, actor: string, form: Record<string, string> = {}) {
    const res = await postForm(`${gateway.url}/oauth2/token`, { grant_type: TOKEN_EXCHANGE_GRANT, subject_token: await workload.mint({ ...JOB, actor }), subject_token_type: TOKEN_TYPE.jwt, audience: target, ...form });
    return { status: res.status, body: (await res.json()) as Record<string, any> };
  }
  const tokeninfo = async (token: string) => (await fetch(`${gcp.url}/tokeninfo?access_token=${encodeURIComponent(token)}`)).json() as Promise<Record<string, any>>;
  const stored = async () => redis.keys(`${prefix}brk:*`);

  describe('GCP', () => {
    it('a federated token: Google STS gets the target token for the provider, the token works at Google, cached sealed and reused', async () => {
      const first = await brokered('gcp-fed', 'octocat');
      expect(first.status, JSON.stringify(first.body)).toBe(200);
      expect(first.body).toMatchObject({ token_type: 'Bearer', issued_token_type: TOKEN_TYPE.accessToken, scope: CLOUD_PLATFORM, target: 'gcp-fed', cloud: 'gcp' });
      expect(first.body.expires_in).toBeGreaterThan(3500);
      expect(first.body.expires_in).toBeLessThanOrEqual(3600);
      const sts = gcp.calls('/v1/token');
      expect(sts).toHaveLength(1);
      expect(sts[0]!.form!.get('audience')).toBe(`//iam.googleapis.com/${PROVIDER}`);
      expect(sts[0]!.form!.get('subject_token_type')).toBe('urn:ietf:params:oauth:token-type:jwt');
      expect(sts[0]!.form!.get('scope')).toBe(CLOUD_PLATFORM);
      expect(await tokeninfo(first.body.access_token)).toMatchObject({ sub: SUBJECT('octocat'), scope: CLOUD_PLATFORM });

      const again = await brokered('gcp-fed', 'octocat');
      expect(again.body.access_token).toBe(first.body.access_token);
      expect(gcp.calls('/v1/token')).toHaveLength(1);
      const keys = await stored();
      expect(keys).toHaveLength(1);
      expect(await redis.get(keys[0]!)).not.toContain(first.body.access_token);
      const line = gateway.logs().find((l) => l.action === 'BrokeredCredentials' && l.target === 'gcp-fed' && l.cached === false);
      expect(line).toMatchObject({ event: 'issued', kind: 'gcp', role: 'reader' });
      expect(JSON.stringify(gateway.logs())).not.toContain(first.body.access_token);
    });

    it('impersonates the service account with the asked scopes and lifetime (never more than the target allows)', async () => {
      const res = await brokered('gcp-sa', 'octocat', { scope: STORAGE_READ, duration_seconds: '1200' });
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      expect(res.body.scope).toBe(STORAGE_READ);
      expect(res.body.expires_in).toBeGreaterThan(1150);
      expect(res.body.expires_in).toBeLessThanOrEqual(1200);
      const call = gcp.calls(`${SA}:generateAccessToken`).at(-1)!;
      expect(call.json).toEqual({ scope: [STORAGE_READ], lifetime: '1200s' });
      // Impersonation needs the federated token to carry cloud-platform, whatever the caller asked for.
      expect(gcp.calls('/v1/token').at(-1)!.form!.get('scope')).toBe(CLOUD_PLATFORM);
      expect(await tokeninfo(res.body.access_token)).toMatchObject({ email: SA, sub: SUBJECT('octocat'), scope: STORAGE_READ });

      const tooMuch = await brokered('gcp-sa', 'octocat', { scope: 'https://www.googleapis.com/auth/compute' });
      expect(tooMuch).toMatchObject({ status: 400, body: { error: 'invalid_scope' } });
      const tooLong = await brokered('gcp-sa', 'octocat', { duration_seconds: '7200' });
      expect(tooLong.status).toBe(400);
      expect(tooLong.body.error_description).toContain('60..3600');
    });

    it('a Credential Access Boundary downscopes the token with one more STS exchange', async () => {
      const res = await brokered('gcp-bounded', 'bounded');
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      const downscope = gcp.calls('/v1/token').at(-1)!.form!;
      expect(downscope.get('subject_token_type')).toBe(TOKEN_TYPE.accessToken);
      expect(JSON.parse(downscope.get('options')!)).toEqual({
        accessBoundary: { accessBoundaryRules: [{ availableResource: '//storage.googleapis.com/projects/_/buckets/acme-artifacts', availablePermissions: ['inRole:roles/storage.objectViewer'] }] },
      });
      const info = await tokeninfo(res.body.access_token);
      expect(info).toMatchObject({ email: SA, sub: SUBJECT('bounded') });
      expect(info.access_boundary.accessBoundaryRules).toHaveLength(1);
    });

    it("Google's refusal is relayed (invalid_grant with Google's code), nothing is cached", async () => {
      const before = (await stored()).length;
      const res = await brokered('gcp-other-sa', 'octocat');
      expect(res.status).toBe(400);
      expect(res.body.error).toBe('invalid_grant');
      expect(res.body.error_description).toContain('HTTP 403 PERMISSION_DENIED');
      expect((await stored()).length).toBe(before);
      const line = gateway.logs().find((l) => l.action === 'BrokeredCredentials' && l.target === 'gcp-other-sa');
      expect(line).toMatchObject({ event: 'denied' });
    });

    it('429 with Retry-After is retried and then succeeds; 500s, garbage and silence are a 503 with nothing cached', async () => {
      gcp.script.push({ kind: 'error', status: 429, body: { error: 'rate_limited' }, retryAfter: 0 });
      const count = gcp.calls('/v1/token').length;
      const throttled = await brokered('gcp-fed', 'throttled');
      expect(throttled.status, JSON.stringify(throttled.body)).toBe(200);
      expect(gcp.calls('/v1/token').length - count).toBe(2);

      for (const fault of [{ kind: 'error', status: 500 }, { kind: 'garbage' }, { kind: 'hang' }] as const) {
        const before = (await stored()).length;
        gcp.script.push(fault, fault, fault);
        const res = await brokered('gcp-fed', `fault-${fault.kind}`);
        expect(res.status, `${fault.kind}: ${JSON.stringify(res.body)}`).toBe(503);
        expect(res.body.error).toBe('temporarily_unavailable');
        expect((await stored()).length).toBe(before);
        gcp.script.length = 0;
      }
    }, 30_000);
  });

  describe('Azure', () => {
    it('Entra ID gets the target token as the client assertion; the token works at Azure, is cached, and each identity gets its own', async () => {
      const first = await brokered('azure-arm', 'octocat');
      expect(first.status, JSON.stringify(first.body)).toBe(200);
      expect(first.body).toMatchObject({ token_type: 'Bearer', issued_token_type: TOKEN_TYPE.accessToken, scope: MANAGEMENT, target: 'azure-arm', cloud: 'azure' });
      const call = azure.calls('/oauth2/v2.0/token').at(-1)!.form!;
      expect(call.get('grant_type')).toBe('client_credentials');
      expect(call.get('client_id')).toBe(APP);
      expect(call.get('client_assertion_type')).toBe('urn:ietf:params:oauth:client-assertion-type:jwt-bearer');
      expect(call.get('scope')!.split(' ')).toContain(MANAGEMENT);
      // Who the token is at Azure: the application, for this identity's subject, for the asked scope.
      expect(azure.issued.get(first.body.access_token)).toMatchObject({ principal: APP, sub: SUBJECT('octocat'), scopes: [MANAGEMENT] });

      const again = await brokered('azure-arm', 'octocat');
      expect(again.body.access_token).toBe(first.body.access_token);
      const calls = azure.calls('/oauth2/v2.0/token').length;

      // MSAL caches per application, not per assertion: a second identity must get its own token.
      const other = await brokered('azure-arm', 'hubot');
      expect(other.status, JSON.stringify(other.body)).toBe(200);
      expect(other.body.access_token).not.toBe(first.body.access_token);
      expect(azure.calls('/oauth2/v2.0/token').length).toBe(calls + 1);
      expect(azure.issued.get(other.body.access_token)).toMatchObject({ principal: APP, sub: SUBJECT('hubot') });
      expect(azure.issued.get(first.body.access_token)).toMatchObject({ principal: APP, sub: SUBJECT('octocat') });

      const graph = await brokered('azure-arm', 'octocat', { scope: GRAPH });
      expect(graph.body.scope).toBe(GRAPH);
      expect(azure.issued.get(graph.body.access_token)?.scopes).toEqual([GRAPH]);
      expect((await brokered('azure-arm', 'octocat', { scope: `${MANAGEMENT} ${GRAPH}` })).body.error).toBe('invalid_scope');
      expect((await brokered('azure-arm', 'octocat', { scope: 'https://vault.azure.net/.default' })).body.error).toBe('invalid_scope');
    });

    it("Entra ID's refusal is relayed with its AADSTS code: a subject with no federated credential, an unknown application", async () => {
      const before = (await stored()).length;
      const stranger = await brokered('azure-arm', 'stranger');
      expect(stranger.status).toBe(400);
      expect(stranger.body.error).toBe('invalid_grant');
      expect(stranger.body.error_description).toContain('AADSTS700213');
      const unknown = await brokered('azure-unknown-app', 'octocat');
      expect(unknown.body.error_description).toContain('AADSTS700016');
      expect((await stored()).length).toBe(before);
      // No assertion stsgate sent and no token a cloud issued reaches a log line, refused or granted.
      const logs = JSON.stringify(gateway.logs());
      const sent = [...azure.calls('/oauth2/v2.0/token').map((r) => r.form!.get('client_assertion')!), ...gcp.calls('/v1/token').map((r) => r.form!.get('subject_token')!)];
      expect(sent.length).toBeGreaterThan(5);
      for (const secret of [...sent, ...azure.issued.keys(), ...gcp.issued.keys()]) expect(logs).not.toContain(secret);
    });

    it('Entra ID failing (500s, silence) is a 503 with nothing cached', async () => {
      for (const fault of [{ kind: 'error', status: 500 }, { kind: 'hang' }] as const) {
        const before = (await stored()).length;
        azure.script.push(fault, fault, fault);
        const res = await brokered('azure-arm', `azure-fault-${fault.kind}`);
        expect(res.status, `${fault.kind}: ${JSON.stringify(res.body)}`).toBe(503);
        expect((await stored()).length).toBe(before);
        azure.script.length = 0;
      }
    }, 30_000);
  });

  describe('across replicas', () => {
    it('a burst of 200 identical requests spread over two replicas on one Redis makes one call to the cloud', async () => {
      const replica = await startTestGateway({
        issuers: [issuerFor(workload)],
        store: { ...redisStoreConfig(prefix) },
        roles: gateway.config.roles,
        config: { publicUrl: gateway.config.publicUrl, targets: gateway.config.targets, signing: gateway.config.signing, encryptionKey: gateway.config.encryptionKey },
      });
      try {
        gcp.delayMs = 300;
        const before = gcp.calls('/v1/token').length;
        const token = await workload.mint({ ...JOB, actor: 'burst' });
        const answers = await Promise.all(
          Array.from({ length: 200 }, (_, i) =>
            postForm(`${(i % 2 === 0 ? gateway : replica).url}/oauth2/token`, { grant_type: TOKEN_EXCHANGE_GRANT, subject_token: token, subject_token_type: TOKEN_TYPE.jwt, audience: 'gcp-burst' }).then(async (res) => ({ status: res.status, body: (await res.json()) as Record<string, any> })),
          ),
        );
        expect(answers.filter((a) => a.status !== 200).map((a) => a.body)).toEqual([]);
        expect(new Set(answers.map((a) => a.body.access_token)).size).toBe(1);
        expect(gcp.calls('/v1/token').length - before).toBe(1);
      } finally {
        gcp.delayMs = 0;
        await replica.close();
      }
    }, 60_000);
  });
});
