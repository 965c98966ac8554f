/**
 * `stsgate credentials --target NAME` (issue 13): after `stsgate login`, a broker target's real AWS
 * credentials as `credential_process` JSON, which the unmodified AWS SDK reads (`fromProcess` with a
 * profile), from the browser/terminal session through the rules; cached in the config folder like role
 * credentials, forgotten at logout. AWS is a loopback stand-in that records each call.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fromProcess } from '@aws-sdk/credential-providers';
import { ExternalAccountClient } from 'google-auth-library';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { parseConfig } from '../../src/config/load.js';
import { cliCommandLine, runCliToEnd } from '../support/cli-process.js';
import { ACCOUNT_ID } from '../support/common.js';
import { redisStoreConfig, standardRoles } from '../support/gateway.js';
import { startLoginEnvironment, type LoginEnvironment } from '../support/login-environment.js';
import { StsFaultServer } from '../support/sts-fault-server.js';
import { GcpStandIn } from '../support/cloud-stand-ins.js';
import { terminalLoginAs } from '../support/terminal-login.js';
import { TestBrowser } from '../support/browser.js';
import { loginAs } from '../support/browser-login.js';

const GCP_PROVIDER = 'projects/123456789/locations/global/workloadIdentityPools/people/providers/stsgate';
const GCP_SA = 'developer@acme-dev.iam.gserviceaccount.com';

describe('stsgate credentials --target', () => {
  let env: LoginEnvironment;
  let aws: StsFaultServer;
  let gcp: GcpStandIn;
  const home = mkdtempSync(join(tmpdir(), 'stsgate-broker-cli-'));
  const person = { HOME: home, XDG_CONFIG_HOME: join(home, 'config'), NODE_ENV: undefined };

  beforeAll(async () => {
    aws = await StsFaultServer.start();
    // GCP trusts the gateway as its issuer, once the gateway has started (below).
    gcp = await GcpStandIn.start('http://not-started.invalid', { provider: GCP_PROVIDER, serviceAccounts: { [GCP_SA]: ['google:1001'] } });
    const targets = parseConfig(
      stringify({
        public_url: 'https://sts.example.com',
        account_id: ACCOUNT_ID,
        dev: { allow_insecure_http: true },
        targets: [
          { name: 'aws-dev', kind: 'aws', subject: '{source}:{subject}', broker: { role_arn: `arn:aws:iam::${ACCOUNT_ID}:role/dev`, endpoint: aws.url, session_name: '{claims.email}' } },
          { name: 'gcp-dev', kind: 'gcp', subject: '{source}:{subject}', gcp: { provider: GCP_PROVIDER }, broker: { token_url: `${gcp.url}/v1/token`, iam_credentials_url: gcp.url, service_account: GCP_SA } },
        ],
      }),
      {},
      process.cwd(),
    ).targets!;
    env = await startLoginEnvironment({ store: redisStoreConfig(), gateway: { roles: standardRoles().map((role) => (role.name === 'reader' ? { ...role, targets: ['aws-dev', 'gcp-dev'] } : role)), targets } });
    gcp.issuer = gcp.reach = env.gateway.url;
  }, 60_000);
  afterAll(async () => {
    await env?.close();
    await aws?.close();
    await gcp?.close();
    rmSync(home, { recursive: true, force: true });
  });

  it('prints the real credentials as credential_process JSON that the AWS SDK reads, cached until near their end', async () => {
    expect(await terminalLoginAs(env, person, 'alice')).toBe(0);
    const printed = await runCliToEnd(['credentials', '--target', 'aws-dev'], person);
    expect(printed.code, printed.stderr).toBe(0);
    const credentials = JSON.parse(printed.stdout) as Record<string, unknown>;
    expect(Object.keys(credentials).sort()).toEqual(['AccessKeyId', 'Expiration', 'SecretAccessKey', 'SessionToken', 'Version']);
    expect(aws.requests).toHaveLength(1);
    expect(aws.requests[0]!.get('RoleSessionName')).toBe('alice@acme.com');

    // The AWS SDK, through a profile's credential_process, gets the same keys (from the cache: no new call).
    const configFile = join(home, 'aws-config');
    writeFileSync(configFile, `[profile dev]\ncredential_process = ${[...cliCommandLine(), 'credentials', '--target', 'aws-dev'].join(' ')}\n`);
    const previous = { ...process.env };
    Object.assign(process.env, { AWS_CONFIG_FILE: configFile, HOME: home, XDG_CONFIG_HOME: person.XDG_CONFIG_HOME });
    try {
      const resolved = await fromProcess({ profile: 'dev' })();
      expect(resolved.accessKeyId).toBe(credentials.AccessKeyId);
    } finally {
      process.env = previous;
    }
    expect(aws.requests).toHaveLength(1);
  }, 120_000);

  it('a browser session gets them from /v1/credentials?target= and from the page (as export lines)', async () => {
    const browser = new TestBrowser();
    await loginAs(browser, env.gateway.url, 'google', env.google, 'alice');
    const json = (await (await browser.get(`${env.gateway.url}/v1/credentials?target=aws-dev`)).json()) as Record<string, unknown>;
    expect(json).toMatchObject({ Version: 1, target: 'aws-dev', role: 'reader' });
    expect(json.AccessKeyId).toMatch(/^ASIA/);
    const page = await (await browser.get(`${env.gateway.url}/?target=aws-dev`, { 'sec-fetch-site': 'same-origin' })).text();
    expect(page).toContain('AWS credentials for aws-dev');
    expect(page).toContain(`export AWS_ACCESS_KEY_ID=${json.AccessKeyId as string}`);
  });

  it('refuses --role and --target together, and a target the account may not get', async () => {
    const both = await runCliToEnd(['credentials', '--target', 'aws-dev', '--role', 'reader'], person);
    expect(both).toMatchObject({ code: 1, stdout: '' });
    expect(both.stderr).toContain('give --role or --target, not both');
    const unknown = await runCliToEnd(['credentials', '--target', 'nope'], person);
    expect(unknown).toMatchObject({ code: 1, stdout: '' });
    expect(unknown.stderr).toContain('refused credentials for target nope');
  }, 60_000);

  it('a GCP target: an access token as JSON or alone (--format token), from the page as gcloud export lines', async () => {
    expect(await terminalLoginAs(env, person, 'alice')).toBe(0);
    const printed = await runCliToEnd(['credentials', '--target', 'gcp-dev'], person);
    expect(printed.code, printed.stderr).toBe(0);
    const json = JSON.parse(printed.stdout) as Record<string, any>;
    expect(json).toMatchObject({ token_type: 'Bearer', cloud: 'gcp', target: 'gcp-dev', scope: 'https://www.googleapis.com/auth/cloud-platform' });
    expect(gcp.issued.get(json.access_token)).toMatchObject({ principal: GCP_SA });
    const alone = await runCliToEnd(['credentials', '--target', 'gcp-dev', '--format', 'token'], person);
    expect(alone).toMatchObject({ code: 0, stdout: `${json.access_token}\n` });
    const awsAlone = await runCliToEnd(['credentials', '--target', 'aws-dev', '--format', 'token'], person);
    expect(awsAlone.code).toBe(1);
    expect(awsAlone.stderr).toContain('--format token is for GCP and Azure targets');

    const browser = new TestBrowser();
    await loginAs(browser, env.gateway.url, 'google', env.google, 'alice');
    const page = await (await browser.get(`${env.gateway.url}/?target=gcp-dev`, { 'sec-fetch-site': 'same-origin' })).text();
    expect(page).toContain('GCP access token for gcp-dev');
    expect(page).toContain(`export CLOUDSDK_AUTH_ACCESS_TOKEN=${json.access_token as string}`);
  }, 120_000);

  it("Google's own client runs `stsgate token --format gcp-executable` as an external account's executable and trades the token itself", async () => {
    expect(await terminalLoginAs(env, person, 'alice')).toBe(0);
    const exchanges = gcp.calls('/v1/token').length;
    const previous = { ...process.env };
    // google-auth-library runs executables only when allowed, with the environment of this process.
    Object.assign(process.env, { GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES: '1', HOME: home, XDG_CONFIG_HOME: person.XDG_CONFIG_HOME });
    delete process.env.NODE_ENV;
    try {
      const client = ExternalAccountClient.fromJSON({
        type: 'external_account',
        audience: `//iam.googleapis.com/${GCP_PROVIDER}`,
        subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
        token_url: `${gcp.url}/v1/token`,
        credential_source: { executable: { command: [...cliCommandLine(), 'token', '--target', 'gcp-dev', '--format', 'gcp-executable'].join(' '), timeout_millis: 60_000 } },
      });
      const { token } = await client!.getAccessToken();
      expect(gcp.issued.get(token!)).toMatchObject({ sub: 'google:1001' });
      expect(gcp.calls('/v1/token').length).toBe(exchanges + 1);
    } finally {
      process.env = previous;
    }

    const refused = await runCliToEnd(['token', '--target', 'nope', '--format', 'gcp-executable'], person);
    expect(refused.code).toBe(1);
    expect(JSON.parse(refused.stdout)).toMatchObject({ version: 1, success: false, code: 'STSGATE_TOKEN_REFUSED' });
    expect((await runCliToEnd(['token', '--target', 'gcp-dev', '--format', 'yaml'], person)).code).toBe(2);
  }, 120_000);
});
