/**
 * The real AWS CLI (Debian's awscli, installed by .ci/run) against stsgate: assume-role-with-web-identity,
 * then get-caller-identity with the returned keys. Skipped, with the reason printed, where /usr/bin/aws
 * is absent.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { useIssuerAndGateway } from '../support/gateway.js';
import { ACCOUNT_ID } from '../support/common.js';

const AWS = '/usr/bin/aws';
const run = promisify(execFile);
const available = existsSync(AWS);
if (!available) console.warn(`skipping the AWS CLI tests: ${AWS} is not installed (apt-get install awscli; .ci/run does)`);

describe.skipIf(!available)('AWS CLI v2 against stsgate', () => {
  const setup = useIssuerAndGateway();

  /** Runs the CLI with no profile, no config file and no credentials but the ones given. */
  async function aws(args: string[], env: Record<string, string> = {}) {
    try {
      const { stdout } = await run(AWS, [...args, '--endpoint-url', setup.gateway.url, '--region', 'us-east-1', '--output', 'json'], {
        env: { PATH: '/usr/bin:/bin', HOME: '/nonexistent', AWS_CONFIG_FILE: '/dev/null', AWS_SHARED_CREDENTIALS_FILE: '/dev/null', AWS_MAX_ATTEMPTS: '1', ...env },
        timeout: 60_000,
      });
      return { ok: true as const, json: JSON.parse(stdout) as Record<string, any> };
    } catch (err) {
      return { ok: false as const, stderr: String((err as { stderr?: string }).stderr) };
    }
  }

  it('assume-role-with-web-identity, then get-caller-identity with the returned keys', async () => {
    const token = await setup.issuer.mint({ repository: 'acme/app', ref: 'refs/heads/main' });
    const assumed = await aws([
      'sts', 'assume-role-with-web-identity',
      '--role-arn', `arn:aws:iam::${ACCOUNT_ID}:role/deployer`,
      '--role-session-name', 'aws-cli',
      '--web-identity-token', token,
      '--no-sign-request',
    ]);
    expect(assumed.ok).toBe(true);
    if (!assumed.ok) return;
    const creds = assumed.json.Credentials as Record<string, string>;
    expect(creds.AccessKeyId).toMatch(/^ASIA/);

    const who = await aws(['sts', 'get-caller-identity'], {
      AWS_ACCESS_KEY_ID: creds.AccessKeyId!,
      AWS_SECRET_ACCESS_KEY: creds.SecretAccessKey!,
      AWS_SESSION_TOKEN: creds.SessionToken!,
    });
    expect(who.ok && who.json.Arn).toBe(`arn:aws:sts::${ACCOUNT_ID}:assumed-role/deployer/aws-cli`);

    const tampered = await aws(['sts', 'get-caller-identity'], {
      AWS_ACCESS_KEY_ID: creds.AccessKeyId!,
      AWS_SECRET_ACCESS_KEY: `x${creds.SecretAccessKey!.slice(1)}`,
      AWS_SESSION_TOKEN: creds.SessionToken!,
    });
    expect(tampered.ok).toBe(false);
    expect(!tampered.ok && tampered.stderr).toContain('SignatureDoesNotMatch');
  });

  it('a denial reads as AWS words it', async () => {
    const token = await setup.issuer.mint({ repository: 'acme/app', ref: 'refs/heads/feature' });
    const denied = await aws([
      'sts', 'assume-role-with-web-identity',
      '--role-arn', `arn:aws:iam::${ACCOUNT_ID}:role/deployer`,
      '--role-session-name', 'aws-cli',
      '--web-identity-token', token,
      '--no-sign-request',
    ]);
    expect(denied.ok).toBe(false);
    expect(!denied.ok && denied.stderr).toContain('An error occurred (AccessDenied) when calling the AssumeRoleWithWebIdentity operation');
  });
});
