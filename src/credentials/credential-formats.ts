/**
 * Every shape a credential set is handed out in, in one module: the AWS STS `<Credentials>` XML element,
 * AWS `credential_process` JSON, the RFC 8693 token response, the `/v1/credentials` answer, shell `export`
 * lines and the account page's outputs. A new output, or a new member of the credential set, is a change
 * here only. Pure (no I/O), so both the HTTP layer and the `stsgate` command import it.
 */
import type { CredentialSet, Role } from '../domain/types.js';
import { xmlElement } from '../errors/serialize.js';
import type { BrokeredAccessToken, BrokeredCredentials } from './broker.js';
import type { TargetToken } from './target-tokens.js';

/** A credential set in AWS `credential_process` shape (Version 1). */
export interface ProcessCredentials {
  Version: 1;
  AccessKeyId: string;
  SecretAccessKey: string;
  SessionToken: string;
  /** ISO 8601. */
  Expiration: string;
}

/** AWS keys as every output takes them: stsgate's own credential set, or a broker's real AWS credentials. */
type AwsKeys = Pick<CredentialSet, 'accessKeyId' | 'secretAccessKey' | 'sessionToken' | 'expiresAt'>;

/** The `<Credentials>` element of an STS `AssumeRole*` result (AWS STS API reference, `Credentials` data type). */
export function awsCredentialsXml(set: AwsKeys): string {
  return (
    '<Credentials>' +
    xmlElement('AccessKeyId', set.accessKeyId) +
    xmlElement('SecretAccessKey', set.secretAccessKey) +
    xmlElement('SessionToken', set.sessionToken) +
    xmlElement('Expiration', awsTimestamp(set.expiresAt)) +
    '</Credentials>'
  );
}

/** AWS writes timestamps without milliseconds. */
function awsTimestamp(date: Date): string {
  const iso = date.toISOString();
  // `YYYY-MM-DDTHH:mm:ss.sssZ`; an expanded year (beyond 9999) keeps the general form.
  return iso.length === 24 ? `${iso.slice(0, 19)}Z` : iso.replace(/\.\d{3}Z$/, 'Z');
}

/** The AWS keys in AWS `credential_process` shape: exactly its five members. */
export function credentialProcessJson(set: AwsKeys): ProcessCredentials {
  return {
    Version: 1,
    AccessKeyId: set.accessKeyId,
    SecretAccessKey: set.secretAccessKey,
    SessionToken: set.sessionToken,
    Expiration: set.expiresAt.toISOString(),
  };
}

/**
 * Exactly the `credential_process` members of an answer (the gateway's `access_token` and role details
 * stay out), or undefined when the answer lacks one or has one of the wrong type.
 */
export function readCredentialProcessJson(body: unknown): ProcessCredentials | undefined {
  if (body === null || typeof body !== 'object') return undefined;
  const { Version, AccessKeyId, SecretAccessKey, SessionToken, Expiration } = body as Record<string, unknown>;
  if (Version !== 1 || typeof AccessKeyId !== 'string' || typeof SecretAccessKey !== 'string' || typeof SessionToken !== 'string' || typeof Expiration !== 'string' || Number.isNaN(Date.parse(Expiration))) {
    return undefined;
  }
  return { Version, AccessKeyId, SecretAccessKey, SessionToken, Expiration };
}

/**
 * The RFC 8693 §2.2.1 token exchange response: the access token, its type, lifetime and scope, plus the
 * role and the AWS keys of the same set (`aws_credentials`, credential_process shape).
 */
export function tokenExchangeJson(set: CredentialSet, role: Pick<Role, 'name'>, issuedTokenType: string, nowMs: number = Date.now()) {
  return {
    access_token: set.accessToken,
    issued_token_type: issuedTokenType,
    token_type: 'Bearer',
    expires_in: Math.max(0, Math.floor((set.expiresAt.getTime() - nowMs) / 1000)),
    scope: set.session.scopes.join(' '),
    role: role.name,
    aws_credentials: credentialProcessJson(set),
  };
}

/** RFC 8693 §2.2.1 for a target token: not an access token for stsgate, so `token_type` is `N_A`. */
export function targetTokenExchangeJson(minted: TargetToken, issuedTokenType: string, nowMs: number = Date.now()) {
  return {
    access_token: minted.token,
    issued_token_type: issuedTokenType,
    token_type: 'N_A',
    expires_in: Math.max(0, Math.floor((minted.expiresAt.getTime() - nowMs) / 1000)),
  };
}

/**
 * RFC 8693 §2.2.1 for a broker target. AWS: the real AWS credentials as `aws_credentials`
 * (credential_process shape), and their session token as the issued token (not an access token for
 * stsgate: `N_A`). GCP and Azure: the cloud's OAuth access token, a bearer token for its APIs.
 */
export function brokeredExchangeJson(credentials: BrokeredCredentials, target: string, nowMs: number = Date.now()) {
  if (credentials.cloud !== 'aws') return { ...accessTokenJson(credentials, nowMs), issued_token_type: 'urn:ietf:params:oauth:token-type:access_token', target };
  return {
    access_token: credentials.sessionToken,
    issued_token_type: 'urn:ietf:params:aws:token-type:session-token',
    token_type: 'N_A',
    expires_in: Math.max(0, Math.floor((credentials.expiresAt.getTime() - nowMs) / 1000)),
    target,
    aws_credentials: credentialProcessJson(credentials),
  };
}

