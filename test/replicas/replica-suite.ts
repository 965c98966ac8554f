/**
 * Two `stsgate serve` processes on one Redis behave as one gateway: the shared suite, run against
 * standalone Redis, a 3-master Cluster and Sentinel (one file each, so they run in parallel).
 */
import { AssumeRoleWithWebIdentityCommand, GetCallerIdentityCommand, STSClient, STSServiceException, type Credentials } from '@aws-sdk/client-sts';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  allOutput,
  expectNoSecretsInOutput,
  killAllGatewayProcesses,
  startGatewayProcess,
  useProcessTestSetup,
  writeGatewayConfig,
  type GatewayProcess,
  type StoreYaml,
} from '../support/gateway-process.js';
import { ACCOUNT_ID, postForm } from '../support/common.js';

/** A store the suite runs on, and how to take it down. */
export interface ReplicaStore {
  store: StoreYaml;
  stop(): Promise<void>;
}

const DEPLOYER_ARN = `arn:aws:iam::${ACCOUNT_ID}:role/deployer`;
const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const JWT_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:jwt';

/** Defines the two-replica suite for one Redis topology. */
export function describeReplicas(topology: string, startStore: () => Promise<ReplicaStore>): void {
  describe(`two gateway processes on ${topology}`, () => {
    const setup = useProcessTestSetup('replicas');
    const { ledger } = setup;
    let redis: ReplicaStore | undefined;
    let a: GatewayProcess;
    let b: GatewayProcess;

    beforeAll(async () => {
      redis = await startStore();
      const config = () => writeGatewayConfig(setup.dir, { keys: setup.keys, issuer: setup.issuer, store: redis!.store });
      [a, b] = await Promise.all([startGatewayProcess(await config()), startGatewayProcess(await config())]);
    });

    afterAll(async () => {
      // The gateways go before their store (the shared teardown, which kills them too, runs after this).
      await killAllGatewayProcesses();
      await redis?.stop();
    });

    /** A web-identity token for `repository` on main, recorded as a secret. */
    async function webIdentityToken(sub: string, claims: Record<string, unknown> = {}): Promise<string> {
      const token = await setup.issuer.mint({ sub, repository: 'acme/app', ref: 'refs/heads/main', ...claims });
      ledger.add('web identity token', token);
      return token;
    }

    function sts(gateway: GatewayProcess, credentials?: Credentials): STSClient {
      return new STSClient({
        endpoint: gateway.url,
        region: 'us-east-1',
        maxAttempts: 1,
        credentials: credentials
          ? { accessKeyId: credentials.AccessKeyId!, secretAccessKey: credentials.SecretAccessKey!, sessionToken: credentials.SessionToken! }
          : { accessKeyId: 'unused', secretAccessKey: 'unused' },
      });
    }

    async function assume(gateway: GatewayProcess, sub: string): Promise<Credentials> {
      const out = await sts(gateway).send(
        new AssumeRoleWithWebIdentityCommand({ RoleArn: DEPLOYER_ARN, RoleSessionName: 'replicas', WebIdentityToken: await webIdentityToken(sub) }),
      );
      const credentials = out.Credentials!;
      ledger.add('SecretAccessKey', credentials.SecretAccessKey);
      ledger.add('SessionToken', credentials.SessionToken);
      return credentials;
    }

    async function exchange(gateway: GatewayProcess, sub: string) {
      const res = await postForm(`${gateway.url}/oauth2/token`, {
        grant_type: TOKEN_EXCHANGE,
        subject_token: await webIdentityToken(sub),
        subject_token_type: JWT_TOKEN_TYPE,
        audience: 'deployer',
      });
      const resText = await res.text();
      expect(res.status, resText).toBe(200);
      const body = JSON.parse(resText) as { access_token: string; aws_credentials: { AccessKeyId: string; SecretAccessKey: string; SessionToken: string } };
      ledger.add('access token', body.access_token);
      ledger.add('SecretAccessKey', body.aws_credentials.SecretAccessKey);
      ledger.add('SessionToken', body.aws_credentials.SessionToken);
      return body;
    }

    async function introspect(gateway: GatewayProcess, token: string): Promise<{ active: boolean; sid?: string }> {
      const res = await postForm(`${gateway.url}/oauth2/introspect`, { token });
      const resText = await res.text();
      expect(res.status).toBe(200);
      return JSON.parse(resText) as { active: boolean; sid?: string };
    }

    async function callerIdentityError(gateway: GatewayProcess, credentials: Credentials): Promise<string> {
      try {
        await sts(gateway, credentials).send(new GetCallerIdentityCommand({}));
      } catch (err) {
        expect(err).toBeInstanceOf(STSServiceException);
        return (err as STSServiceException).name;
      }
      return 'no error';
    }

    it('reuses on B the credential set A issued and cached (same AccessKeyId, nothing new signed)', async () => {
      const fromA = await assume(a, 'repo:acme/app:cache');
      const fromB = await assume(b, 'repo:acme/app:cache');
      expect(fromB.AccessKeyId).toBe(fromA.AccessKeyId);
      expect(fromB.SecretAccessKey).toBe(fromA.SecretAccessKey);
      expect(fromB.Expiration!.getTime()).toBe(fromA.Expiration!.getTime());
      const issuedOnB = await b.waitForLogs((line) => line.event === 'issued' && line.subject === 'repo:acme/app:cache');
      expect(issuedOnB.map((line) => line.cached)).toEqual([true]);
    });

    it('answers on B a GetCallerIdentity signed with the keys A issued', async () => {
      const fromA = await assume(a, 'repo:acme/app:sigv4');
      const who = await sts(b, fromA).send(new GetCallerIdentityCommand({}));
      expect(who.Arn).toBe(`arn:aws:sts::${ACCOUNT_ID}:assumed-role/deployer/replicas`);
      expect(who.Account).toBe(ACCOUNT_ID);
    });

    it('holds a revocation made on A on B at once: introspection inactive, SigV4 refused', async () => {
      const issued = await exchange(a, 'repo:acme/app:revoke');
      const keys: Credentials = { ...issued.aws_credentials, Expiration: new Date() };
      expect((await introspect(b, issued.access_token)).active).toBe(true);
      expect(await callerIdentityError(b, keys)).toBe('no error');

      const revoked = await postForm(`${a.url}/oauth2/revoke`, { token: issued.access_token });
      expect(revoked.status).toBe(200);
      // No wait: B reads the same store, so the very next request sees the revocation.
      expect(await introspect(b, issued.access_token)).toEqual({ active: false });
      expect(await callerIdentityError(b, keys)).toBe('InvalidClientTokenId');
      expect(await introspect(a, issued.access_token)).toEqual({ active: false });
      const sid = decodeJwt(issued.access_token).sid;
      const revocations = await a.waitForLogs((line) => line.event === 'revoked' && line.sid === sid);
      expect(revocations.map((line) => line.found)).toEqual([true]);
    });

    it('writes no token or secret into any log', () => {
      expect(allOutput()).toContain('"event":"issued"');
      expectNoSecretsInOutput(ledger, 10);
    });
  });
}
