/**
 * Targets: relying parties outside stsgate (an AWS account, a GCP workload identity pool, an Azure app,
 * Vault, a Kubernetes API server, any JWT consumer) that trust stsgate as an OIDC issuer, and the claims
 * of the token stsgate mints for each.
 *
 * Everything here is pure: templates are parsed when the configuration loads and rendered at mint time,
 * and every limit a cloud documents is one row of KIND_CONTRACT or of the AWS tag checks below, applied
 * twice: at config time to what is literal, and at mint time to what was rendered. A value that breaks
 * a limit is refused with the target's name and the limit; it is never truncated or dropped, because a
 * token with a shortened `sub` or a missing tag would match the wrong trust policy.
 */
import type { Identity } from '../domain/types.js';
import { MISSING, parseClaimPath, resolveClaim } from './claim-path.js';

export const TARGET_KINDS = ['aws', 'gcp', 'azure', 'vault', 'kubernetes', 'jwt'] as const;
export type TargetKind = (typeof TARGET_KINDS)[number];
/** The algorithms stsgate signs with (config/schema.ts SIGNING_ALGORITHMS; rules/ does not import config/). */
export type TargetAlgorithm = 'ES256' | 'EdDSA' | 'RS256';

/** The JWT `typ` of a target token: what the clouds' own issuers use, and never stsgate's `at+jwt`. */
export const TARGET_TOKEN_TYPE = 'JWT';

/** AWS AssumeRoleWithWebIdentity: the audience AWS's docs and CLIs use for an IAM OIDC provider. */
export const AWS_DEFAULT_AUDIENCE = 'sts.amazonaws.com';
/** Azure workload identity federation: the one audience a federated credential accepts. */
export const AZURE_AUDIENCE = 'api://AzureADTokenExchange';
/** GCP: the default audience of a workload identity pool provider is its full resource name behind this prefix. */
export const GCP_AUDIENCE_PREFIX = 'https://iam.googleapis.com/';

/** One limit a cloud documents for a kind of target. */
export interface KindContract {
  /** Algorithms its verifier accepts. */
  algorithms: readonly TargetAlgorithm[];
  /** Lifetime bounds in seconds, and the default. */
  lifetime: { min: number; max: number; default: number };
  /** The longest `sub`, and whether the cloud counts bytes (UTF-8) or characters. */
  subject: { max: number; unit: 'characters' | 'bytes'; source: string };
  /** The only audience it accepts, when there is exactly one. */
  fixedAudience?: string;
  /** The largest token it takes (characters of the compact JWT). */
  maxTokenLength?: number;
}

/**
 * Per kind, what its verifier documents. AWS: IAM OIDC providers (RS256/384/512, ES256/384/512),
 * AssumeRoleWithWebIdentity's WebIdentityToken of 4..20,000 characters. GCP: workload identity federation
 * (`google.subject` at most 127 bytes; tokens must live less than 48 hours, one hour by default).
 * Azure: federated identity credentials (RS256, audience api://AzureADTokenExchange, subject matched
 * exactly, at most 600 characters). Kubernetes: the API server's OIDC authenticator (`--oidc-signing-algs`,
 * RS256 by default; ES256 with the flag). Vault and generic JWT consumers: whatever stsgate signs.
 */
export const KIND_CONTRACT: Readonly<Record<TargetKind, KindContract>> = {
  aws: { algorithms: ['RS256', 'ES256'], lifetime: { min: 60, max: 43_200, default: 900 }, subject: { max: 255, unit: 'characters', source: 'stsgate' }, maxTokenLength: 20_000 },
  gcp: { algorithms: ['RS256', 'ES256'], lifetime: { min: 60, max: 172_799, default: 3_600 }, subject: { max: 127, unit: 'bytes', source: 'GCP google.subject' } },
  azure: { algorithms: ['RS256'], lifetime: { min: 60, max: 43_200, default: 900 }, subject: { max: 600, unit: 'characters', source: 'Azure federated credentials' }, fixedAudience: AZURE_AUDIENCE },
  vault: { algorithms: ['ES256', 'EdDSA', 'RS256'], lifetime: { min: 60, max: 43_200, default: 900 }, subject: { max: 255, unit: 'characters', source: 'stsgate' } },
  kubernetes: { algorithms: ['RS256', 'ES256'], lifetime: { min: 60, max: 43_200, default: 900 }, subject: { max: 255, unit: 'characters', source: 'stsgate' } },
  jwt: { algorithms: ['ES256', 'EdDSA', 'RS256'], lifetime: { min: 60, max: 43_200, default: 900 }, subject: { max: 255, unit: 'characters', source: 'stsgate' } },
};

