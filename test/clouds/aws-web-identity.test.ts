/**
 * stsgate as the OIDC issuer an AWS account trusts (issue 12), proven with unmodified AWS clients: gateway
 * A holds the identities and mints an `aws` target token; gateway B, a separate `stsgate serve` process,
 * plays AWS STS: it trusts A by discovery, as an IAM OIDC provider does, and its rules match the `sub`
 * and the session tags claim the way a trust policy does. The GitHub Actions flow, in its two steps:
 * the workload's JWT -> A (RFC 8693, the aws target) -> the target token -> AssumeRoleWithWebIdentity at
 * B with the AWS CLI and the AWS SDK -> GetCallerIdentity with the keys B returned.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { AssumeRoleWithWebIdentityCommand, GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { fromTokenFile } from '@aws-sdk/credential-providers';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { parseConfig } from '../../src/config/load.js';
import { TOKEN_EXCHANGE_GRANT, TOKEN_TYPE } from '../../src/http/oauth.js';
import { ACCOUNT_ID, postForm } from '../support/common.js';
import { issuerFor, standardRoles, startTestGateway, type TestGateway } from '../support/gateway.js';
import type { GatewayProcess } from '../support/gateway-process.js';
import { STAND_IN_ROLE_ARN, startAwsStandIn, type AwsStandIn } from '../support/aws-stand-in.js';
import { reservePublicUrl } from '../support/browser-login.js';
import { TestIssuer } from '../support/test-issuer.js';

const AWS = '/usr/bin/aws';
const run = promisify(execFile);
const B_ROLE = STAND_IN_ROLE_ARN;
/** A GitHub Actions job of acme/app on main: stable numeric ids, as the README recommends for `sub`. */
const JOB = { repository: 'acme/app', repository_id: 4242, repository_owner_id: 77, ref: 'refs/heads/main', actor: 'octocat', workflow: 'deploy' };

