/**
 * `stsgate configure` end to end: a person signs in with `stsgate login` against a test gateway, writes an
 * AWS profile into a temporary AWS_CONFIG_FILE that already holds another profile and comments, and the
 * unmodified AWS SDK and the real AWS CLI then reach stsgate with that profile alone: credentials from
 * `stsgate credentials` (credential_process), STS calls sent to the gateway by the services section.
 */
import { execFile, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliCommandLine, REPO_ROOT, runCliToEnd } from '../support/cli-process.js';
import { ACCOUNT_ID } from '../support/common.js';
import { startLoginEnvironment, type LoginEnvironment } from '../support/login-environment.js';
import { terminalLoginAs } from '../support/terminal-login.js';

const run = promisify(execFile);
const AWS = '/usr/bin/aws';
const hasScript = spawnSync('script', ['--version']).status === 0;
if (!hasScript) console.warn('skipping the configure prompt test: script(1) (util-linux) is not installed to give the command a terminal');

let env: LoginEnvironment;
const home = mkdtempSync(join(tmpdir(), 'stsgate-configure-'));
const configHome = join(home, 'config');
const awsConfig = join(home, 'aws', 'config');
const awsCredentials = join(home, 'aws', 'credentials');
/** The person's environment: their own HOME, XDG config folder and AWS files; no AWS keys. */
const person = { HOME: home, XDG_CONFIG_HOME: configHome, AWS_CONFIG_FILE: awsConfig, AWS_SHARED_CREDENTIALS_FILE: awsCredentials, NODE_ENV: undefined };
/** The same for a tool run here: nothing of the test process's own environment but PATH. */
const toolEnv = () => ({ PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home, XDG_CONFIG_HOME: configHome, AWS_CONFIG_FILE: awsConfig, AWS_SHARED_CREDENTIALS_FILE: awsCredentials, AWS_EC2_METADATA_DISABLED: 'true', AWS_MAX_ATTEMPTS: '1' });

const BEFORE = `# the person's own AWS config: this comment stays
[default]
region = eu-west-1 ; so does this one
output = json

# production, by SSO
[profile prod]
sso_session = corp
sso_account_id = 111122223333
sso_role_name = ReadOnly
region = eu-central-1

[sso-session corp]
sso_start_url = https://corp.awsapps.com/start
sso_region = eu-west-1
`;

beforeAll(async () => {
  env = await startLoginEnvironment();
  const { mkdirSync } = await import('node:fs');
  mkdirSync(join(home, 'aws'), { recursive: true });
  writeFileSync(awsConfig, BEFORE);
  writeFileSync(awsCredentials, '');
  expect(await terminalLoginAs(env, person, 'alice')).toBe(0);
});
afterAll(async () => {
  await env?.close();
  rmSync(home, { recursive: true, force: true });
});

const configure = (args: string[]) => runCliToEnd(['configure', ...args], person);
const arn = (role: string) => `arn:aws:sts::${ACCOUNT_ID}:assumed-role/${role}/alice@acme.com`;

