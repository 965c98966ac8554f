/**
 * The unmodified AWS SDK for JavaScript v3 against stsgate: AssumeRoleWithWebIdentity with a JWT from a
 * loopback issuer, GetCallerIdentity and AssumeRole signed (SigV4) with the returned keys, the SDK's own
 * web-identity credential provider, and tampered keys refused with AWS's codes. Runs on the in-memory
 * store and on the real Redis.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AssumeRoleCommand, AssumeRoleWithWebIdentityCommand, GetCallerIdentityCommand, STSClient, STSServiceException } from '@aws-sdk/client-sts';
import { fromTokenFile } from '@aws-sdk/credential-providers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { issuerFor, redisStoreConfig, startTestGateway, type TestGateway } from '../support/gateway.js';
import { TestIssuer } from '../support/test-issuer.js';
import { ACCOUNT_ID } from '../support/common.js';

const DEPLOYER_ARN = `arn:aws:iam::${ACCOUNT_ID}:role/deployer`;
const READER_ARN = `arn:aws:iam::${ACCOUNT_ID}:role/reader`;
const MAIN = { repository: 'acme/app', ref: 'refs/heads/main' };

/** Changes one character in the middle of a value, always to a different one (a change at the end can be a no-op). */
function flipMiddle(value: string): string {
  const i = Math.floor(value.length / 2);
  return `${value.slice(0, i)}${value[i] === 'A' ? 'B' : 'A'}${value.slice(i + 1)}`;
}

