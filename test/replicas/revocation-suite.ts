/**
 * Revocation watermarks across two `stsgate serve` processes on one Redis: `stsgate revoke` (its own
 * process, connecting to the configured store) by subject, by role, by time and for everyone; what it
 * covers is refused on both replicas from the next request on, in each protocol's words, and what is
 * issued after it is not. Run against standalone Redis and a 3-master Cluster (one file each).
 */
import { GetCallerIdentityCommand, STSClient, STSServiceException } from '@aws-sdk/client-sts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { createStore } from '../../src/store/index.js';
import { storeKeys } from '../../src/store/keys.js';
import type { Store } from '../../src/store/store.js';
import {
  allOutput,
  expectNoSecretsInOutput,
  killAllGatewayProcesses,
  runStsgate,
  startGatewayProcess,
  useProcessTestSetup,
  writeGatewayConfig,
  type GatewayProcess,
} from '../support/gateway-process.js';
import type { ReplicaStore } from './replica-suite.js';
import { sleep, postForm } from '../support/common.js';

const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const JWT_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:jwt';
const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';
/** The process config's longest role (deployer, 3600 s; no browser logins) plus the 60 s skew. */
const FULL_TTL_MS = (3600 + 60) * 1000;

/** A credential set as the RFC 8693 exchange answers it. */
interface IssuedSet {
  access_token: string;
  aws_credentials: { AccessKeyId: string; SecretAccessKey: string; SessionToken: string };
}

/** One revocation case: the sets issued before, the command's arguments, and what it must leave alone. */
interface RevocationCase {
  name: string;
  /** Issues what is to be revoked, and returns the revoke arguments and the sets that must survive. */
  prepare(): Promise<{ revoked: IssuedSet[]; args: string[]; survivors: IssuedSet[]; key: string; reissue: () => Promise<IssuedSet> }>;
}