/** A GCP or Azure access token as an OAuth token response (RFC 6749 §5.1), with its absolute expiry and its cloud. */
function accessTokenJson(credentials: BrokeredAccessToken, nowMs: number) {
  return {
    access_token: credentials.accessToken,
    token_type: 'Bearer',
    expires_in: Math.max(0, Math.floor((credentials.expiresAt.getTime() - nowMs) / 1000)),
    expires_at: credentials.expiresAt.toISOString(),
    scope: credentials.scopes.join(' '),
    cloud: credentials.cloud,
  };
}

/**
 * `GET /v1/credentials?target=`: AWS keys in `credential_process` shape (so the answer works as one), or a
 * GCP or Azure access token as an OAuth token response; with the target and role either way.
 */
export function brokeredCredentialsJson(credentials: BrokeredCredentials, target: string, role: string, nowMs: number = Date.now()) {
  if (credentials.cloud === 'aws') return { ...credentialProcessJson(credentials), cloud: 'aws', target, role };
  return { ...accessTokenJson(credentials, nowMs), target, role };
}

/**
 * A broker target's credentials as the account page shows them: AWS `export` lines; for GCP the
 * variables gcloud (`CLOUDSDK_AUTH_ACCESS_TOKEN`) and Terraform's Google provider (`GOOGLE_OAUTH_ACCESS_TOKEN`)
 * read; for Azure the bearer token itself.
 */
export function brokeredPageText(credentials: BrokeredCredentials): string {
  if (credentials.cloud === 'aws') return awsShellExports(credentials);
  if (credentials.cloud === 'gcp') return [`export CLOUDSDK_AUTH_ACCESS_TOKEN=${shellQuote(credentials.accessToken)}`, `export GOOGLE_OAUTH_ACCESS_TOKEN=${shellQuote(credentials.accessToken)}`].join('\n');
  return credentials.accessToken;
}

/** `GET /v1/targets/<name>/token`: the token for one target and when it ends. */
export function targetTokenJson(minted: TargetToken, nowMs: number = Date.now()) {
  return {
    target: minted.target.name,
    kind: minted.target.kind,
    token: minted.token,
    token_type: 'N_A',
    expires_at: minted.expiresAt.toISOString(),
    expires_in: Math.max(0, Math.floor((minted.expiresAt.getTime() - nowMs) / 1000)),
  };
}

/** `GET /v1/credentials`: AWS `credential_process` JSON (so the answer works as one) plus `access_token` and the role. */
export function sessionCredentialsJson(set: CredentialSet, role: Pick<Role, 'name' | 'arn'>) {
  return {
    ...credentialProcessJson(set),
    access_token: set.accessToken,
    role: role.name,
    role_arn: role.arn,
    scope: set.session.scopes.join(' '),
  };
}

/** POSIX shell `export` lines for the AWS SDKs and CLI (`AWS_*`) and for the access token. */
export function shellExports(set: CredentialSet): string {
  return `${awsShellExports(set)}\nexport STSGATE_ACCESS_TOKEN=${shellQuote(set.accessToken)}`;
}

/** POSIX shell `export` lines of AWS keys alone (a broker target's real AWS credentials). */
export function awsShellExports(keys: AwsKeys): string {
  return [
    `export AWS_ACCESS_KEY_ID=${shellQuote(keys.accessKeyId)}`,
    `export AWS_SECRET_ACCESS_KEY=${shellQuote(keys.secretAccessKey)}`,
    `export AWS_SESSION_TOKEN=${shellQuote(keys.sessionToken)}`,
  ].join('\n');
}

/** POSIX shell single quotes: everything literal; a `'` becomes `'\''`. */
function shellQuote(value: string): string {
  return /^[A-Za-z0-9_./+=:-]+$/.test(value) ? value : `'${value.replace(/'/g, `'\\''`)}'`;
}

/**
 * The region an AWS profile for the gateway names. The SDKs need one to sign a request; the gateway's
 * SigV4 check accepts whichever region a request is signed for, so any would do.
 */
export const GATEWAY_PROFILE_REGION = 'us-east-1';

/**
 * An `~/.aws/config` profile for one role: the AWS CLI and SDKs run `stsgate credentials` for keys
 * (`credential_process`, refreshed as they expire) and send STS calls to the gateway, the only STS that
 * knows its keys: a `services` section's `sts` `endpoint_url` (AWS SDKs and Tools Reference Guide,
 * "Service-specific endpoints"). The section is named after the role, so profiles for several roles can
 * be pasted into one file without a duplicate section. Role names hold IAM characters only
 * (`[\w+=,.@-]`), so the command line needs no quoting.
 */
export function awsConfigProfile(role: string, gatewayUrl: string): string {
  return [
    `[profile ${role}]`,
    `credential_process = stsgate credentials --role ${role} --gateway ${gatewayUrl}`,
    `region = ${GATEWAY_PROFILE_REGION}`,
    `services = stsgate-${role}`,
    '',
    `[services stsgate-${role}]`,
    'sts =',
    `  endpoint_url = ${gatewayUrl}`,
  ].join('\n');
}

/** One output the account page shows for a credential set, with a copy button. */
export interface PageOutput {
  /** The element id (also what the copy button copies). */
  id: string;
  /** The heading; a part in backticks is shown as code. */
  heading: string;
  /** The copy button's label. */
  copyLabel: string;
  render(set: CredentialSet): string;
}

/** What the account page shows for a credential set, in order. */
export const PAGE_OUTPUTS: readonly PageOutput[] = [
  { id: 'shell', heading: 'Shell', copyLabel: 'Copy the export lines', render: shellExports },
  { id: 'json', heading: 'JSON (AWS `credential_process`)', copyLabel: 'Copy the JSON', render: (set) => JSON.stringify(credentialProcessJson(set), null, 2) },
];
