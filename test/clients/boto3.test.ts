/**
 * boto3, the AWS SDK for Python (Debian's python3-boto3, installed by .ci/run), unmodified, against
 * stsgate. Skipped, with the reason printed, where it is not installed.
 */
import { execFile, execFileSync } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { useIssuerAndGateway } from '../support/gateway.js';
import { ACCOUNT_ID } from '../support/common.js';

const PYTHON = '/usr/bin/python3';
const SCRIPT = join(import.meta.dirname, 'boto3_roundtrip.py');

function boto3Available(): boolean {
  try {
    execFileSync(PYTHON, ['-c', 'import boto3'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
const available = boto3Available();
if (!available) console.warn(`skipping the boto3 tests: ${PYTHON} cannot import boto3 (apt-get install python3-boto3; .ci/run does)`);

describe.skipIf(!available)('boto3 against stsgate', () => {
  const setup = useIssuerAndGateway();

  it('assume_role_with_web_identity, get_caller_identity signed with the keys, and a tampered secret refused', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'stsgate-boto3-'));
    const tokenFile = join(dir, 'token');
    await writeFile(tokenFile, await setup.issuer.mint({ repository: 'acme/app', ref: 'refs/heads/main' }));
    const { stdout } = await promisify(execFile)(PYTHON, [SCRIPT, setup.gateway.url, `arn:aws:iam::${ACCOUNT_ID}:role/deployer`, tokenFile], {
      env: { PATH: '/usr/bin:/bin', HOME: dir, AWS_CONFIG_FILE: '/dev/null', AWS_SHARED_CREDENTIALS_FILE: '/dev/null' },
      timeout: 60_000,
    });
    const result = JSON.parse(stdout) as Record<string, string | null>;
    expect(result.access_key_id).toMatch(/^ASIA[A-Z2-7]{16}$/);
    expect(result.assumed_arn).toBe(`arn:aws:sts::${ACCOUNT_ID}:assumed-role/deployer/boto3`);
    expect(result.caller_arn).toBe(result.assumed_arn);
    expect(result.account).toBe(ACCOUNT_ID);
    expect(result.tampered_code).toBe('SignatureDoesNotMatch');
  });
});
