/**
 * The credential output formats (src/credentials/credential-formats.ts), each from one credential set.
 * End-to-end checks (the AWS SDK reading the XML and the credential_process JSON, the page in Chromium)
 * are in test/http/sts-sdk.test.ts, test/terminal/cli.test.ts and test/browser/chromium.test.ts.
 */
import { describe, expect, it } from 'vitest';
import {
  awsCredentialsXml,
  credentialProcessJson,
  PAGE_OUTPUTS,
  readCredentialProcessJson,
  sessionCredentialsJson,
  shellExports,
  tokenExchangeJson,
} from '../../src/credentials/credential-formats.js';
import type { CredentialSet, SessionInfo } from '../../src/domain/types.js';

const EXPIRES = new Date('2031-02-03T04:05:06.789Z');
const set = {
  sessionId: 'ABCDEFGHIJKLMNOP',
  accessToken: 'eyJhbGciOiJFUzI1NiJ9.e30.sig',
  accessKeyId: 'ASIAABCDEFGHIJKLMNOP',
  secretAccessKey: "abc/def+ghi'jkl<&>",
  sessionToken: 'token&<"more">',
  issuedAt: new Date(EXPIRES.getTime() - 3_600_000),
  expiresAt: EXPIRES,
  session: { scopes: ['deploy:write', 'logs:read'] } as unknown as SessionInfo,
  cached: false,
} satisfies CredentialSet;

const PROCESS_JSON = {
  Version: 1,
  AccessKeyId: 'ASIAABCDEFGHIJKLMNOP',
  SecretAccessKey: "abc/def+ghi'jkl<&>",
  SessionToken: 'token&<"more">',
  Expiration: '2031-02-03T04:05:06.789Z',
};

describe('credential output formats', () => {
  it('AWS STS XML: the Credentials element, escaped, Expiration without milliseconds as AWS writes it', () => {
    expect(awsCredentialsXml(set)).toBe(
      '<Credentials><AccessKeyId>ASIAABCDEFGHIJKLMNOP</AccessKeyId><SecretAccessKey>abc/def+ghi&apos;jkl&lt;&amp;&gt;</SecretAccessKey>' +
        '<SessionToken>token&amp;&lt;&quot;more&quot;&gt;</SessionToken><Expiration>2031-02-03T04:05:06Z</Expiration></Credentials>',
    );
  });

  it('credential_process JSON: exactly its five members, in order', () => {
    expect(JSON.stringify(credentialProcessJson(set))).toBe(JSON.stringify(PROCESS_JSON));
  });

  it('RFC 8693 token response: access token, issued type, Bearer, seconds left, scope, role and the AWS keys', () => {
    const body = tokenExchangeJson(set, { name: 'deployer' }, 'urn:ietf:params:oauth:token-type:jwt', EXPIRES.getTime() - 1_500);
    expect(JSON.stringify(body)).toBe(
      JSON.stringify({
        access_token: set.accessToken,
        issued_token_type: 'urn:ietf:params:oauth:token-type:jwt',
        token_type: 'Bearer',
        expires_in: 1,
        scope: 'deploy:write logs:read',
        role: 'deployer',
        aws_credentials: PROCESS_JSON,
      }),
    );
  });

  it('RFC 8693 token response: expires_in is never negative', () => {
    expect(tokenExchangeJson(set, { name: 'deployer' }, 'x', EXPIRES.getTime() + 10_000).expires_in).toBe(0);
  });

  it('/v1/credentials: credential_process JSON first, then the access token and the role', () => {
    expect(JSON.stringify(sessionCredentialsJson(set, { name: 'deployer', arn: 'arn:aws:iam::123456789012:role/deployer' }))).toBe(
      JSON.stringify({ ...PROCESS_JSON, access_token: set.accessToken, role: 'deployer', role_arn: 'arn:aws:iam::123456789012:role/deployer', scope: 'deploy:write logs:read' }),
    );
  });

  it('shell exports: POSIX single quotes where a value needs them, a quote inside as \'\\\'\'', () => {
    expect(shellExports(set)).toBe(
      [
        'export AWS_ACCESS_KEY_ID=ASIAABCDEFGHIJKLMNOP',
        "export AWS_SECRET_ACCESS_KEY='abc/def+ghi'\\''jkl<&>'",
        `export AWS_SESSION_TOKEN='token&<"more">'`,
        'export STSGATE_ACCESS_TOKEN=eyJhbGciOiJFUzI1NiJ9.e30.sig',
      ].join('\n'),
    );
  });

  it('the page shows the shell exports, then the credential_process JSON', () => {
    expect(PAGE_OUTPUTS.map((output) => [output.id, output.heading, output.copyLabel, output.render(set)])).toEqual([
      ['shell', 'Shell', 'Copy the export lines', shellExports(set)],
      ['json', 'JSON (AWS `credential_process`)', 'Copy the JSON', JSON.stringify(PROCESS_JSON, null, 2)],
    ]);
  });
});

describe('reading credential_process JSON back (the stsgate command)', () => {
  it('keeps exactly the five members, dropping the rest (access_token, role)', () => {
    expect(readCredentialProcessJson({ ...PROCESS_JSON, access_token: 'secret', role: 'deployer' })).toEqual(PROCESS_JSON);
  });

  it.each([
    ['null', null],
    ['a string', 'text'],
    ['Version 2', { ...PROCESS_JSON, Version: 2 }],
    ['Version "1"', { ...PROCESS_JSON, Version: '1' }],
    ['no AccessKeyId', { ...PROCESS_JSON, AccessKeyId: undefined }],
    ['a numeric SecretAccessKey', { ...PROCESS_JSON, SecretAccessKey: 5 }],
    ['no SessionToken', { ...PROCESS_JSON, SessionToken: undefined }],
    ['an Expiration that is not a time', { ...PROCESS_JSON, Expiration: 'tomorrow' }],
  ])('refuses %s', (_name, body) => {
    expect(readCredentialProcessJson(body)).toBeUndefined();
  });
});
