/**
 * Bounded role chains (issue 10): a chained session never outlives its root, dies with any session it was
 * chained from (on every replica at once), re-checks at each step that the root identity is still granted
 * every role on the path by today's rules, assumes its own role only when the role lists itself, and is at
 * most MAX_CHAIN_DEPTH hops deep. Against running gateways with the real AWS SDK (STS) and RFC 8693, on
 * the in-memory store and the real Redis.
 */
import { AssumeRoleCommand, AssumeRoleWithWebIdentityCommand, GetCallerIdentityCommand, STSClient, STSServiceException, type Credentials } from '@aws-sdk/client-sts';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RoleConfig } from '../../src/config/types.js';
import { MAX_CHAIN_DEPTH } from '../../src/credentials/exchange.js';
import { TOKEN_EXCHANGE_GRANT, TOKEN_TYPE } from '../../src/http/oauth.js';
import { storeKeys } from '../../src/store/keys.js';
import { gatewayServicesAt, issuerFor, redisStoreConfig, standardRoles, standardRules, startTestGateway, type TestGateway } from '../support/gateway.js';
import { TEST_SUBJECT, TestIssuer } from '../support/test-issuer.js';
import { ACCOUNT_ID, postForm } from '../support/common.js';

const arn = (role: string) => `arn:aws:iam::${ACCOUNT_ID}:role/${role}`;
const MAIN = { repository: 'acme/app', ref: 'refs/heads/main' };
/** Granted `reader` only (any acme repository), by the second standard rule. */
const OTHER_REPO = { repository: 'acme/other', ref: 'refs/heads/main' };

/** A client of one gateway: the AWS SDK for STS, plain forms for RFC 8693, introspection and revocation. */
function clientOf(gatewayUrl: () => string) {
  const sts = (credentials?: Credentials) =>
    new STSClient({
      endpoint: gatewayUrl(),
      region: 'us-east-1',
      maxAttempts: 1,
      credentials: credentials
        ? { accessKeyId: credentials.AccessKeyId!, secretAccessKey: credentials.SecretAccessKey!, sessionToken: credentials.SessionToken! }
        : { accessKeyId: 'unused', secretAccessKey: 'unused' },
    });
  return {
    async web(token: string, role: string, DurationSeconds?: number): Promise<Credentials> {
      const out = await sts().send(new AssumeRoleWithWebIdentityCommand({ RoleArn: arn(role), RoleSessionName: 'root', WebIdentityToken: token, DurationSeconds }));
      return out.Credentials!;
    },
    async assumeRole(caller: Credentials, role: string, RoleSessionName = 'chained', DurationSeconds?: number): Promise<Credentials> {
      const out = await sts(caller).send(new AssumeRoleCommand({ RoleArn: arn(role), RoleSessionName, DurationSeconds }));
      return out.Credentials!;
    },
    async whoAmI(caller: Credentials): Promise<string> {
      return (await sts(caller).send(new GetCallerIdentityCommand({}))).Arn!;
    },
    async exchange(form: Record<string, string>): Promise<{ status: number; body: Record<string, unknown> }> {
      const res = await postForm(`${gatewayUrl()}/oauth2/token`, { grant_type: TOKEN_EXCHANGE_GRANT, ...form });
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    },
    async active(token: string): Promise<boolean> {
      const res = await postForm(`${gatewayUrl()}/oauth2/introspect`, { token });
      return ((await res.json()) as { active: boolean }).active;
    },
    async revoke(token: string): Promise<void> {
      expect((await postForm(`${gatewayUrl()}/oauth2/revoke`, { token })).status).toBe(200);
    },
  };
}

/** The AWS error an SDK call ended with, as name and HTTP status. */
async function awsError(promise: Promise<unknown>): Promise<[number | undefined, string]> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(STSServiceException);
    const e = err as STSServiceException;
    return [e.$metadata.httpStatusCode, e.name];
  }
  throw new Error('expected the call to fail');
}

/** An RFC 8693 answer as [status, error]. */
const oauthError = (answer: { status: number; body: Record<string, unknown> }): [number, unknown] => [answer.status, answer.body.error];

/** The AWS keys of an RFC 8693 answer, in the SDK's shape. */
function awsKeysOf(body: Record<string, unknown>): Credentials {
  const keys = body.aws_credentials as { AccessKeyId: string; SecretAccessKey: string; SessionToken: string; Expiration: string };
  return { AccessKeyId: keys.AccessKeyId, SecretAccessKey: keys.SecretAccessKey, SessionToken: keys.SessionToken, Expiration: new Date(keys.Expiration) };
}