/** AWS STS session tags: TagSession and the `https://aws.amazon.com/tags` claim. */
export const AWS_TAG_LIMITS = {
  maxTags: 50,
  maxKeyLength: 128,
  maxValueLength: 256,
  /** IAM's tag character set: letters, digits, spaces and _ . : / = + - @ (Unicode letters, numbers and separators). */
  characters: /^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$/u,
  /** AWS reserves the `aws:` prefix. */
  reservedPrefix: /^aws:/i,
} as const;
/** SourceIdentity: 2..64 characters of [\w+=,.@-], not starting with `aws:`. */
export const AWS_SOURCE_IDENTITY = /^[\w+=,.@-]{2,64}$/;
/** Kubernetes: a username or group name stsgate will put in a token (the API server sets no limit; this keeps tokens small). */
const KUBERNETES_NAME_MAX = 255;
const KUBERNETES_MAX_GROUPS = 100;

/** Claim names a target's `claims:` may not set: the registered ones stsgate fills, and the ones a kind owns. */
export const RESERVED_TARGET_CLAIMS = new Set([
  'iss', 'sub', 'aud', 'exp', 'nbf', 'iat', 'jti', 'typ', 'azp', 'nonce', 'auth_time', 'cnf', 'act', 'scope', 'sid', 'role', 'idp',
  'https://aws.amazon.com/tags', 'https://aws.amazon.com/source_identity', 'username', 'groups',
]);

// ---------------------------------------------------------------------------------------------------
// Templates

/** One piece of a template: literal text, or a placeholder naming a value of the identity. */
export type TemplatePart = { literal: string } | { placeholder: string; from: 'subject' | 'source' | 'role' } | { placeholder: string; from: 'claim'; segments: readonly string[] };

/** A parsed template: `repo:{claims.repository}:ref:{claims.ref}`. */
export interface Template {
  readonly text: string;
  readonly parts: readonly TemplatePart[];
}

/** Parses a template; `{{` and `}}` are literal braces. Returns the fault when it is malformed. */
export function parseTemplate(text: string): Template | { error: string } {
  const parts: TemplatePart[] = [];
  let literal = '';
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if ((ch === '{' || ch === '}') && text[i + 1] === ch) {
      literal += ch;
      i++;
      continue;
    }
    if (ch === '}') return { error: `a lone "}" at offset ${i} (write "}}" for a literal brace)` };
    if (ch !== '{') {
      literal += ch;
      continue;
    }
    const end = text.indexOf('}', i + 1);
    if (end === -1) return { error: `an unclosed "{" at offset ${i}` };
    const name = text.slice(i + 1, end);
    const part = placeholder(name);
    if ('error' in part) return { error: `{${name}}: ${part.error}` };
    if (literal !== '') parts.push({ literal });
    literal = '';
    parts.push(part);
    i = end;
  }
  if (literal !== '') parts.push({ literal });
  return { text, parts };
}

function placeholder(name: string): TemplatePart | { error: string } {
  if (name === 'subject' || name === 'source' || name === 'role') return { placeholder: name, from: name };
  if (name.startsWith('claims.')) {
    const path = parseClaimPath(name.slice('claims.'.length));
    return 'error' in path ? { error: path.error } : { placeholder: name, from: 'claim', segments: path.segments };
  }
  return { error: 'expected subject, source, role or claims.<claim path>' };
}

