/**
 * The AWS broker on the wire and under faults (issue 13): a loopback stand-in for AWS STS records every
 * request and answers as scripted. Session policies reach AWS only on broker targets (a target's fixed
 * policy wins over a caller's, which is then refused); throttling is retried by the SDK and then
 * succeeds; AWS failing (500s, garbage, silence past the timeout) is a 503 with nothing cached; a failing
 * endpoint's circuit opens after five failed calls and later calls fail at once, without asking AWS.
 */
import { AssumeRoleWithWebIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { CIRCUIT_FAILURES } from '../../src/credentials/broker.js';
import { parseConfig } from '../../src/config/load.js';
import { TOKEN_EXCHANGE_GRANT, TOKEN_TYPE } from '../../src/http/oauth.js';
import { ACCOUNT_ID, postForm } from '../support/common.js';
import { issuerFor, REDIS_URL, redisStoreConfig, standardRoles, startTestGateway, type TestGateway } from '../support/gateway.js';
import { StsFaultServer } from '../support/sts-fault-server.js';
import { startRedis } from '../support/redis-servers.js';
import { TestIssuer } from '../support/test-issuer.js';

const OPEN_ROLE = `arn:aws:iam::${ACCOUNT_ID}:role/open`;
const FIXED_ROLE = `arn:aws:iam::${ACCOUNT_ID}:role/fixed`;
const FLAKY_ROLE = `arn:aws:iam::${ACCOUNT_ID}:role/flaky`;
const FIXED_POLICY = { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 's3:GetObject', Resource: '*' }] };
const JOB = { repository: 'acme/app', repository_id: 4242, ref: 'refs/heads/main' };