describe.each([
  ['in-memory store', () => undefined],
  ['Redis store', () => redisStoreConfig()],
])('bounded role chains (%s)', (_name, store) => {
  let issuer: TestIssuer;
  let gateway: TestGateway;
  const client = clientOf(() => gateway.url);

  beforeAll(async () => {
    issuer = await TestIssuer.start();
    const storeConfig = store();
    gateway = await startTestGateway({ issuers: [issuerFor(issuer)], ...(storeConfig ? { store: storeConfig } : {}) });
  });
  afterAll(async () => {
    await gateway?.close();
    await issuer?.close();
  });

  describe('a role assumes itself only when its can_assume lists it', () => {
    it('STS: reader (can_assume: []) may not AssumeRole reader; deployer (lists itself) may AssumeRole deployer', async () => {
      const reader = await client.web(await issuer.mint(OTHER_REPO), 'reader');
      expect(await awsError(client.assumeRole(reader, 'reader'))).toEqual([403, 'AccessDenied']);
      const deployer = await client.web(await issuer.mint(MAIN), 'deployer');
      const again = await client.assumeRole(deployer, 'deployer', 'self');
      expect(await client.whoAmI(again)).toBe(`arn:aws:sts::${ACCOUNT_ID}:assumed-role/deployer/self`);
      const denied = gateway.logs().filter((l) => l.log === 'audit' && l.event === 'denied' && l.action === 'AssumeRole');
      expect(denied.at(-1)).toMatchObject({ code: 'AccessDenied', role: 'reader' });
    });

    it.each([
      ['keeping the role (no audience)', {}],
      ['naming the same role', { audience: 'reader' }],
      ['narrowing the scope within the same role', { scope: 'logs:read' }],
    ])('RFC 8693: a reader access token %s is refused with invalid_target', async (_case, extra) => {
      const root = await client.exchange({ subject_token: await issuer.mint(OTHER_REPO), subject_token_type: TOKEN_TYPE.jwt, audience: 'reader' });
      expect(root.status).toBe(200);
      const narrowed = await client.exchange({ subject_token: root.body.access_token as string, subject_token_type: TOKEN_TYPE.accessToken, ...extra });
      expect(oauthError(narrowed)).toEqual([400, 'invalid_target']);
    });
  });

  describe('a chained session never outlives its root', () => {
    it('STS: two hops from a 900 s root end with the root, even when an hour is asked for; Expiration is the real one', async () => {
      const root = await client.web(await issuer.mint(MAIN), 'deployer', 900);
      const rootExp = root.Expiration!.getTime();
      expect(rootExp - Date.now()).toBeLessThanOrEqual(900_000);
      const child = await client.assumeRole(root, 'deployer', 'child', 3600);
      const grandchild = await client.assumeRole(child, 'reader', 'grandchild');
      for (const hop of [child, grandchild]) {
        expect(hop.Expiration!.getTime()).toBeLessThanOrEqual(rootExp);
        expect(hop.Expiration!.getTime()).toBeGreaterThan(Date.now() + 800_000);
      }
      expect(await client.whoAmI(grandchild)).toBe(`arn:aws:sts::${ACCOUNT_ID}:assumed-role/reader/grandchild`);
    });

    it('RFC 8693: the chained access token, its AWS keys and expires_in all end with the root', async () => {
      const root = await client.exchange({ subject_token: await issuer.mint(MAIN), subject_token_type: TOKEN_TYPE.jwt, audience: 'deployer', duration_seconds: '900' });
      const rootExp = decodeJwt(root.body.access_token as string).exp!;
      const chained = await client.exchange({ subject_token: root.body.access_token as string, subject_token_type: TOKEN_TYPE.accessToken, audience: 'reader', duration_seconds: '3600' });
      expect(chained.status).toBe(200);
      const exp = decodeJwt(chained.body.access_token as string).exp!;
      expect(exp).toBeLessThanOrEqual(rootExp);
      expect(awsKeysOf(chained.body).Expiration!.getTime()).toBeLessThanOrEqual(rootExp * 1000);
      expect(chained.body.expires_in).toBeLessThanOrEqual(900);
    });

    it('after the root web-identity token and the root session expired, the chain can neither be used nor renewed', async () => {
      // The root was issued 61 minutes ago for an hour (its web-identity token long expired) and ended a
      // minute ago; the child was chained from it fifteen seconds before the root ended (a margin a loaded
      // machine's pause between these steps cannot use up). Uncapped, the child would live almost another
      // hour and could chain (renew itself) forever.
      let offsetMs = -3660_000;
      const past = gatewayServicesAt(gateway, () => Date.now() + offsetMs);
      const identity = { source: 'ci', subject: TEST_SUBJECT, claims: { ...MAIN, sub: TEST_SUBJECT } };
      const root = await past.exchange.issueForIdentity(identity, { role: 'deployer', sessionName: 'expired-root', durationSeconds: 3600 });
      offsetMs = -75_000;
      const parent = await past.credentials.findSession(root.credentials.sessionId);
      expect(parent, 'the root is still live on the past clock').toBeDefined();
      const child = (await past.exchange.chain(parent!, { role: 'deployer', sessionName: 'outliving-child' })).credentials;
      expect(child.expiresAt.getTime()).toBeLessThanOrEqual(root.credentials.expiresAt.getTime());

      const keys: Credentials = { AccessKeyId: child.accessKeyId, SecretAccessKey: child.secretAccessKey, SessionToken: child.sessionToken, Expiration: child.expiresAt };
      expect(await awsError(client.whoAmI(keys))).toEqual([403, 'ExpiredToken']);
      expect(await awsError(client.assumeRole(keys, 'reader'))).toEqual([403, 'ExpiredToken']);
      const renewed = await client.exchange({ subject_token: child.accessToken, subject_token_type: TOKEN_TYPE.accessToken, audience: 'deployer' });
      expect(oauthError(renewed)).toEqual([400, 'invalid_request']);
      expect(await client.active(child.accessToken)).toBe(false);
    });
  });

  describe('revoking a session ends every session chained from it', () => {
    it('revoking the root (RFC 7009) ends both hops at once, on GetCallerIdentity, introspection and further chaining', async () => {
      const root = await client.exchange({ subject_token: await issuer.mint(MAIN), subject_token_type: TOKEN_TYPE.jwt, audience: 'deployer', session_name: 'root-to-revoke' });
      const child = await client.exchange({ subject_token: root.body.access_token as string, subject_token_type: TOKEN_TYPE.accessToken, audience: 'deployer', session_name: 'child' });
      const grandchild = await client.exchange({ subject_token: child.body.access_token as string, subject_token_type: TOKEN_TYPE.accessToken, audience: 'reader', session_name: 'grandchild' });
      const stsGrandchild = await client.assumeRole(awsKeysOf(child.body), 'reader', 'sts-grandchild');
      const hops = [child.body, grandchild.body];
      for (const hop of hops) {
        expect(await client.active(hop.access_token as string)).toBe(true);
        await client.whoAmI(awsKeysOf(hop));
      }
      await client.whoAmI(stsGrandchild);

      await client.revoke(root.body.access_token as string);
      for (const hop of hops) {
        expect(await client.active(hop.access_token as string)).toBe(false);
        expect(await awsError(client.whoAmI(awsKeysOf(hop)))).toEqual([403, 'InvalidClientTokenId']);
      }
      expect(await awsError(client.whoAmI(stsGrandchild))).toEqual([403, 'InvalidClientTokenId']);
      expect(await awsError(client.assumeRole(awsKeysOf(child.body), 'reader', 'after-revoke'))).toEqual([403, 'InvalidClientTokenId']);
      const again = await client.exchange({ subject_token: child.body.access_token as string, subject_token_type: TOKEN_TYPE.accessToken, audience: 'reader', session_name: 'grandchild' });
      expect(oauthError(again)).toEqual([400, 'invalid_request']);
    });

    it('revoking a middle session ends what was chained from it, not its root', async () => {
      const root = await client.web(await issuer.mint(MAIN), 'deployer');
      const child = await client.assumeRole(root, 'deployer', 'middle');
      const grandchild = await client.assumeRole(child, 'reader', 'below-middle');
      await client.revoke(child.SessionToken!);
      expect(await awsError(client.whoAmI(grandchild))).toEqual([403, 'InvalidClientTokenId']);
      expect(await client.whoAmI(root)).toBe(`arn:aws:sts::${ACCOUNT_ID}:assumed-role/deployer/root`);
    });
  });

  it("the root's identity claims are sealed in its record: not in the stored public info, not shown by introspection", async () => {
    const secretClaim = 'person-7f3a@example.com';
    const root = await client.exchange({ subject_token: await issuer.mint({ ...MAIN, email: secretClaim }), subject_token_type: TOKEN_TYPE.jwt, audience: 'deployer', session_name: 'claims' });
    const sid = decodeJwt(root.body.access_token as string).sid as string;
    const stored = await gateway.store.get(storeKeys.session(sid));
    expect(stored).toContain(`"sessionId":"${sid}"`);
    expect(stored).not.toContain(secretClaim);
    const introspection = await postForm(`${gateway.url}/oauth2/introspect`, { token: root.body.access_token as string });
    expect(await introspection.text()).not.toContain(secretClaim);
    // They are there all the same: the chain step below is checked against them.
    const chained = await client.exchange({ subject_token: root.body.access_token as string, subject_token_type: TOKEN_TYPE.accessToken, audience: 'reader' });
    expect(chained.status).toBe(200);
  });

  it(`a chain is at most ${MAX_CHAIN_DEPTH} hops deep`, async () => {
    let caller = await client.web(await issuer.mint(MAIN), 'deployer');
    for (let hop = 1; hop <= MAX_CHAIN_DEPTH; hop++) caller = await client.assumeRole(caller, 'deployer', `hop-${hop}`);
    expect(await awsError(client.assumeRole(caller, 'reader', 'one-too-many'))).toEqual([403, 'AccessDenied']);

    let token = (await client.exchange({ subject_token: await issuer.mint(MAIN), subject_token_type: TOKEN_TYPE.jwt, audience: 'deployer' })).body.access_token as string;
    for (let hop = 1; hop <= MAX_CHAIN_DEPTH; hop++) {
      const next = await client.exchange({ subject_token: token, subject_token_type: TOKEN_TYPE.accessToken, audience: 'deployer', session_name: `hop-${hop}` });
      expect(next.status).toBe(200);
      token = next.body.access_token as string;
    }
    expect(oauthError(await client.exchange({ subject_token: token, subject_token_type: TOKEN_TYPE.accessToken, audience: 'reader' }))).toEqual([400, 'invalid_grant']);
  });

  // Last in this block: the role watermark voids every deployer set issued before it.
  describe('revocation watermarks reach chained sessions through their path', () => {
    it('a watermark on the root\'s role ends a session chained to another role, and its cache entry is not handed out again', async () => {
      const root = await client.web(await issuer.mint(MAIN), 'deployer');
      const reader = await client.assumeRole(root, 'reader');
      expect(await client.whoAmI(reader)).toBe(`arn:aws:sts::${ACCOUNT_ID}:assumed-role/reader/chained`);

      await gateway.revocations.revoke({ kind: 'role', role: 'deployer' }, { by: 'test', reason: 'chained path' });
      // The reader session's own role is not covered; its root's is, so the chain ends.
      expect(await awsError(client.whoAmI(reader))).toEqual([403, 'ExpiredToken']);
      expect(await awsError(client.whoAmI(root))).toEqual([403, 'ExpiredToken']);

      // A new root, issued after the watermark, chains again; the old chained set is not answered from the cache.
      const fresh = await client.web(await issuer.mint(MAIN), 'deployer');
      const again = await client.assumeRole(fresh, 'reader');
      expect(again.AccessKeyId).not.toBe(reader.AccessKeyId);
      expect(await client.whoAmI(again)).toBe(`arn:aws:sts::${ACCOUNT_ID}:assumed-role/reader/chained`);
    });
  });
});