/** Whether a template has no placeholder (its value is known at config time). */
export function literalValue(template: Template): string | undefined {
  return template.parts.every((part) => 'literal' in part) ? template.parts.map((part) => (part as { literal: string }).literal).join('') : undefined;
}

/** What a template is rendered from: the identity a token is for, and the role that grants the target. */
export interface TemplateInput {
  identity: Identity;
  role: string;
}

/** A value a template could not fill: the mint fails closed, naming it. */
export class TargetProblem extends Error {}

/** The text a template renders to; a placeholder whose value is missing, empty or not a scalar is a TargetProblem. */
export function renderTemplate(template: Template, input: TemplateInput, where: string): string {
  let out = '';
  for (const part of template.parts) {
    if ('literal' in part) {
      out += part.literal;
      continue;
    }
    const value = part.from === 'claim' ? resolveClaim(input.identity.claims, part.segments) : part.from === 'role' ? input.role : input.identity[part.from];
    if (value === MISSING || value === null || value === '' || !['string', 'number', 'boolean'].includes(typeof value)) {
      const found = value === MISSING ? 'missing' : value === '' ? 'empty' : value === null ? 'null' : Array.isArray(value) ? 'a list' : 'not a string, number or boolean';
      throw new TargetProblem(`${where}: {${part.placeholder}} is ${found} for this identity`);
    }
    out += String(value);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Targets

/** A configured target, as the schema's transform produces it. */
export interface TargetSpec {
  readonly name: string;
  readonly kind: TargetKind;
  readonly audience: string;
  readonly subject: Template;
  readonly lifetimeSeconds: number;
  readonly algorithm: TargetAlgorithm;
  readonly claims: Readonly<Record<string, Template>>;
  readonly aws?: {
    readonly principalTags: Readonly<Record<string, Template>>;
    readonly transitiveTagKeys: readonly string[];
    readonly sourceIdentity?: Template;
  };
  readonly kubernetes?: {
    readonly username?: Template;
    readonly groups: readonly Template[];
    /** A claim path whose value is a string or a list of strings. */
    readonly groupsFrom?: { readonly path: string; readonly segments: readonly string[] };
  };
  /** stsgate trades the target token for the cloud's own credentials (aws, gcp and azure targets; `cloud` is the target's kind). */
  readonly broker?: BrokerSpec;
}

/** Where and how a target's token is traded for the cloud's own credentials. */
export type BrokerSpec = AwsBrokerSpec | GcpBrokerSpec | AzureBrokerSpec;

/** What every broker has: the longest one call to the cloud may take. */
interface BrokerBase {
  readonly timeoutSeconds: number;
}

/** An `aws` target's broker: AssumeRoleWithWebIdentity. */
export interface AwsBrokerSpec extends BrokerBase {
  readonly cloud: 'aws';
  readonly roleArn: string;
  readonly region: string;
  /** The STS endpoint (a regional or private endpoint); absent: the SDK's for the region. */
  readonly endpoint?: string;
  /** RoleSessionName (rendered, then checked against AWS's 2..64 of [\w+=,.@-]). */
  readonly sessionName: Template;
  /** The longest session asked of AWS; never more than the role's max_session_seconds. */
  readonly durationSeconds: number;
  /** A session policy every request gets (JSON text), and managed policy ARNs. */
  readonly policy?: string;
  readonly policyArns: readonly string[];
}

/**
 * A `gcp` target's broker: the STS token exchange (workload identity federation) with the target token
 * as the subject token, then, with a service account, `generateAccessToken` (impersonation); optionally
 * downscoped by a credential access boundary.
 */
export interface GcpBrokerSpec extends BrokerBase {
  readonly cloud: 'gcp';
  /** The STS `audience`: `//iam.googleapis.com/<provider resource name>`. */
  readonly audience: string;
  readonly tokenUrl: string;
  /** The service account to impersonate (its email); absent: the federated token itself. */
  readonly serviceAccount?: string;
  /** The IAM Credentials API's base URL (impersonation). */
  readonly iamCredentialsUrl: string;
  /** The OAuth scopes the token carries; a request may ask for fewer. */
  readonly scopes: readonly string[];
  /** The longest token asked for (impersonation's `lifetime`); never more than the role's max_session_seconds. */
  readonly lifetimeSeconds: number;
  /** A credential access boundary (its `accessBoundary` JSON) every token gets. */
  readonly accessBoundary?: GcpAccessBoundary;
}

/** GCP's Credential Access Boundary: 1..10 rules, each a resource and the roles available on it. */
export interface GcpAccessBoundary {
  readonly accessBoundary: {
    readonly accessBoundaryRules: readonly {
      readonly availableResource: string;
      readonly availablePermissions: readonly string[];
      readonly availabilityCondition?: { readonly expression: string; readonly title?: string; readonly description?: string };
    }[];
  };
}

/** An `azure` target's broker: the client credentials grant with the target token as the client assertion (ClientAssertionCredential). */
export interface AzureBrokerSpec extends BrokerBase {
  readonly cloud: 'azure';
  readonly tenantId: string;
  readonly clientId: string;
  /** Microsoft Entra ID's host (a sovereign cloud's, or a private one's). */
  readonly authorityHost: string;
  /** The scopes a request may ask for, one at a time (`<resource>/.default`); the first by default. */
  readonly scopes: readonly string[];
  /** PEM CA certificates that sign the authority host's TLS certificate (a private authority); absent: the system's. */
  readonly ca?: string;
}

/** AWS RoleSessionName: 2..64 characters of [\w+=,.@-]. */
export const AWS_ROLE_SESSION_NAME = /^[\w+=,.@-]{2,64}$/;

/** The length of `value` as the cloud counts it. */
function measure(value: string, unit: 'characters' | 'bytes'): number {
  return unit === 'bytes' ? new TextEncoder().encode(value).length : [...value].length;
}

/** The problem with a `sub` for this kind, or undefined. */
export function subjectProblem(kind: TargetKind, sub: string): string | undefined {
  const { max, unit, source } = KIND_CONTRACT[kind].subject;
  const length = measure(sub, unit);
  if (length === 0) return 'sub is empty';
  return length > max ? `sub is ${length} ${unit}, ${source} allows at most ${max}` : undefined;
}

/** The problem with an AWS session tag key, or undefined. */
export function awsTagKeyProblem(key: string): string | undefined {
  const length = [...key].length;
  if (length < 1 || length > AWS_TAG_LIMITS.maxKeyLength) return `tag key ${JSON.stringify(key.slice(0, 40))} is ${length} characters, AWS allows 1..${AWS_TAG_LIMITS.maxKeyLength}`;
  if (!AWS_TAG_LIMITS.characters.test(key)) return `tag key ${JSON.stringify(key)} has a character AWS refuses (letters, digits, spaces and _ . : / = + - @ only)`;
  if (AWS_TAG_LIMITS.reservedPrefix.test(key)) return `tag key ${JSON.stringify(key)} starts with aws:, which AWS reserves`;
  return undefined;
}

/** The problem with an AWS session tag value, or undefined. */
export function awsTagValueProblem(key: string, value: string): string | undefined {
  const length = [...value].length;
  if (length > AWS_TAG_LIMITS.maxValueLength) return `tag ${key} is ${length} characters, AWS allows at most ${AWS_TAG_LIMITS.maxValueLength}`;
  if (!AWS_TAG_LIMITS.characters.test(value)) return `tag ${key} has a character AWS refuses (letters, digits, spaces and _ . : / = + - @ only)`;
  return undefined;
}

/** The problem with an AWS SourceIdentity, or undefined. */
export function awsSourceIdentityProblem(value: string): string | undefined {
  if (!AWS_SOURCE_IDENTITY.test(value)) return `source_identity ${JSON.stringify(value.slice(0, 70))} is not 2..64 characters of letters, digits and _+=,.@-, as AWS requires`;
  if (AWS_TAG_LIMITS.reservedPrefix.test(value)) return 'source_identity starts with aws:, which AWS reserves';
  return undefined;
}

/** The problem with the AWS tags of a target (count, keys, transitive keys), or undefined: what config time can know. */
export function awsTagSetProblem(keys: readonly string[], transitive: readonly string[]): string | undefined {
  if (keys.length > AWS_TAG_LIMITS.maxTags) return `${keys.length} principal tags, AWS allows at most ${AWS_TAG_LIMITS.maxTags}`;
  const seen = new Set<string>();
  for (const key of keys) {
    const problem = awsTagKeyProblem(key);
    if (problem) return problem;
    // AWS treats tag keys case-insensitively: two that differ only by case would be one tag.
    if (seen.has(key.toLowerCase())) return `tag key ${JSON.stringify(key)} is given twice (AWS compares tag keys ignoring case)`;
    seen.add(key.toLowerCase());
  }
  const stray = transitive.find((key) => !keys.includes(key));
  return stray === undefined ? undefined : `transitive tag key ${JSON.stringify(stray)} is not one of the principal tags`;
}

/** The problem with a Kubernetes username or group, or undefined. */
export function kubernetesNameProblem(what: 'username' | 'group', value: string): string | undefined {
  const length = [...value].length;
  return length < 1 || length > KUBERNETES_NAME_MAX ? `${what} is ${length} characters, expected 1..${KUBERNETES_NAME_MAX}` : undefined;
}

/**
 * The claims a target token carries for `input`, besides `iss`, `iat`, `nbf`, `exp` and `jti` (the mint
 * adds those): `sub`, `aud`, the configured extra claims and the kind's own. Throws TargetProblem naming
 * the target and the limit when a value cannot be filled or breaks one.
 */
export function targetClaims(target: TargetSpec, input: TemplateInput): Record<string, unknown> {
  const at = (what: string) => `target ${target.name}: ${what}`;
  const check = (problem: string | undefined) => {
    if (problem !== undefined) throw new TargetProblem(at(problem));
  };
  const sub = renderTemplate(target.subject, input, at('subject'));
  check(subjectProblem(target.kind, sub));
  const claims: Record<string, unknown> = { sub, aud: target.audience };
  for (const [name, template] of Object.entries(target.claims)) claims[name] = renderTemplate(template, input, at(`claims.${name}`));
  if (target.aws) Object.assign(claims, awsClaims(target.aws, input, at, check));
  if (target.kubernetes) Object.assign(claims, kubernetesClaims(target.kubernetes, sub, input, at, check));
  return claims;
}

function awsClaims(aws: NonNullable<TargetSpec['aws']>, input: TemplateInput, at: (what: string) => string, check: (problem: string | undefined) => void): Record<string, unknown> {
  const keys = Object.keys(aws.principalTags);
  check(awsTagSetProblem(keys, aws.transitiveTagKeys));
  const principalTags: Record<string, [string]> = {};
  for (const key of keys) {
    const value = renderTemplate(aws.principalTags[key]!, input, at(`aws.principal_tags.${key}`));
    check(awsTagValueProblem(key, value));
    // AWS's shape: each principal tag's value is a list of exactly one string.
    principalTags[key] = [value];
  }
  const out: Record<string, unknown> = {};
  if (keys.length > 0) {
    out['https://aws.amazon.com/tags'] = { principal_tags: principalTags, ...(aws.transitiveTagKeys.length > 0 ? { transitive_tag_keys: [...aws.transitiveTagKeys] } : {}) };
  }
  if (aws.sourceIdentity) {
    const sourceIdentity = renderTemplate(aws.sourceIdentity, input, at('aws.source_identity'));
    check(awsSourceIdentityProblem(sourceIdentity));
    out['https://aws.amazon.com/source_identity'] = sourceIdentity;
  }
  return out;
}

function kubernetesClaims(
  kubernetes: NonNullable<TargetSpec['kubernetes']>,
  sub: string,
  input: TemplateInput,
  at: (what: string) => string,
  check: (problem: string | undefined) => void,
): Record<string, unknown> {
  const username = kubernetes.username ? renderTemplate(kubernetes.username, input, at('kubernetes.username')) : sub;
  check(kubernetesNameProblem('username', username));
  const groups = kubernetes.groups.map((template, i) => renderTemplate(template, input, at(`kubernetes.groups[${i}]`)));
  if (kubernetes.groupsFrom) groups.push(...groupsFromClaim(kubernetes.groupsFrom, input.identity, at));
  const unique = [...new Set(groups)];
  if (unique.length > KUBERNETES_MAX_GROUPS) throw new TargetProblem(at(`${unique.length} groups, at most ${KUBERNETES_MAX_GROUPS}`));
  for (const group of unique) check(kubernetesNameProblem('group', group));
  return { username, ...(unique.length > 0 ? { groups: unique } : {}) };
}

/** Groups from a claim holding a string or a list of strings; absent: none (a person in no team has no groups). */
function groupsFromClaim(from: { path: string; segments: readonly string[] }, identity: Identity, at: (what: string) => string): string[] {
  const value = resolveClaim(identity.claims, from.segments);
  if (value === MISSING) return [];
  if (typeof value === 'string') return [value];
  if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return value as string[];
  throw new TargetProblem(at(`kubernetes.groups_from: claims.${from.path} is not a string or a list of strings`));
}

/** The problem with a minted token's size for this kind, or undefined. */
export function tokenLengthProblem(target: Pick<TargetSpec, 'name' | 'kind'>, token: string): string | undefined {
  const max = KIND_CONTRACT[target.kind].maxTokenLength;
  return max !== undefined && token.length > max ? `target ${target.name}: the token is ${token.length} characters, AWS takes at most ${max}` : undefined;
}

/** The extra claim names every target adds, for discovery's `claims_supported`. */
export function targetClaimNames(targets: readonly TargetSpec[]): string[] {
  const names = new Set<string>();
  for (const target of targets) {
    for (const name of Object.keys(target.claims)) names.add(name);
    if (target.aws && Object.keys(target.aws.principalTags).length > 0) names.add('https://aws.amazon.com/tags');
    if (target.aws?.sourceIdentity) names.add('https://aws.amazon.com/source_identity');
    if (target.kubernetes) names.add('username').add('groups');
  }
  return [...names];
}

/**
 * `stsgate explain`: which targets an identity may get (through which granted role), and for each the
 * exact claims its token would carry (iss, iat, nbf, exp and jti are added at mint time), or the limit
 * the identity's values break. Answers "Not authorized to perform sts:AssumeRoleWithWebIdentity" before
 * the cloud is involved: the cloud's trust policy must match these `sub`, `aud` and tags.
 */
export function explainTargets(targets: readonly TargetSpec[], grantedRoles: readonly { name: string; targets: readonly string[] }[], identity: Identity, publicUrl: string): string[] {
  if (targets.length === 0) return [];
  const lines = ['targets:'];
  const granted = new Map<string, string>();
  for (const role of grantedRoles) for (const name of role.targets) if (!granted.has(name)) granted.set(name, role.name);
  for (const target of targets) {
    const role = granted.get(target.name);
    if (role === undefined) continue;
    const header = `  ${target.name} (${target.kind}, ${target.algorithm}, via role ${role}, lives ${target.lifetimeSeconds} s at most)`;
    try {
      const claims = { iss: publicUrl, ...targetClaims(target, { identity, role }) };
      lines.push(`${header}: a token would carry`);
      for (const line of JSON.stringify(claims, null, 2).split('\n')) lines.push(`    ${line}`);
    } catch (err) {
      if (!(err instanceof TargetProblem)) throw err;
      lines.push(`${header}: REFUSED, ${err.message}`);
    }
  }
  const others = targets.filter((target) => !granted.has(target.name)).map((target) => target.name);
  if (granted.size === 0) lines.push('  none: no granted role lists a target');
  if (others.length > 0) lines.push(`  not granted: ${others.join(', ')}`);
  return lines;
}