/** Defines the revocation suite for one Redis topology. */
export function describeRevocations(topology: string, startStore: () => Promise<ReplicaStore>): void {
  describe(`revocation watermarks across two gateway processes on ${topology}`, () => {
    const setup = useProcessTestSetup('revocations');
    const { ledger } = setup;
    let redis: ReplicaStore | undefined;
    let a: GatewayProcess;
    let b: GatewayProcess;
    let configFile: string;
    let store: Store;

    beforeAll(async () => {
      redis = await startStore();
      const first = await writeGatewayConfig(setup.dir, { keys: setup.keys, issuer: setup.issuer, store: redis.store });
      configFile = first.file;
      const second = await writeGatewayConfig(setup.dir, { keys: setup.keys, issuer: setup.issuer, store: redis.store });
      [a, b] = await Promise.all([startGatewayProcess(first), startGatewayProcess(second)]);
      // The test's own look at the store: the watermark keys and their TTLs.
      store = createStore((await loadConfig(configFile)).store);
    });

    afterAll(async () => {
      await store?.close();
      await killAllGatewayProcesses();
      await redis?.stop();
    });

    async function exchange(gateway: GatewayProcess, sub: string, options: { audience?: string; sessionName?: string } = {}): Promise<IssuedSet> {
      const token = await setup.issuer.mint({ sub, repository: 'acme/app', ref: 'refs/heads/main' });
      ledger.add('web identity token', token);
      const res = await postForm(`${gateway.url}/oauth2/token`, {
        grant_type: TOKEN_EXCHANGE,
        subject_token: token,
        subject_token_type: JWT_TOKEN_TYPE,
        audience: options.audience ?? 'deployer',
        session_name: options.sessionName ?? 'revocations',
      });
      const resText = await res.text();
      expect(res.status, resText).toBe(200);
      const body = JSON.parse(resText) as IssuedSet;
      ledger.add('access token', body.access_token);
      ledger.add('SecretAccessKey', body.aws_credentials.SecretAccessKey);
      ledger.add('SessionToken', body.aws_credentials.SessionToken);
      return body;
    }

    async function callerIdentity(gateway: GatewayProcess, set: IssuedSet): Promise<string> {
      const { AccessKeyId, SecretAccessKey, SessionToken } = set.aws_credentials;
      const client = new STSClient({ endpoint: gateway.url, region: 'us-east-1', maxAttempts: 1, credentials: { accessKeyId: AccessKeyId, secretAccessKey: SecretAccessKey, sessionToken: SessionToken } });
      try {
        await client.send(new GetCallerIdentityCommand({}));
        return 'ok';
      } catch (err) {
        expect(err).toBeInstanceOf(STSServiceException);
        return (err as STSServiceException).name;
      }
    }

    async function introspect(gateway: GatewayProcess, set: IssuedSet): Promise<boolean> {
      const res = await postForm(`${gateway.url}/oauth2/introspect`, { token: set.access_token });
      const resText = await res.text();
      expect(res.status).toBe(200);
      return (JSON.parse(resText) as { active: boolean }).active;
    }

    /** RFC 8693 with the set's own access token (narrowing): the status and error code. */
    async function exchangeAccessToken(gateway: GatewayProcess, set: IssuedSet): Promise<string> {
      const res = await postForm(`${gateway.url}/oauth2/token`, { grant_type: TOKEN_EXCHANGE, subject_token: set.access_token, subject_token_type: ACCESS_TOKEN_TYPE, scope: 'logs:read' });
      const resText = await res.text();
      if (res.status === 200) {
        const body = JSON.parse(resText) as IssuedSet;
        ledger.add('access token', body.access_token);
        ledger.add('SecretAccessKey', body.aws_credentials.SecretAccessKey);
        ledger.add('SessionToken', body.aws_credentials.SessionToken);
        return 'ok';
      }
      return `${res.status} ${(JSON.parse(resText) as { error: string }).error}`;
    }

    /** What both replicas answer for a set: SigV4 GetCallerIdentity, introspection, RFC 8693 with its access token. */
    async function answers(set: IssuedSet) {
      const out = [];
      for (const gateway of [a, b]) out.push({ sts: await callerIdentity(gateway, set), active: await introspect(gateway, set), exchange: await exchangeAccessToken(gateway, set) });
      return out;
    }
    const LIVE = { sts: 'ok', active: true, exchange: 'ok' };
    const REVOKED = { sts: 'ExpiredToken', active: false, exchange: '400 invalid_grant' };

    const sub = (name: string) => `repo:acme/app:${name}-${topology.length}`;

    const cases: RevocationCase[] = [
      {
        name: 'by subject (of one source)',
        async prepare() {
          const revoked = [await exchange(a, sub('subject'))];
          const survivors = [await exchange(b, sub('subject-other'))];
          return { revoked, survivors, args: ['--subject', sub('subject'), '--source', 'ci', '--reason', 'laptop stolen'], key: storeKeys.revocationSubject('ci', sub('subject')), reissue: () => exchange(b, sub('subject')) };
        },
      },
      {
        name: 'by role',
        async prepare() {
          const revoked = [await exchange(a, sub('role'), { audience: 'reader' })];
          const survivors = [await exchange(a, sub('role'), { audience: 'deployer' })];
          return { revoked, survivors, args: ['--role', 'reader'], key: storeKeys.revocationRole('reader'), reissue: () => exchange(b, sub('role'), { audience: 'reader' }) };
        },
      },
      {
        name: 'by time (--issued-before between two sets of one subject)',
        async prepare() {
          const revoked = [await exchange(a, sub('time'), { sessionName: 'first' })];
          await sleep(5);
          const cutOff = new Date().toISOString();
          await sleep(5);
          const survivors = [await exchange(b, sub('time'), { sessionName: 'second' })];
          return { revoked, survivors, args: ['--subject', sub('time'), '--issued-before', cutOff], key: storeKeys.revocationSubjectAnySource(sub('time')), reissue: () => exchange(b, sub('time'), { sessionName: 'first' }) };
        },
      },
      {
        // Last: it voids every set issued so far in this suite.
        name: 'everyone (--all)',
        async prepare() {
          const revoked = [await exchange(a, sub('all')), await exchange(b, sub('all-other'), { audience: 'reader' })];
          return { revoked, survivors: [], args: ['--all', '--reason', 'signing key exposure drill'], key: storeKeys.revocationAll(), reissue: () => exchange(a, sub('all')) };
        },
      },
    ];

    it.each(cases.map((c) => [c.name, c] as const))('revoke %s: refused on both replicas at once, in each protocol; issued after is not', async (_name, revocationCase) => {
      const { revoked, survivors, args, key, reissue } = await revocationCase.prepare();
      for (const set of [...revoked, ...survivors]) expect(await answers(set)).toEqual([LIVE, LIVE]);

      const startedAt = Date.now();
      const run = await runStsgate(['revoke', '--config', configFile, ...args]);
      expect(run.code, run.stderr).toBe(0);
      expect(run.stdout).toMatch(/^revoked .*issued before \d{4}-.*ttl \d+ s; by cli:/);
      const audit = run.stderr.split('\n').filter((line) => line.includes('"event":"revocation_watermark"'));
      expect(audit).toHaveLength(1);
      expect(JSON.parse(audit[0]!)).toMatchObject({ log: 'audit', by: expect.stringMatching(/^cli:./), issuedBefore: expect.any(String) });

      // No wait: the next request on either replica reads the watermark.
      for (const set of revoked) expect(await answers(set)).toEqual([REVOKED, REVOKED]);
      for (const set of survivors) expect(await answers(set)).toEqual([LIVE, LIVE]);

      // The same request is no longer answered from the cache: a fresh set, issued after, which works.
      const fresh = await reissue();
      expect(revoked.map((set) => set.aws_credentials.AccessKeyId)).not.toContain(fresh.aws_credentials.AccessKeyId);
      expect(await answers(fresh)).toEqual([LIVE, LIVE]);

      // The key lives until nothing it covers can be alive: (issued_before - now) + 3600 s + 60 s.
      const ttl = (await store.ttl(key))!;
      const issuedBefore = Date.parse((JSON.parse((await store.get(key))!) as { issued_before: string }).issued_before);
      const expected = issuedBefore - startedAt + FULL_TTL_MS;
      expect(ttl).toBeLessThanOrEqual(expected);
      expect(ttl).toBeGreaterThan(expected - 15_000);
    });

    it('lists the live watermarks with their TTL; one written with an old cut-off expires on its own', async () => {
      // 12 s of life left: room for two CLI starts on a loaded machine, short enough to watch it expire.
      const old = new Date(Date.now() - FULL_TTL_MS + 12_000).toISOString();
      const run = await runStsgate(['revoke', '--config', configFile, '--subject', sub('expiring'), '--issued-before', old]);
      expect(run.code, run.stderr).toBe(0);
      const key = storeKeys.revocationSubjectAnySource(sub('expiring'));
      expect(await store.ttl(key)).toBeLessThanOrEqual(12_000);

      const list = await runStsgate(['revoke', '--config', configFile, '--list']);
      expect(list.code, list.stderr).toBe(0);
      expect(list.stdout).toMatch(/^everyone: issued before \S+ is void; ttl 36\d\d s; by cli:/m);
      expect(list.stdout).toMatch(/subject ".*expiring.*" of any source: issued before \S+ is void; ttl ([1-9]|1[0-2]) s/);

      const until = Date.now() + 15_000;
      while ((await store.get(key)) !== undefined && Date.now() < until) await sleep(100);
      expect(await store.get(key)).toBeUndefined();
    });

    it('writes no token or secret into any log', () => {
      expect(allOutput()).toContain('"event":"revocation_watermark"');
      expectNoSecretsInOutput(ledger, 10);
    });
  });
}