describe('an aws target token opens a second stsgate playing AWS STS', () => {
  let workload: TestIssuer;
  let a: TestGateway;
  let b: GatewayProcess;
  let standIn: AwsStandIn;
  let dir: string;

  beforeAll(async () => {
    workload = await TestIssuer.start();
    const { port, publicUrl } = await reservePublicUrl();
    const targets = parseConfig(
      stringify({
        public_url: publicUrl,
        account_id: ACCOUNT_ID,
        dev: { allow_insecure_http: true },
        targets: [
          {
            name: 'aws-prod',
            kind: 'aws',
            subject: 'repo:{claims.repository_id}:ref:{claims.ref}',
            algorithm: 'RS256',
            aws: { principal_tags: { repo: '{claims.repository}', actor: '{claims.actor}' }, transitive_tag_keys: ['repo'], source_identity: '{claims.actor}' },
          },
          { name: 'vault', kind: 'vault', audience: 'https://vault.example.com' },
        ],
      }),
      {},
      process.cwd(),
    ).targets!;
    a = await startTestGateway({
      issuers: [issuerFor(workload)],
      port,
      keyAlgorithms: ['RS256', 'ES256'],
      roles: standardRoles().map((role) => (role.name === 'reader' ? { ...role, targets: ['aws-prod', 'vault'] } : role)),
      config: { publicUrl, targets },
    });

    // B: AWS's side. It trusts A by discovery for the audience AWS uses, and its rule is the trust policy:
    // the exact `sub` of acme/app's main branch, and the repo session tag.
    standIn = await startAwsStandIn(publicUrl);
    b = standIn.process;
    dir = standIn.dir;
  }, 60_000);

  afterAll(async () => {
    await b?.stop();
    await a?.close();
    await workload?.close();
  });

  /** Step one: the workload's own JWT for A's token for `target`. */
  async function targetToken(claims: Record<string, unknown> = JOB, target = 'aws-prod'): Promise<string> {
    const res = await postForm(`${a.url}/oauth2/token`, {
      grant_type: TOKEN_EXCHANGE_GRANT,
      subject_token: await workload.mint(claims),
      subject_token_type: TOKEN_TYPE.jwt,
      requested_token_type: TOKEN_TYPE.idToken,
      audience: target,
    });
    const body = (await res.json()) as Record<string, string>;
    expect(res.status, JSON.stringify(body)).toBe(200);
    return body.access_token!;
  }

  const sts = (credentials?: { AccessKeyId?: string; SecretAccessKey?: string; SessionToken?: string }) =>
    new STSClient({
      endpoint: b.url,
      region: 'us-east-1',
      maxAttempts: 1,
      credentials: credentials ? { accessKeyId: credentials.AccessKeyId!, secretAccessKey: credentials.SecretAccessKey!, sessionToken: credentials.SessionToken! } : { accessKeyId: 'unused', secretAccessKey: 'unused' },
    });

  it('the AWS SDK: AssumeRoleWithWebIdentity at B with A\'s token, then GetCallerIdentity; B saw the tag', async () => {
    const token = await targetToken();
    expect(decodeJwt(token).iss).toBe(a.config.publicUrl);
    const assumed = await sts().send(new AssumeRoleWithWebIdentityCommand({ RoleArn: B_ROLE, RoleSessionName: 'gha-deploy', WebIdentityToken: token }));
    expect(assumed.Credentials?.AccessKeyId).toMatch(/^ASIA/);
    expect(assumed.SubjectFromWebIdentityToken).toBe('repo:4242:ref:refs/heads/main');
    const who = await sts(assumed.Credentials).send(new GetCallerIdentityCommand({}));
    expect(who.Arn).toBe(`arn:aws:sts::${ACCOUNT_ID}:assumed-role/prod-deployer/gha-deploy`);
    // B copied the repo tag from A's tags claim into its own session, as AWS does with principal tags.
    expect(decodeJwt((await exchangeAtB(token)).access_token!).repo).toBe('acme/app');
  });

  it('the AWS SDK\'s web-identity provider reads the token from a file (AWS_WEB_IDENTITY_TOKEN_FILE)', async () => {
    const tokenFile = join(dir, 'web-identity-token');
    await writeFile(tokenFile, await targetToken(), { mode: 0o600 });
    const provider = fromTokenFile({ webIdentityTokenFile: tokenFile, roleArn: B_ROLE, roleSessionName: 'from-file', clientConfig: { endpoint: b.url, region: 'us-east-1', maxAttempts: 1 } });
    const client = new STSClient({ endpoint: b.url, region: 'us-east-1', credentials: provider, maxAttempts: 1 });
    expect((await client.send(new GetCallerIdentityCommand({}))).Arn).toBe(`arn:aws:sts::${ACCOUNT_ID}:assumed-role/prod-deployer/from-file`);
  });

  it.skipIf(!existsSync(AWS))('the AWS CLI: assume-role-with-web-identity, then get-caller-identity', async () => {
    const env = { PATH: '/usr/bin:/bin', HOME: '/nonexistent', AWS_CONFIG_FILE: '/dev/null', AWS_SHARED_CREDENTIALS_FILE: '/dev/null', AWS_MAX_ATTEMPTS: '1' };
    const cli = async (args: string[], extra: Record<string, string> = {}) =>
      JSON.parse((await run(AWS, [...args, '--endpoint-url', b.url, '--region', 'us-east-1', '--output', 'json'], { env: { ...env, ...extra }, timeout: 60_000 })).stdout) as Record<string, any>;
    const assumed = await cli(['sts', 'assume-role-with-web-identity', '--role-arn', B_ROLE, '--role-session-name', 'aws-cli', '--web-identity-token', await targetToken(), '--no-sign-request']);
    const creds = assumed.Credentials as Record<string, string>;
    const who = await cli(['sts', 'get-caller-identity'], { AWS_ACCESS_KEY_ID: creds.AccessKeyId!, AWS_SECRET_ACCESS_KEY: creds.SecretAccessKey!, AWS_SESSION_TOKEN: creds.SessionToken! });
    expect(who.Arn).toBe(`arn:aws:sts::${ACCOUNT_ID}:assumed-role/prod-deployer/aws-cli`);
  }, 90_000);

  it('B refuses: tags that do not match its rule, a token for another target, A\'s own access token', async () => {
    const refusedBy = async (token: string) => {
      try {
        await sts().send(new AssumeRoleWithWebIdentityCommand({ RoleArn: B_ROLE, RoleSessionName: 'refused', WebIdentityToken: token }));
      } catch (err) {
        return (err as Error).name;
      }
      return 'granted';
    };
    // Another acme repository: A grants it the target (reader), with its own tags; B's rule does not match them.
    expect(await refusedBy(await targetToken({ ...JOB, repository: 'acme/other', repository_id: 5151 }))).toBe('AccessDenied');
    // A token for Vault: its audience is not the one B trusts A for.
    expect(await refusedBy(await targetToken(JOB, 'vault'))).toBe('InvalidIdentityTokenException');
    // A's access token: typed at+jwt, with the role's audiences; never what B takes.
    const session = await postForm(`${a.url}/oauth2/token`, { grant_type: TOKEN_EXCHANGE_GRANT, subject_token: await workload.mint(JOB), subject_token_type: TOKEN_TYPE.jwt, audience: 'deployer' });
    expect(await refusedBy(((await session.json()) as Record<string, string>).access_token!)).toBe('InvalidIdentityTokenException');
  });

  /** RFC 8693 at B with A's target token, to read the access token B issued. */
  async function exchangeAtB(token: string): Promise<Record<string, string>> {
    const res = await postForm(`${b.url}/oauth2/token`, { grant_type: TOKEN_EXCHANGE_GRANT, subject_token: token, subject_token_type: TOKEN_TYPE.jwt, audience: 'prod-deployer' });
    expect(res.status).toBe(200);
    return (await res.json()) as Record<string, string>;
  }
});