describe('the AWS broker on the wire and under faults', () => {
  let workload: TestIssuer;
  let aws: StsFaultServer;
  let flaky: StsFaultServer;
  let gateway: TestGateway;
  let redis: Redis;
  let prefix: string;

  beforeAll(async () => {
    workload = await TestIssuer.start();
    aws = await StsFaultServer.start();
    flaky = await StsFaultServer.start();
    const broker = (roleArn: string, endpoint: string, extra: Record<string, unknown> = {}) => ({ role_arn: roleArn, endpoint, session_name: '{claims.actor}', timeout_seconds: 1, ...extra });
    const targets = parseConfig(
      stringify({
        public_url: 'http://127.0.0.1:8080',
        account_id: ACCOUNT_ID,
        dev: { allow_insecure_http: true },
        targets: [
          { name: 'open', kind: 'aws', broker: broker(OPEN_ROLE, aws.url) },
          { name: 'fixed', kind: 'aws', broker: broker(FIXED_ROLE, aws.url, { policy: FIXED_POLICY, policy_arns: ['arn:aws:iam::aws:policy/ReadOnlyAccess'] }) },
          { name: 'flaky', kind: 'aws', broker: broker(FLAKY_ROLE, flaky.url) },
        ],
      }),
      {},
      process.cwd(),
    ).targets!;
    const store = redisStoreConfig();
    prefix = (store as { prefix: string }).prefix;
    gateway = await startTestGateway({
      issuers: [issuerFor(workload)],
      store,
      roles: standardRoles().map((role) => (role.name === 'reader' ? { ...role, targets: ['open', 'fixed', 'flaky'] } : role)),
      config: { targets },
    });
    redis = new Redis(REDIS_URL);
  });
  afterAll(async () => {
    await gateway?.close();
    await Promise.all([aws?.close(), flaky?.close(), workload?.close()]);
    await redis?.quit();
  });

  const sts = () => new STSClient({ endpoint: gateway.url, region: 'us-east-1', maxAttempts: 1 });
  async function assume(roleArn: string, actor: string, extra: Partial<{ Policy: string; PolicyArns: { arn: string }[]; DurationSeconds: number }> = {}) {
    const token = await workload.mint({ ...JOB, actor });
    return sts().send(new AssumeRoleWithWebIdentityCommand({ RoleArn: roleArn, RoleSessionName: 'caller', WebIdentityToken: token, ...extra }));
  }
  const failure = (promise: Promise<unknown>) => promise.then(() => ({ name: 'granted', status: 200 }), (err: { name: string; $metadata?: { httpStatusCode?: number } }) => ({ name: err.name, status: err.$metadata?.httpStatusCode }));
  const cached = async () => (await redis.keys(`${prefix}brk:*`)).length;

  it('passes a caller\'s session policies and DurationSeconds to AWS for a broker role', async () => {
    const policy = JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 's3:ListBucket', Resource: '*' }] });
    const answer = await assume(OPEN_ROLE, 'policy-user', { Policy: policy, PolicyArns: [{ arn: 'arn:aws:iam::aws:policy/ReadOnlyAccess' }], DurationSeconds: 1800 });
    expect(answer.Credentials?.AccessKeyId).toMatch(/^ASIA/);
    expect(answer.AssumedRoleUser?.Arn).toBe('arn:aws:sts::123456789012:assumed-role/stand-in/policy-user');
    const sent = aws.requests.at(-1)!;
    expect(sent.get('Policy')).toBe(policy);
    expect(sent.get('PolicyArns.member.1.arn')).toBe('arn:aws:iam::aws:policy/ReadOnlyAccess');
    expect(sent.get('DurationSeconds')).toBe('1800');
    expect(sent.get('RoleArn')).toBe(OPEN_ROLE);
    // What went to AWS is stsgate's target token for the workload, never the workload's own token.
    expect(sent.get('WebIdentityToken')!.split('.')[1]).not.toContain(Buffer.from(workload.url).toString('base64url').slice(0, 10));
  });

  it('a target that fixes its policy sends it always and refuses a caller\'s; stsgate\'s own roles refuse session policies', async () => {
    await assume(FIXED_ROLE, 'fixed-user');
    const sent = aws.requests.at(-1)!;
    expect(JSON.parse(sent.get('Policy')!)).toEqual(FIXED_POLICY);
    expect(sent.get('PolicyArns.member.1.arn')).toBe('arn:aws:iam::aws:policy/ReadOnlyAccess');
    const count = aws.requests.length;
    expect(await failure(assume(FIXED_ROLE, 'fixed-user-2', { Policy: '{"Version":"2012-10-17","Statement":[]}' }))).toEqual({ name: 'ValidationError', status: 400 });
    expect(await failure(assume(`arn:aws:iam::${ACCOUNT_ID}:role/reader`, 'native', { Policy: '{"Version":"2012-10-17","Statement":[]}' }))).toEqual({ name: 'ValidationError', status: 400 });
    expect(aws.requests.length).toBe(count);
  });

  it('throttling is retried by the SDK (jittered, capped) and then succeeds', async () => {
    const count = aws.requests.length;
    aws.script.push({ kind: 'error', status: 400, code: 'Throttling', message: 'Rate exceeded', retryAfter: 1 });
    const answer = await assume(OPEN_ROLE, 'throttled');
    expect(answer.Credentials?.AccessKeyId).toMatch(/^ASIA/);
    expect(aws.requests.length - count).toBe(2);
  });

  it.each([
    ['AWS answering 500', { kind: 'error', status: 500, code: 'InternalFailure' } as const],
    ['AWS answering garbage', { kind: 'garbage' } as const],
    ['AWS silent past the timeout', { kind: 'hang' } as const],
  ])('%s is a 503 at the gateway, retried at most twice, and nothing is cached', async (_name, answer) => {
    const before = await cached();
    aws.script.push(answer, answer, answer);
    const count = aws.requests.length;
    const res = await postForm(`${gateway.url}/oauth2/token`, { grant_type: TOKEN_EXCHANGE_GRANT, subject_token: await workload.mint({ ...JOB, actor: `fault-${answer.kind}` }), subject_token_type: TOKEN_TYPE.jwt, audience: 'open' });
    expect(res.status).toBe(503);
    expect(((await res.json()) as { error: string }).error).toBe('temporarily_unavailable');
    expect(aws.requests.length - count).toBeLessThanOrEqual(3);
    expect(aws.requests.length - count).toBeGreaterThanOrEqual(1);
    expect(await cached()).toBe(before);
    aws.script.length = 0;
  }, 30_000);

  it(`after ${CIRCUIT_FAILURES} failed calls the circuit opens: later calls fail at once with Retry-After, AWS is not asked`, async () => {
    flaky.fallback = { kind: 'error', status: 503, code: 'ServiceUnavailable' };
    for (let i = 0; i < CIRCUIT_FAILURES; i++) expect((await failure(assume(FLAKY_ROLE, `flaky-${i}`))).status).toBe(503);
    const count = flaky.requests.length;
    const started = performance.now();
    const res = await postForm(`${gateway.url}/oauth2/token`, { grant_type: TOKEN_EXCHANGE_GRANT, subject_token: await workload.mint({ ...JOB, actor: 'flaky-after' }), subject_token_type: TOKEN_TYPE.jwt, audience: 'flaky' });
    expect(res.status).toBe(503);
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(performance.now() - started).toBeLessThan(500);
    expect(flaky.requests.length).toBe(count);
    // Another endpoint's circuit is its own.
    expect((await assume(OPEN_ROLE, 'still-fine')).Credentials?.AccessKeyId).toMatch(/^ASIA/);
  }, 60_000);
});

describe('the AWS broker with its store down', () => {
  it('fails closed: 503, and AWS is not asked (nothing could be cached or checked against revocations)', async () => {
    const workload = await TestIssuer.start();
    const aws = await StsFaultServer.start();
    const redis = await startRedis();
    const targets = parseConfig(
      stringify({ public_url: 'http://127.0.0.1:8080', account_id: ACCOUNT_ID, dev: { allow_insecure_http: true }, targets: [{ name: 'open', kind: 'aws', broker: { role_arn: OPEN_ROLE, endpoint: aws.url, session_name: '{claims.actor}' } }] }),
      {},
      process.cwd(),
    ).targets!;
    const gateway = await startTestGateway({
      issuers: [issuerFor(workload)],
      store: { kind: 'standalone', url: redis.url, prefix: 'broker-down:', commandTimeoutMs: 500 },
      roles: standardRoles().map((role) => (role.name === 'reader' ? { ...role, targets: ['open'] } : role)),
      config: { targets },
    });
    try {
      await redis.stop();
      const res = await postForm(`${gateway.url}/oauth2/token`, { grant_type: TOKEN_EXCHANGE_GRANT, subject_token: await workload.mint({ ...JOB, actor: 'store-down' }), subject_token_type: TOKEN_TYPE.jwt, audience: 'open' });
      expect(res.status).toBe(503);
      expect(((await res.json()) as { error: string }).error).toBe('temporarily_unavailable');
      expect(aws.requests).toHaveLength(0);
    } finally {
      await gateway.close();
      await Promise.all([aws.close(), workload.close(), redis.stop()]);
    }
  }, 60_000);
});
