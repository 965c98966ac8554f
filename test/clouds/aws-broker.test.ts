/**
 * The AWS broker (issue 13, first slice): stsgate trades an `aws` target's token for real AWS credentials
 * with AWS's own SDK, against a second stsgate process playing AWS STS (test/support/aws-stand-in.ts),
 * and hands them out from RFC 8693 and from its own STS API (an unmodified SDK with its STS endpoint
 * pointed at stsgate). The keys then work at "AWS" (GetCallerIdentity at the stand-in, with the AWS CLI
 * and the SDK). Cached sealed in Redis, reused, one upstream call for a burst, dropped by a revocation;
 * AWS's refusal relayed, an unreachable AWS a 503; nothing cached on failure.
 */
import { execFile, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { AssumeRoleWithWebIdentityCommand, GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { fromTokenFile } from '@aws-sdk/credential-providers';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { parseConfig } from '../../src/config/load.js';
import { TOKEN_EXCHANGE_GRANT, TOKEN_TYPE } from '../../src/http/oauth.js';
import { ACCOUNT_ID, freePort, postForm } from '../support/common.js';
import { STAND_IN_ROLE_ARN, startAwsStandIn, type AwsStandIn } from '../support/aws-stand-in.js';
import { issuerFor, REDIS_URL, redisStoreConfig, standardRoles, startTestGateway, type TestGateway } from '../support/gateway.js';
import { reservePublicUrl } from '../support/browser-login.js';
import { TestIssuer } from '../support/test-issuer.js';

const AWS = '/usr/bin/aws';
const HAS_AWS = existsSync(AWS);
const HAS_BOTO3 = spawnSync('/usr/bin/python3', ['-c', 'import boto3']).status === 0;
if (!HAS_AWS) console.warn('aws-broker.test.ts: skipping the AWS CLI test: /usr/bin/aws is missing (apt-get install awscli)');
if (!HAS_BOTO3) console.warn('aws-broker.test.ts: skipping the boto3 test: python3-boto3 is missing (apt-get install python3-boto3)');
const run = promisify(execFile);
const JOB = { repository: 'acme/app', repository_id: 4242, ref: 'refs/heads/main', actor: 'octocat' };
/** A role ARN whose broker's STS endpoint nobody answers. */
const DOWN_ROLE_ARN = `arn:aws:iam::${ACCOUNT_ID}:role/unreachable`;

describe('the AWS broker', () => {
  let workload: TestIssuer;
  let a: TestGateway;
  let aws: AwsStandIn;
  let redis: Redis;
  let prefix: string;

  beforeAll(async () => {
    workload = await TestIssuer.start();
    const { port, publicUrl } = await reservePublicUrl();
    aws = await startAwsStandIn(publicUrl);
    const nobody = await freePort();
    const aws_ = { principal_tags: { repo: '{claims.repository}' }, source_identity: '{claims.actor}' };
    const targets = parseConfig(
      stringify({
        public_url: publicUrl,
        account_id: ACCOUNT_ID,
        dev: { allow_insecure_http: true },
        targets: [
          { name: 'aws-prod', kind: 'aws', subject: 'repo:{claims.repository_id}:ref:{claims.ref}', aws: aws_, broker: { role_arn: STAND_IN_ROLE_ARN, endpoint: aws.url, session_name: 'gha-{claims.actor}', duration_seconds: 3600 } },
          { name: 'aws-down', kind: 'aws', subject: 'repo:{claims.repository_id}:ref:{claims.ref}', aws: aws_, broker: { role_arn: DOWN_ROLE_ARN, endpoint: `http://127.0.0.1:${nobody}` } },
        ],
      }),
      {},
      process.cwd(),
    ).targets!;
    const store = redisStoreConfig();
    prefix = (store as { prefix: string }).prefix;
    a = await startTestGateway({
      issuers: [issuerFor(workload)],
      port,
      store,
      roles: standardRoles().map((role) => (role.name === 'reader' ? { ...role, targets: ['aws-prod', 'aws-down'] } : role)),
      config: { publicUrl, targets },
    });
    redis = new Redis(REDIS_URL);
  }, 60_000);

  afterAll(async () => {
    await aws?.process.stop();
    await a?.close();
    await workload?.close();
    await redis?.quit();
  });

  async function brokered(claims: Record<string, unknown> = JOB, target = 'aws-prod') {
    const res = await postForm(`${a.url}/oauth2/token`, { grant_type: TOKEN_EXCHANGE_GRANT, subject_token: await workload.mint(claims), subject_token_type: TOKEN_TYPE.jwt, audience: target });
    return { status: res.status, body: (await res.json()) as Record<string, any> };
  }
  const brokeredKeys = async () => redis.keys(`${prefix}brk:*`);
  const atAws = (c: { AccessKeyId: string; SecretAccessKey: string; SessionToken: string }) =>
    new STSClient({ endpoint: aws.url, region: 'us-east-1', maxAttempts: 1, credentials: { accessKeyId: c.AccessKeyId, secretAccessKey: c.SecretAccessKey, sessionToken: c.SessionToken } });

  it('RFC 8693 with a broker target returns real AWS credentials that AWS accepts; cached sealed, reused', async () => {
    const first = await brokered();
    expect(first.status, JSON.stringify(first.body)).toBe(200);
    expect(first.body).toMatchObject({ token_type: 'N_A', target: 'aws-prod', aws_credentials: { Version: 1 } });
    const keys = first.body.aws_credentials;
    const who = await atAws(keys).send(new GetCallerIdentityCommand({}));
    expect(who.Arn).toBe(`arn:aws:sts::${ACCOUNT_ID}:assumed-role/prod-deployer/gha-octocat`);
    expect(aws.calls().filter((c) => c.event === 'issued')).toHaveLength(1);

    const again = await brokered();
    expect(again.body.aws_credentials.AccessKeyId).toBe(keys.AccessKeyId);
    expect(aws.calls().filter((c) => c.event === 'issued')).toHaveLength(1);
    const stored = await brokeredKeys();
    expect(stored).toHaveLength(1);
    const raw = (await redis.get(stored[0]!))!;
    expect(raw).not.toContain(keys.SecretAccessKey);
    expect(raw).not.toContain(keys.SessionToken);
    const ttl = await redis.pttl(stored[0]!);
    expect(ttl).toBeGreaterThan(3_000_000);
    expect(ttl).toBeLessThanOrEqual(3_600_000);
    const line = a.logs().find((l) => l.action === 'BrokeredCredentials' && l.event === 'issued' && l.cached === false);
    expect(line).toMatchObject({ target: 'aws-prod', role: 'reader', kind: 'aws' });
    expect(typeof line?.upstreamRequestId).toBe('string');
  });

  it.skipIf(!HAS_AWS)('the AWS CLI uses the brokered keys at AWS', async () => {
    const keys = (await brokered()).body.aws_credentials;
    const { stdout } = await run(AWS, ['sts', 'get-caller-identity', '--endpoint-url', aws.url, '--region', 'us-east-1', '--output', 'json'], {
      env: { PATH: '/usr/bin:/bin', HOME: '/nonexistent', AWS_CONFIG_FILE: '/dev/null', AWS_SHARED_CREDENTIALS_FILE: '/dev/null', AWS_ACCESS_KEY_ID: keys.AccessKeyId, AWS_SECRET_ACCESS_KEY: keys.SecretAccessKey, AWS_SESSION_TOKEN: keys.SessionToken },
      timeout: 60_000,
    });
    expect(JSON.parse(stdout).Arn).toBe(`arn:aws:sts::${ACCOUNT_ID}:assumed-role/prod-deployer/gha-octocat`);
  }, 90_000);

  it.skipIf(!HAS_BOTO3)('boto3 uses the brokered keys at AWS', async () => {
    const keys = (await brokered()).body.aws_credentials;
    const script = 'import boto3, json, os\nsts = boto3.client("sts", endpoint_url=os.environ["ENDPOINT"], region_name="us-east-1")\nprint(json.dumps(sts.get_caller_identity()["Arn"]))';
    const { stdout } = await run('/usr/bin/python3', ['-c', script], {
      env: { PATH: '/usr/bin:/bin', HOME: '/nonexistent', ENDPOINT: aws.url, AWS_CONFIG_FILE: '/dev/null', AWS_SHARED_CREDENTIALS_FILE: '/dev/null', AWS_ACCESS_KEY_ID: keys.AccessKeyId, AWS_SECRET_ACCESS_KEY: keys.SecretAccessKey, AWS_SESSION_TOKEN: keys.SessionToken },
      timeout: 60_000,
    });
    expect(JSON.parse(stdout)).toBe(`arn:aws:sts::${ACCOUNT_ID}:assumed-role/prod-deployer/gha-octocat`);
  }, 90_000);

  it('an unmodified SDK with its STS endpoint at stsgate and a web identity token file gets keys AWS accepts', async () => {
    const tokenFile = join(aws.dir, 'workload-token');
    await writeFile(tokenFile, await workload.mint({ ...JOB, actor: 'sdk-user' }), { mode: 0o600 });
    const provider = fromTokenFile({ webIdentityTokenFile: tokenFile, roleArn: STAND_IN_ROLE_ARN, roleSessionName: 'ignored', clientConfig: { endpoint: a.url, region: 'us-east-1', maxAttempts: 1 } });
    const client = new STSClient({ endpoint: aws.url, region: 'us-east-1', credentials: provider, maxAttempts: 1 });
    expect((await client.send(new GetCallerIdentityCommand({}))).Arn).toBe(`arn:aws:sts::${ACCOUNT_ID}:assumed-role/prod-deployer/gha-sdk-user`);
  });

  it('from an stsgate access token: its role must list the broker target; the keys work at AWS', async () => {
    const exchange = (form: Record<string, string>) => postForm(`${a.url}/oauth2/token`, { grant_type: TOKEN_EXCHANGE_GRANT, ...form }).then(async (res) => ({ status: res.status, body: (await res.json()) as Record<string, any> }));
    const reader = await exchange({ subject_token: await workload.mint({ ...JOB, actor: 'via-session' }), subject_token_type: TOKEN_TYPE.jwt, audience: 'reader' });
    const keys = await exchange({ subject_token: reader.body.access_token, subject_token_type: TOKEN_TYPE.accessToken, audience: 'aws-prod' });
    expect(keys.status, JSON.stringify(keys.body)).toBe(200);
    expect((await atAws(keys.body.aws_credentials).send(new GetCallerIdentityCommand({}))).Arn).toBe(`arn:aws:sts::${ACCOUNT_ID}:assumed-role/prod-deployer/gha-via-session`);
    // deployer does not list the broker target.
    const deployer = await exchange({ subject_token: await workload.mint(JOB), subject_token_type: TOKEN_TYPE.jwt, audience: 'deployer' });
    const refused = await exchange({ subject_token: deployer.body.access_token, subject_token_type: TOKEN_TYPE.accessToken, audience: 'aws-prod' });
    expect(refused).toMatchObject({ status: 400, body: { error: 'invalid_target' } });
  });

  it('a burst of 200 identical requests makes one call to AWS', async () => {
    const before = aws.calls().length;
    const claims = { ...JOB, actor: 'burst' };
    const tokens = await Promise.all(Array.from({ length: 200 }, () => workload.mint(claims)));
    const sts = new STSClient({ endpoint: a.url, region: 'us-east-1', maxAttempts: 1 });
    const answers = await Promise.all(tokens.map((token) => sts.send(new AssumeRoleWithWebIdentityCommand({ RoleArn: STAND_IN_ROLE_ARN, RoleSessionName: 'burst', WebIdentityToken: token }))));
    expect(new Set(answers.map((answer) => answer.Credentials?.AccessKeyId)).size).toBe(1);
    expect(aws.calls().length - before).toBe(1);
  });

  it('a revocation watermark drops the cached set: the next request asks AWS again', async () => {
    const claims = { ...JOB, actor: 'revoked' };
    const first = (await brokered(claims)).body.aws_credentials;
    const before = aws.calls().length;
    await a.revocations.revoke({ kind: 'subject', subject: 'repo:acme/app:ref:refs/heads/main' }, { by: 'test' });
    const after = await brokered(claims);
    expect(after.status).toBe(200);
    expect(first.AccessKeyId).toMatch(/^ASIA/);
    // stsgate asked AWS again instead of answering from its cache.
    expect(aws.calls().length - before).toBe(1);
  });

  it('AWS refusing is relayed with its code; AWS unreachable is a 503; nothing cached either way', async () => {
    const before = (await brokeredKeys()).length;
    // Another acme repository: stsgate grants the target, AWS's trust policy does not match its tags.
    const other = { ...JOB, repository: 'acme/other', repository_id: 5151, actor: 'other' };
    const refused = await brokered(other);
    expect(refused).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });
    expect(refused.body.error_description).toContain('AWS refused the credentials for target aws-prod');
    // Through stsgate's own STS API, AWS's code and status as AWS answered them.
    const sts = new STSClient({ endpoint: a.url, region: 'us-east-1', maxAttempts: 1 });
    const error = await sts.send(new AssumeRoleWithWebIdentityCommand({ RoleArn: STAND_IN_ROLE_ARN, RoleSessionName: 'refused', WebIdentityToken: await workload.mint(other) })).catch((err: unknown) => err as { name: string; $metadata: { httpStatusCode?: number } });
    expect([(error as { name: string }).name, (error as { $metadata: { httpStatusCode?: number } }).$metadata.httpStatusCode]).toEqual(['AccessDenied', 403]);
    const down = await brokered({ ...JOB, actor: 'down' }, 'aws-down');
    expect(down.status).toBe(503);
    expect(down.body.error).toBe('temporarily_unavailable');
    expect(await brokeredKeys()).toHaveLength(before);
    const lines = a.logs().filter((l) => l.action === 'BrokeredCredentials' && l.event === 'denied');
    expect(lines.map((l) => [l.target, l.code])).toEqual(expect.arrayContaining([['aws-prod', 'AccessDenied'], ['aws-down', 'ServiceUnavailable']]));
  }, 60_000);

  it('a workload the rules do not grant the target gets invalid_target, and AWS is never asked', async () => {
    const before = aws.calls().length;
    const res = await brokered({ repository: 'evil/app', repository_id: 1, ref: 'refs/heads/main', actor: 'x' });
    expect(res).toMatchObject({ status: 400, body: { error: 'invalid_target' } });
    expect(aws.calls().length).toBe(before);
  });
});