describe.each([
  ['in-memory store', () => undefined],
  ['Redis store', () => redisStoreConfig()],
])('AWS SDK v3 against stsgate (%s)', (_name, store) => {
  let issuer: TestIssuer;
  let gateway: TestGateway;
  let sts: STSClient;

  beforeAll(async () => {
    issuer = await TestIssuer.start();
    const storeConfig = store();
    gateway = await startTestGateway({ issuers: [issuerFor(issuer)], ...(storeConfig ? { store: storeConfig } : {}) });
    sts = new STSClient({ endpoint: gateway.url, region: 'us-east-1', credentials: { accessKeyId: 'unused', secretAccessKey: 'unused' }, maxAttempts: 1 });
  });
  afterAll(async () => {
    await gateway?.close();
    await issuer?.close();
  });

  async function assume(claims: Record<string, unknown> = MAIN, roleArn = DEPLOYER_ARN, extra: Partial<{ DurationSeconds: number; RoleSessionName: string }> = {}) {
    const token = await issuer.mint(claims);
    return sts.send(new AssumeRoleWithWebIdentityCommand({ RoleArn: roleArn, RoleSessionName: 'ci-run', WebIdentityToken: token, ...extra }));
  }

  function clientFor(credentials: { AccessKeyId?: string; SecretAccessKey?: string; SessionToken?: string }) {
    return new STSClient({
      endpoint: gateway.url,
      region: 'us-east-1',
      maxAttempts: 1,
      credentials: { accessKeyId: credentials.AccessKeyId!, secretAccessKey: credentials.SecretAccessKey!, sessionToken: credentials.SessionToken! },
    });
  }

  async function awsError(promise: Promise<unknown>): Promise<{ name: string; status: number | undefined; message: string }> {
    try {
      await promise;
    } catch (err) {
      expect(err).toBeInstanceOf(STSServiceException);
      const e = err as STSServiceException;
      return { name: e.name, status: e.$metadata.httpStatusCode, message: e.message };
    }
    throw new Error('expected the call to fail');
  }

  it('AssumeRoleWithWebIdentity returns real keys, and GetCallerIdentity signed with them names the assumed role', async () => {
    const out = await assume();
    const creds = out.Credentials!;
    expect(creds.AccessKeyId).toMatch(/^ASIA[A-Z2-7]{16}$/);
    expect(creds.SecretAccessKey).toHaveLength(40);
    expect(creds.SessionToken).toBeTruthy();
    expect(creds.Expiration!.getTime() - Date.now()).toBeGreaterThan(3500_000);
    expect(out.AssumedRoleUser?.Arn).toBe(`arn:aws:sts::${ACCOUNT_ID}:assumed-role/deployer/ci-run`);
    expect(out.AssumedRoleUser?.AssumedRoleId).toMatch(/^AROA[A-Z2-7]{17}:ci-run$/);
    expect(out.SubjectFromWebIdentityToken).toBe('repo:acme/app:ref:refs/heads/main');
    expect(out.Audience).toBe('sts.example.com');
    expect(out.Provider).toBe(issuer.url);

    const who = await clientFor(creds).send(new GetCallerIdentityCommand({}));
    expect(who.Arn).toBe(`arn:aws:sts::${ACCOUNT_ID}:assumed-role/deployer/ci-run`);
    expect(who.Account).toBe(ACCOUNT_ID);
    expect(who.UserId).toBe(out.AssumedRoleUser?.AssumedRoleId);
  });

  it('asking again for the same role returns the cached credential set', async () => {
    const first = await assume();
    const second = await assume();
    expect(second.Credentials?.AccessKeyId).toBe(first.Credentials?.AccessKeyId);
    const other = await assume(MAIN, DEPLOYER_ARN, { RoleSessionName: 'another-session' });
    expect(other.Credentials?.AccessKeyId).not.toBe(first.Credentials?.AccessKeyId);
  });

  it.each([
    ['a tampered secret key', (c: Record<string, string>) => ({ ...c, SecretAccessKey: `${c.SecretAccessKey!.slice(0, -1)}${c.SecretAccessKey!.endsWith('A') ? 'B' : 'A'}` }), 'SignatureDoesNotMatch', 403],
    ['a tampered session token', (c: Record<string, string>) => ({ ...c, SessionToken: flipMiddle(c.SessionToken!) }), 'InvalidClientTokenId', 403],
    ['an unknown access key id', (c: Record<string, string>) => ({ ...c, AccessKeyId: 'ASIAAAAAAAAAAAAAAAAA' }), 'InvalidClientTokenId', 403],
  ])('GetCallerIdentity with %s is refused', async (_case, tamper, code, status) => {
    const out = await assume();
    const creds = tamper(out.Credentials as unknown as Record<string, string>);
    const err = await awsError(clientFor(creds).send(new GetCallerIdentityCommand({})));
    expect(err.name).toBe(code);
    expect(err.status).toBe(status);
  });

  it("pairs one session's keys with another session's token: refused", async () => {
    const a = (await assume()).Credentials!;
    const b = (await assume(MAIN, DEPLOYER_ARN, { RoleSessionName: 'other' })).Credentials!;
    const err = await awsError(clientFor({ ...a, SessionToken: b.SessionToken }).send(new GetCallerIdentityCommand({})));
    expect(err.name).toBe('InvalidClientTokenId');
  });

  it('AssumeRole chains to a role listed in can_assume, for at most one hour, and refuses others', async () => {
    const creds = (await assume()).Credentials!;
    const chained = await clientFor(creds).send(new AssumeRoleCommand({ RoleArn: READER_ARN, RoleSessionName: 'chained' }));
    expect(chained.AssumedRoleUser?.Arn).toBe(`arn:aws:sts::${ACCOUNT_ID}:assumed-role/reader/chained`);
    const who = await clientFor(chained.Credentials!).send(new GetCallerIdentityCommand({}));
    expect(who.Arn).toBe(`arn:aws:sts::${ACCOUNT_ID}:assumed-role/reader/chained`);

    const tooLong = await awsError(clientFor(creds).send(new AssumeRoleCommand({ RoleArn: READER_ARN, RoleSessionName: 'chained', DurationSeconds: 7200 })));
    expect(tooLong.name).toBe('ValidationError');
    const denied = await awsError(clientFor(creds).send(new AssumeRoleCommand({ RoleArn: `arn:aws:iam::${ACCOUNT_ID}:role/admin`, RoleSessionName: 'x1' })));
    expect(denied.name).toBe('AccessDenied');
    expect(denied.status).toBe(403);
    // reader lists nothing in can_assume
    const fromReader = await awsError(clientFor(chained.Credentials!).send(new AssumeRoleCommand({ RoleArn: DEPLOYER_ARN, RoleSessionName: 'x2' })));
    expect(fromReader.name).toBe('AccessDenied');
  });

  it("the SDK's web-identity credential provider (token file + role ARN) gets credentials", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'stsgate-token-'));
    const tokenFile = join(dir, 'token');
    await writeFile(tokenFile, await issuer.mint(MAIN));
    const provider = fromTokenFile({
      webIdentityTokenFile: tokenFile,
      roleArn: DEPLOYER_ARN,
      roleSessionName: 'from-token-file',
      clientConfig: { endpoint: gateway.url, region: 'us-east-1', maxAttempts: 1 },
    });
    const client = new STSClient({ endpoint: gateway.url, region: 'us-east-1', credentials: provider, maxAttempts: 1 });
    const who = await client.send(new GetCallerIdentityCommand({}));
    expect(who.Arn).toBe(`arn:aws:sts::${ACCOUNT_ID}:assumed-role/deployer/from-token-file`);
  });

  it.each([
    ['a role no rule grants', { repository: 'acme/app', ref: 'refs/heads/dev' }, DEPLOYER_ARN, {}, 'AccessDenied', 403],
    ['an unknown role', MAIN, `arn:aws:iam::${ACCOUNT_ID}:role/nope`, {}, 'AccessDenied', 403],
    ['a role ARN of another account', MAIN, 'arn:aws:iam::999999999999:role/deployer', {}, 'AccessDenied', 403],
    ['a duration over the role maximum', MAIN, READER_ARN, { DurationSeconds: 7200 }, 'ValidationError', 400],
    ['a duration under 900 seconds', MAIN, READER_ARN, { DurationSeconds: 899 }, 'ValidationError', 400],
    ['a session name with a space', MAIN, READER_ARN, { RoleSessionName: 'bad name' }, 'ValidationError', 400],
    ['a one-character session name', MAIN, READER_ARN, { RoleSessionName: 'x' }, 'ValidationError', 400],
  ])('AssumeRoleWithWebIdentity with %s is refused', async (_case, claims, roleArn, extra, code, status) => {
    const err = await awsError(assume(claims, roleArn, extra));
    expect(err.name).toBe(code);
    expect(err.status).toBe(status);
  });

  it('an expired web-identity token is refused with ExpiredTokenException', async () => {
    const token = await issuer.mint(MAIN, { issuedAt: Math.floor(Date.now() / 1000) - 1000, expiresIn: 300 });
    const err = await awsError(sts.send(new AssumeRoleWithWebIdentityCommand({ RoleArn: DEPLOYER_ARN, RoleSessionName: 'ci', WebIdentityToken: token })));
    expect(err.name).toBe('ExpiredTokenException');
    expect(err.status).toBe(400);
  });
});