/** `deployer` no longer lists itself: a chain through deployer -> deployer is no longer allowed. */
function rolesWithoutSelfHop(): RoleConfig[] {
  return standardRoles().map((role) => (role.name === 'deployer' ? { ...role, canAssume: role.canAssume.filter((r) => r !== 'deployer') } : role));
}

describe('each chain step meets today\'s rules (replicas sharing one Redis, one with a changed configuration)', () => {
  let issuer: TestIssuer;
  let before: TestGateway;
  /** The same gateway, restarted with the rule granting deployer to main of acme/app removed. */
  let ruleRemoved: TestGateway;
  /** The same gateway, restarted with deployer no longer listing itself in can_assume. */
  let hopRemoved: TestGateway;
  const onBefore = clientOf(() => before.url);
  const onRuleRemoved = clientOf(() => ruleRemoved.url);
  const onHopRemoved = clientOf(() => hopRemoved.url);

  beforeAll(async () => {
    issuer = await TestIssuer.start();
    before = await startTestGateway({ issuers: [issuerFor(issuer)], store: redisStoreConfig() });
    const shared = { issuers: [issuerFor(issuer)], store: before.config.store, config: { signing: before.config.signing, encryptionKey: before.config.encryptionKey } };
    ruleRemoved = await startTestGateway({ ...shared, rules: standardRules().filter((r) => !r.roles.includes('deployer')) });
    hopRemoved = await startTestGateway({ ...shared, roles: rolesWithoutSelfHop() });
  });
  afterAll(async () => {
    await Promise.all([before?.close(), ruleRemoved?.close(), hopRemoved?.close()]);
    await issuer?.close();
  });

  it('control: a chain started on one replica continues on the other while the rules still allow it', async () => {
    const root = await onBefore.web(await issuer.mint(MAIN), 'deployer');
    const child = await onHopRemoved.assumeRole(root, 'reader', 'across');
    expect(await onRuleRemoved.whoAmI(child)).toBe(`arn:aws:sts::${ACCOUNT_ID}:assumed-role/reader/across`);
  });

  it('STS: once the rule granting the root role is removed, the next step is refused (AccessDenied), and an audit line says so', async () => {
    const root = await onBefore.web(await issuer.mint(MAIN), 'deployer');
    const child = await onBefore.assumeRole(root, 'deployer', 'child');
    expect(await awsError(onRuleRemoved.assumeRole(root, 'reader'))).toEqual([403, 'AccessDenied']);
    expect(await awsError(onRuleRemoved.assumeRole(child, 'reader'))).toEqual([403, 'AccessDenied']);
    const denied = ruleRemoved.logs().filter((l) => l.log === 'audit' && l.event === 'denied');
    expect(denied.at(-1)).toMatchObject({ action: 'AssumeRole', code: 'AccessDenied', source: 'ci', subject: TEST_SUBJECT });
    expect(await onBefore.assumeRole(child, 'reader', 'still-fine-where-granted')).toBeDefined();
  });

  it('STS: once a hop on the path is no longer in can_assume, the next step is refused', async () => {
    const root = await onBefore.web(await issuer.mint(MAIN), 'deployer');
    const child = await onBefore.assumeRole(root, 'deployer', 'self-hop');
    expect(await awsError(onHopRemoved.assumeRole(child, 'reader'))).toEqual([403, 'AccessDenied']);
  });

  it('RFC 8693: the same refusals are invalid_grant for a lapsed grant or path, invalid_target for the new hop', async () => {
    const root = await onBefore.exchange({ subject_token: await issuer.mint(MAIN), subject_token_type: TOKEN_TYPE.jwt, audience: 'deployer' });
    const child = await onBefore.exchange({ subject_token: root.body.access_token as string, subject_token_type: TOKEN_TYPE.accessToken, audience: 'deployer' });
    const chain = (on: typeof onBefore, token: unknown, audience: string) =>
      on.exchange({ subject_token: token as string, subject_token_type: TOKEN_TYPE.accessToken, audience });
    expect(oauthError(await chain(onRuleRemoved, root.body.access_token, 'reader'))).toEqual([400, 'invalid_grant']);
    expect(oauthError(await chain(onHopRemoved, child.body.access_token, 'reader'))).toEqual([400, 'invalid_grant']);
    expect(oauthError(await chain(onHopRemoved, root.body.access_token, 'deployer'))).toEqual([400, 'invalid_target']);
    expect((await chain(onBefore, child.body.access_token, 'reader')).status).toBe(200);
  });

  it('revoking the root on one replica ends the chain on the other at once', async () => {
    const root = await onBefore.exchange({ subject_token: await issuer.mint(MAIN), subject_token_type: TOKEN_TYPE.jwt, audience: 'deployer', session_name: 'replica-root' });
    const child = await onBefore.exchange({ subject_token: root.body.access_token as string, subject_token_type: TOKEN_TYPE.accessToken, audience: 'reader' });
    expect(await onHopRemoved.active(child.body.access_token as string)).toBe(true);
    await onBefore.revoke(root.body.access_token as string);
    expect(await onHopRemoved.active(child.body.access_token as string)).toBe(false);
    expect(await awsError(onHopRemoved.whoAmI(awsKeysOf(child.body)))).toEqual([403, 'InvalidClientTokenId']);
  });
});