describe('stsgate configure', () => {
  it('without a terminal and without --yes: shows the change, writes nothing, exit 2 saying to pass --yes', async () => {
    const result = await configure(['--profile', 'stsgate-dev', '--role', 'deployer']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`+++ ${awsConfig}\n`);
    expect(result.stderr).toContain(`stsgate: not asking without a terminal: pass --yes to write ${awsConfig}`);
    expect(readFileSync(awsConfig, 'utf8')).toBe(BEFORE);
  });

  it('--yes: appends the profile and its services section, the rest of the file unchanged', async () => {
    const result = await configure(['--profile', 'stsgate-dev', '--role', 'reader', '--region', 'eu-west-3', '--yes']);
    expect(result.code).toBe(0);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain('@@ -13,3 +13,12 @@\n [sso-session corp]\n');
    expect(result.stderr).toContain('+services = stsgate-stsgate-dev\n');
    expect(result.stderr).toContain('Wrote profile stsgate-dev');
    const after = readFileSync(awsConfig, 'utf8');
    expect(after.startsWith(`${BEFORE}\n[profile stsgate-dev]\ncredential_process = `)).toBe(true);
    expect(after).toContain(` credentials --role reader --gateway ${env.gateway.url}\nregion = eu-west-3\n`);
    expect(after).toMatch(new RegExp(`\\[services stsgate-stsgate-dev\\]\\nsts =\\n  endpoint_url = ${env.gateway.url}\\n$`));
  });

  it('again for the same profile: replaced in place, not added twice; the same once more changes nothing', async () => {
    expect((await configure(['--profile', 'stsgate-dev', '--role', 'deployer', '--yes'])).code).toBe(0);
    const after = readFileSync(awsConfig, 'utf8');
    expect(after.startsWith(BEFORE)).toBe(true);
    expect(after.match(/^\[profile stsgate-dev\]$/gm)).toHaveLength(1);
    expect(after.match(/^\[services stsgate-stsgate-dev\]$/gm)).toHaveLength(1);
    expect(after).toContain(' credentials --role deployer --gateway ');
    expect(after).toContain('\nregion = us-east-1\n');
    const again = await configure(['--profile', 'stsgate-dev', '--role', 'deployer', '--yes']);
    expect(again).toMatchObject({ code: 0, stderr: `Profile stsgate-dev in ${awsConfig} is already as asked; nothing to change.\n` });
  });

  it.each([
    ['neither --role nor --target', ['--profile', 'x', '--yes'], 'give exactly one of --role and --target'],
    ['both', ['--profile', 'x', '--role', 'a', '--target', 'b', '--yes'], 'give exactly one of --role and --target'],
    ['a profile name with a bracket', ['--profile', 'x]', '--role', 'a', '--yes'], '--profile must be'],
    ['a region that is not one', ['--profile', 'x', '--role', 'a', '--region', 'Frankfurt', '--yes'], '--region must be an AWS region'],
  ])('refuses %s: exit 2, nothing written', async (_what, args, message) => {
    const before = readFileSync(awsConfig, 'utf8');
    const result = await configure(args);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(message);
    expect(readFileSync(awsConfig, 'utf8')).toBe(before);
  });

  it.skipIf(!hasScript)('on a terminal (script(1) gives it one) it asks first: n writes nothing (exit 1), y writes', async () => {
    const before = readFileSync(awsConfig, 'utf8');
    const onTerminal = async (answer: string) => {
      const words = ['configure', '--profile', 'asked', '--role', 'reader'].map((w) => `'${w}'`).join(' ');
      const command = `${cliCommandLine().map((w) => `'${w}'`).join(' ')} ${words}`;
      const child = execFile('script', ['-qec', command, '/dev/null'], { cwd: REPO_ROOT, env: { ...process.env, ...toolEnv(), NODE_ENV: '' }, timeout: 60_000 });
      child.stdin!.end(`${answer}\n`);
      let output = '';
      child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
      const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
      return { code, output };
    };
    const declined = await onTerminal('n');
    expect(declined.output).toContain(`Write these changes to ${awsConfig}? [y/N]`);
    expect(declined.output).toContain('Nothing written.');
    expect(declined.code).toBe(1);
    expect(readFileSync(awsConfig, 'utf8')).toBe(before);
    const accepted = await onTerminal('y');
    expect(accepted.code).toBe(0);
    expect(readFileSync(awsConfig, 'utf8')).toContain('[profile asked]\n');
  });

  it('the unmodified AWS SDK for JavaScript gets stsgate\'s identity with the profile alone (no endpoint, no keys given)', async () => {
    // AWS_PROFILE, not the client's profile option: the SDK reads the configured endpoint of AWS_PROFILE's profile only.
    const script = `
      import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
      const sts = new STSClient({});
      const who = await sts.send(new GetCallerIdentityCommand({}));
      process.stdout.write(JSON.stringify({ arn: who.Arn, region: await sts.config.region() }));`;
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], { cwd: REPO_ROOT, env: { ...toolEnv(), AWS_PROFILE: 'stsgate-dev' }, timeout: 60_000 });
    expect(JSON.parse(stdout)).toEqual({ arn: arn('deployer'), region: 'us-east-1' });
  });
});

/** The AWS CLI version at /usr/bin/aws, or undefined without one. */
async function awsCliVersion(): Promise<[number, number] | undefined> {
  if (!existsSync(AWS)) return undefined;
  const { stdout } = await run(AWS, ['--version'], { env: toolEnv() });
  const match = /aws-cli\/(\d+)\.(\d+)/.exec(stdout);
  return match ? [Number(match[1]), Number(match[2])] : undefined;
}
const version = await awsCliVersion();
// AWS CLI v2.13.0 (July 2023) was the first to read endpoint_url and services sections from the config file.
const readsServiceEndpoints = version !== undefined && (version[0] > 2 || (version[0] === 2 && version[1] >= 13));
if (version === undefined) console.warn(`skipping the AWS CLI part of the configure tests: ${AWS} is not installed (apt-get install awscli)`);
else if (!readsServiceEndpoints) {
  console.warn(`skipping aws sts get-caller-identity --profile without --endpoint-url: ${AWS} is AWS CLI ${version.join('.')}, older than 2.13, which ignores endpoint_url in the config file; the profile's credential_process and region are still checked with it`);
}

describe.skipIf(version === undefined)('stsgate configure with the real AWS CLI', () => {
  const aws = async (args: string[]) => (await run(AWS, [...args, '--profile', 'stsgate-dev', '--output', 'json'], { cwd: REPO_ROOT, env: toolEnv(), timeout: 60_000 })).stdout;

  it('reads the profile: region and credential_process', async () => {
    expect((await aws(['configure', 'get', 'region'])).trim()).toBe('us-east-1');
    expect((await aws(['configure', 'get', 'credential_process'])).trim()).toMatch(new RegExp(` credentials --role deployer --gateway ${env.gateway.url}$`));
  });

  it('runs stsgate credentials as credential_process (the endpoint given, as this CLI cannot read it from the file)', async () => {
    expect(JSON.parse(await aws(['sts', 'get-caller-identity', '--endpoint-url', env.gateway.url])).Arn).toBe(arn('deployer'));
  });

  it.skipIf(!readsServiceEndpoints)('aws sts get-caller-identity --profile alone reaches stsgate', async () => {
    expect(JSON.parse(await aws(['sts', 'get-caller-identity'])).Arn).toBe(arn('deployer'));
  });
});
