/**
 * A second `stsgate serve` process playing AWS STS for the cloud tests (issues 12 and 13): it trusts the
 * gateway under test as an OIDC issuer by discovery, for AWS's audience `sts.amazonaws.com`, and its one
 * rule is an IAM trust policy: the exact `sub` of acme/app's main branch and the repo session tag. Its
 * role `prod-deployer` copies the tag into its own session, as AWS does with principal tags.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { ACCOUNT_ID, freePort } from './common.js';
import { makeTempDir, sharedKeys, startGatewayProcess, type GatewayProcess } from './gateway-process.js';

/** The role the stand-in grants, as AWS names it. */
export const STAND_IN_ROLE_ARN = `arn:aws:iam::${ACCOUNT_ID}:role/prod-deployer`;

export interface AwsStandIn {
  process: GatewayProcess;
  url: string;
  dir: string;
  /** AssumeRoleWithWebIdentity calls it answered (granted or refused), from its audit log. */
  calls(): Record<string, unknown>[];
}

export async function startAwsStandIn(issuerUrl: string, subject = 'repo:4242:ref:refs/heads/main'): Promise<AwsStandIn> {
  const dir = makeTempDir('cloud');
  const keys = await sharedKeys(dir);
  const port = await freePort();
  const file = join(dir, 'aws.yaml');
  await writeFile(
    file,
    stringify({
      public_url: `http://127.0.0.1:${port}`,
      listen: { host: '127.0.0.1', port },
      admin: { listen: { port: await freePort() } },
      signing: { algorithm: 'ES256', keys_file: keys.keysFile },
      credentials: { encryption_key: keys.encryptionKey },
      account_id: ACCOUNT_ID,
      dev: { allow_insecure_http: true },
      // calls() reads this process's audit log right after each answer: each line written before its response.
      log: { sync: true },
      issuers: [{ id: 'stsgate-a', issuer: issuerUrl, audiences: ['sts.amazonaws.com'] }],
      roles: [{ name: 'prod-deployer', scopes: ['deploy'], audiences: ['aws.example.com'], session_tags: { repo: 'claims.https://aws\\.amazon\\.com/tags.principal_tags.repo.0' } }],
      rules: [
        {
          name: 'acme/app main, as an IAM trust policy would say it',
          match: {
            source: 'stsgate-a',
            all: [
              { claim: 'sub', equals: subject },
              { claim: 'https://aws\\.amazon\\.com/tags.principal_tags.repo', contains: 'acme/app' },
            ],
          },
          roles: ['prod-deployer'],
        },
      ],
    }),
    { mode: 0o600 },
  );
  const process = await startGatewayProcess({ file, port, adminPort: 0 });
  return {
    process,
    url: process.url,
    dir,
    calls: () => process.logs().filter((line) => line.action === 'AssumeRoleWithWebIdentity' && (line.event === 'issued' || line.event === 'denied')),
  };
}
