/**
 * The zod schema of the gateway file (snake_case, as written), and the error map that turns zod issues
 * into `path: what was found, what is allowed`. Unknown keys are problems everywhere, with did-you-mean.
 * Its transforms produce the runtime configuration (camelCase, defaults applied) and `types.ts` infers
 * every config type from it: this file is the one place a setting is declared.
 * Cross-references between sections (role names, source ids) are checked in `consistency.ts`.
 */
import { isIP } from 'node:net';
import { z } from 'zod';
import { parseClaimPath } from '../rules/claim-path.js';
import { ruleSchema } from '../rules/vocabulary.js';
import { closest, custom, found, isMapping, strict, suggestion } from '../util/validation.js';
import { filterTemplateProblem } from '../util/ldap-filter-template.js';
import { isSecretPath } from './problems.js';
import { overridableEndpoints, type ProviderDefinition } from './provider-definitions.js';
import { jwkProblem, printableMember } from '../jwt/jwk-usability.js';
import {
  AWS_DEFAULT_AUDIENCE,
  GCP_AUDIENCE_PREFIX,
  KIND_CONTRACT,
  RESERVED_TARGET_CLAIMS,
  TARGET_KINDS,
  awsSourceIdentityProblem,
  awsTagSetProblem,
  awsTagValueProblem,
  kubernetesNameProblem,
  literalValue,
  parseTemplate,
  subjectProblem,
  type Template,
  type TargetKind,
  type BrokerSpec,
  type TargetSpec,
} from '../rules/target-claims.js';

export const SIGNING_ALGORITHMS = ['ES256', 'EdDSA', 'RS256'] as const;
export type SigningAlgorithm = (typeof SIGNING_ALGORITHMS)[number];
/** Asymmetric only: a shared-secret (HS*) or `none` token could be forged by anyone holding the secret, or by anyone. */
export const ISSUER_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'] as const;
export type IssuerAlgorithm = (typeof ISSUER_ALGORITHMS)[number];

/** How log lines are written: `text` for a person at a terminal, `json` for a collector, `auto` picks by the stream. */
export const LOG_FORMATS = ['auto', 'text', 'json'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/** Session length bounds, as AWS STS allows for role sessions. */
export const MIN_SESSION_SECONDS = 900;
export const MAX_SESSION_SECONDS = 43_200;


const TYPE_NAMES: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  int: 'an integer',
  boolean: 'true or false',
  object: 'a mapping',
  record: 'a mapping',
  array: 'a list',
  null: 'null',
};

/** Per-parse zod error map: every built-in issue becomes `found X, expected Y` (secrets are never echoed). */
export function configErrorMap(issue: z.core.$ZodRawIssue): string | undefined {
  const path = issue.path ?? [];
  const secret = isSecretPath(path);
  const input = issue.input;
  switch (issue.code) {
    case 'invalid_type':
      return `${found(input, secret)}, expected ${TYPE_NAMES[issue.expected] ?? issue.expected}`;
    case 'invalid_value': {
      const allowed = issue.values.map((v) => (typeof v === 'string' ? v : JSON.stringify(v)));
      const guess = typeof input === 'string' ? closest(input, allowed) : undefined;
      const expected = allowed.length === 1 ? allowed[0] : `one of ${allowed.join(', ')}`;
      return `${found(input, secret)}, expected ${expected}${guess === undefined ? '' : `; did you mean ${JSON.stringify(guess)}?`}`;
    }
    case 'too_small': {
      const min = Number(issue.minimum);
      if (issue.origin === 'array' || issue.origin === 'set') {
        return `${Array.isArray(input) && input.length === 0 ? 'found an empty list' : found(input)}, expected at least ${min} item${min === 1 ? '' : 's'}`;
      }
      if (issue.origin === 'string') return min === 1 ? `found an empty string, expected a non-empty string` : `${found(input, secret)}, expected at least ${min} characters`;
      return `${found(input, secret)}, expected at least ${min}`;
    }
    case 'too_big': {
      const max = Number(issue.maximum);
      if (issue.origin === 'array' || issue.origin === 'set') return `found ${Array.isArray(input) ? input.length : 'too many'} items, expected at most ${max}`;
      if (issue.origin === 'string') return `found ${typeof input === 'string' ? input.length : 'too many'} characters, expected at most ${max}`;
      return `${found(input, secret)}, expected at most ${max}`;
    }
    case 'unrecognized_keys':
      return `unknown key${issue.keys.length === 1 ? '' : 's'} ${issue.keys.map((k) => JSON.stringify(k)).join(', ')}`;
    case 'invalid_union':
      return `${found(input, secret)}, which does not fit any allowed form`;
    case 'invalid_format':
      return `${found(input, secret)}, expected ${issue.format}`;
    case 'invalid_key':
    case 'invalid_element':
      return `${found(input, secret)}, which is not allowed here`;
    default:
      return undefined;
  }
}

type CamelCase<S extends string> = S extends `${infer Head}_${infer Tail}` ? `${Head}${Capitalize<CamelCase<Tail>>}` : S;
/** An object type with its snake_case keys in camelCase (optional keys stay optional). */
type CamelKeys<T> = { [K in keyof T as K extends string ? CamelCase<K> : never]: T[K] };

function camelCase(key: string): string {
  return key.replace(/_([a-z])/g, (_, letter: string) => letter.toUpperCase());
}

/**
 * A `strict` mapping whose output is its declared keys in camelCase (`max_session_seconds` ->
 * `maxSessionSeconds`), absent optional keys left out: a section whose runtime shape is a plain rename.
 */
function section<T extends z.ZodRawShape>(shape: T) {
  const keys = Object.keys(shape);
  return strict(shape).transform((value) => {
    const out: Record<string, unknown> = {};
    for (const key of keys) if (value[key] !== undefined) out[camelCase(key)] = value[key];
    return out as CamelKeys<z.output<z.ZodObject<T>>>;
  });
}

/** An integer in min..max. A string of digits is accepted too, so `port: ${PORT}` works after interpolation. */
function integer(min: number, max: number) {
  return custom<number>((value) => {
    const n = typeof value === 'string' && /^[0-9]{1,15}$/.test(value) ? Number(value) : value;
    if (typeof n === 'number' && Number.isInteger(n) && n >= min && n <= max) return { ok: n };
    return { problem: `${found(value)}, expected an integer in ${min}..${max}` };
  });
}

function fraction() {
  return custom<number>((value) =>
    typeof value === 'number' && value >= 0 && value <= 1 ? { ok: value } : { problem: `${found(value)}, expected a number in 0..1` },
  );
}

const nonEmptyString = z.string().min(1);

/** The longest `roles[].description`: a sentence or two for the account page, not documentation. */
export const ROLE_DESCRIPTION_MAX = 200;

/** Defaults of `limits.exchange_per_address_per_minute` and `limits.exchange_per_subject_per_minute`. */
export const DEFAULT_EXCHANGE_LIMITS = { perAddressPerMinute: 600, perSubjectPerMinute: 300 } as const;
/** Defaults of `limits.login_per_address_per_minute` and `limits.pending_logins_per_address`. */
export const DEFAULT_LOGIN_LIMITS = { perAddressPerMinute: 60, pendingPerAddress: 20, passwordPerAddressPerMinute: 20, passwordPerUsernamePerMinute: 10 } as const;

/** Default of `limits.introspection_per_address_per_minute`: a busy resource server behind one address introspecting every call. */
export const DEFAULT_INTROSPECTION_LIMIT = 3_000;

/** How an introspection client authenticates (RFC 8414 names). */
export const INTROSPECTION_AUTH_METHODS = ['client_secret_basic', 'client_secret_post', 'private_key_jwt'] as const;
/** A shared secret shorter than this could be guessed within the rate limit's patience. */
export const MIN_CLIENT_SECRET_LENGTH = 16;

/** More worker processes than this is a typo, not a machine. */
export const MAX_WORKERS = 256;
/** Defaults of `signing.reload_interval_seconds` and `shutdown`, also applied to configurations built in code. */
export const DEFAULT_KEYS_RELOAD_SECONDS = 10;
export const DEFAULT_SHUTDOWN = { delaySeconds: 0, graceSeconds: 10 } as const;
/** Port of the metrics and admin listener (`admin.listen.port`) when the file does not say. */
export const DEFAULT_ADMIN_PORT = 9090;
/** Fewest characters of `admin.token`: 32 random bytes in base64 (`openssl rand -base64 32`) are 44. */
export const MIN_ADMIN_TOKEN_LENGTH = 32;
/** RFC 6750 §2.1: the characters a bearer token (b64token) may hold. */
const BEARER_TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;

/** `admin.token`: a bearer token long enough that guessing it is hopeless; never echoed in a problem. */
const adminTokenSchema = custom<string>((value) =>
  typeof value === 'string' && value.length >= MIN_ADMIN_TOKEN_LENGTH && value.length <= 4_096 && BEARER_TOKEN.test(value)
    ? { ok: value }
    : { problem: `${found(value, true)}, expected a bearer token of ${MIN_ADMIN_TOKEN_LENGTH} to 4096 characters (letters, digits, -._~+/ and trailing =; e.g. openssl rand -base64 32), or token_file: PATH` },
);

/** `workers`: a number of processes sharing the port, or "auto" for one per core. Digits are accepted (`${WORKERS}`). */
const workersSchema = custom<number | 'auto'>((value) => {
  if (value === 'auto') return { ok: 'auto' };
  const n = typeof value === 'string' && /^[0-9]{1,4}$/.test(value) ? Number(value) : value;
  if (typeof n === 'number' && Number.isInteger(n) && n >= 1 && n <= MAX_WORKERS) return { ok: n };
  return { problem: `${found(value)}, expected an integer in 1..${MAX_WORKERS} or "auto" (one per core)` };
});

const ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
/** Issuer and provider ids appear in URLs (`/callback/<id>`) and in `sub` (`<source>:<subject>`). */
const idSchema = custom<string>((value) =>
  typeof value === 'string' && ID.test(value)
    ? { ok: value }
    : { problem: `${found(value)}, expected 1-64 letters, digits, ".", "_" or "-", starting with a letter or digit` },
);

const ROLE_NAME = /^[A-Za-z0-9+=,.@_-]{1,64}$/;
/** Role names end up in ARNs (`arn:aws:iam::<account>:role/<name>`): the characters IAM allows in role names. */
const roleNameSchema = custom<string>((value) =>
  typeof value === 'string' && ROLE_NAME.test(value)
    ? { ok: value }
    : { problem: `${found(value)}, expected 1-64 letters, digits or any of + = , . @ _ -` },
);

const SCOPE = /^[\x21\x23-\x5B\x5D-\x7E]+$/;
/** RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ), since scopes travel space-separated. */
const scopeSchema = custom<string>((value) =>
  typeof value === 'string' && SCOPE.test(value)
    ? { ok: value }
    : { problem: `${found(value)}, expected a scope token (printable ASCII without spaces, " or \\; RFC 6749 §3.3)` },
);

const LOOPBACK_HOSTS = new Set(['localhost', '[::1]']);

function isLoopback(hostname: string): boolean {
  return LOOPBACK_HOSTS.has(hostname) || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(hostname);
}

type UrlKind = 'issuer' | 'jwks_uri' | 'endpoint' | 'public_url';

/**
 * An absolute https URL; plain http only with `dev.allow_insecure_http: true`, or for `public_url` on a
 * loopback host (a local gateway is reachable only from its own machine).
 */
function httpsUrl(kind: UrlKind, allowInsecureHttp: boolean) {
  return custom<string>((value) => {
    const insecureNote =
      kind === 'public_url' ? 'http:// only for loopback hosts or with dev.allow_insecure_http: true' : 'http:// only with dev.allow_insecure_http: true';
    if (typeof value !== 'string') return { problem: `${found(value)}, expected an https:// URL` };
    const url = parsedUrl(value);
    if (!url) return { problem: `${found(value)}, expected an absolute https:// URL` };
    if (url.protocol === 'http:') {
      if (!allowInsecureHttp && !(kind === 'public_url' && isLoopback(url.hostname))) {
        return { problem: `${found(value)}, expected an https:// URL (${insecureNote})` };
      }
    } else if (url.protocol !== 'https:') {
      return { problem: `${found(value)}, expected an https:// URL` };
    }
    if (url.username || url.password) return { problem: `found a URL with credentials, expected none in the URL` };
    // OpenID Connect Discovery 1.0 §3: the issuer is a URL with no query or fragment.
    if (kind !== 'jwks_uri' && kind !== 'endpoint' && (url.search || url.hash || value.includes('#'))) {
      return { problem: `${found(value)}, expected a URL without query or fragment` };
    }
    return { ok: value };
  });
}

/** `value` as an absolute URL, or undefined when it is none (Node 20 has no `URL.parse`). */
function parsedUrl(value: string): URL | undefined {
  try {
    return new URL(value);
  } catch {
    return undefined;
  }
}

const redisUrlSchema = custom<string>((value) => {
  if (typeof value === 'string' && /^rediss?:\/\/[^\s]+$/.test(value) && parsedUrl(value)) return { ok: value };
  // A Redis URL usually embeds a password: never echo it.
  return { problem: `${found(value, true)}, expected a redis:// or rediss:// URL` };
});

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const ENCRYPTION_KEY_BYTES = 32;
const encryptionKeySchema = custom<Buffer>((value) => {
  if (typeof value !== 'string') return { problem: `${found(value, true)}, expected base64 of ${ENCRYPTION_KEY_BYTES} random bytes` };
  const text = value.trim();
  if (!BASE64.test(text)) return { problem: `${found(value, true)} that is not base64, expected base64 of ${ENCRYPTION_KEY_BYTES} random bytes (openssl rand -base64 32)` };
  const key = Buffer.from(text, 'base64');
  if (key.length !== ENCRYPTION_KEY_BYTES) return { problem: `found base64 of ${key.length} bytes, expected base64 of ${ENCRYPTION_KEY_BYTES} bytes (openssl rand -base64 32)` };
  return { ok: key };
});

const hostPortSchema = section({ host: nonEmptyString, port: integer(1, 65_535) });
const prefixSchema = z.string().max(64).default('stsgate:');

const redisSchema = strict({
  url: redisUrlSchema.optional(),
  sentinel: section({
    sentinels: z.array(hostPortSchema).min(1),
    name: nonEmptyString,
    password: z.string().optional(),
    sentinel_password: z.string().optional(),
    db: integer(0, 255).optional(),
  }).optional(),
  cluster: section({ nodes: z.array(hostPortSchema).min(1), password: z.string().optional() }).optional(),
  prefix: prefixSchema,
  command_timeout_ms: integer(1, 60_000).default(1_000),
  tls: z.boolean().optional(),
}).superRefine(
  (value, ctx) => {
    const forms = (['url', 'sentinel', 'cluster'] as const).filter((k) => value[k] !== undefined);
    if (forms.length !== 1) {
      ctx.addIssue({ code: 'custom', path: [], message: `found ${forms.length === 0 ? 'none' : forms.join(' and ')}, expected exactly one of url, sentinel or cluster` });
    }
    if (value.url !== undefined && value.tls !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['tls'], message: `found tls next to url, expected a rediss:// URL for TLS instead` });
    }
  },
  { when: (payload) => isMapping(payload.value) },
).transform((redis) => {
  const common = { prefix: redis.prefix, commandTimeoutMs: redis.command_timeout_ms };
  if (redis.sentinel) return { kind: 'sentinel' as const, ...redis.sentinel, tls: redis.tls ?? false, ...common };
  if (redis.cluster) return { kind: 'cluster' as const, ...redis.cluster, tls: redis.tls ?? false, ...common };
  return { kind: 'standalone' as const, url: redis.url!, ...common };
});

const storeSchema = strict({
  memory: strict({ prefix: prefixSchema }).optional(),
  redis: redisSchema.optional(),
}).superRefine(
  (value, ctx) => {
    const kinds = (['memory', 'redis'] as const).filter((k) => value[k] !== undefined);
    if (kinds.length !== 1) ctx.addIssue({ code: 'custom', path: [], message: `found ${kinds.length === 0 ? 'neither' : 'both'} memory and redis, expected exactly one (or omit store for memory)` });
  },
  { when: (payload) => isMapping(payload.value) },
)
  .optional()
  // No store section: the in-memory store (one process only).
  .transform((store) => store?.redis ?? { kind: 'memory' as const, prefix: store?.memory?.prefix ?? 'stsgate:' });

const issuerAlgorithmSchema = custom<IssuerAlgorithm>((value) => {
  if (typeof value === 'string' && (ISSUER_ALGORITHMS as readonly string[]).includes(value)) return { ok: value as IssuerAlgorithm };
  const allowed = `one of ${ISSUER_ALGORITHMS.join(', ')}`;
  if (typeof value === 'string' && (/^HS/i.test(value) || value.toLowerCase() === 'none')) {
    return { problem: `${found(value)}, expected ${allowed}; symmetric (HS*) and "none" algorithms are never accepted` };
  }
  const guess = typeof value === 'string' ? closest(value, ISSUER_ALGORITHMS) : undefined;
  return { problem: `${found(value)}, expected ${allowed}${guess ? `; did you mean ${JSON.stringify(guess)}?` : ''}` };
});

/** An inline JWK: a mapping; whether it may verify tokens is checked with the issuer's algorithms (below). */
const jwkSchema = z.looseObject({});

/** A JWKS given inline (a mapping) or read from `jwks_file` (its JSON text). */
const jwksValueSchema = custom<{ keys: Record<string, unknown>[] }>((value) => {
  let jwks = value;
  if (typeof value === 'string') {
    try {
      jwks = JSON.parse(value);
    } catch {
      return { problem: 'found text that is not JSON, expected a JWKS: {"keys": [...]}' };
    }
  }
  if (!isMapping(jwks) || !Array.isArray(jwks.keys) || jwks.keys.length === 0 || !jwks.keys.every(isMapping)) {
    return { problem: `${typeof value === 'string' ? 'found JSON' : found(value)} that is not a JWKS, expected {"keys": [...]} with at least one key` };
  }
  return { ok: { keys: jwks.keys as Record<string, unknown>[] } };
});

/** The introspection endpoint's clients (RFC 7662 §2.1): one authentication method each. */
const introspectionClientSchema = strict({
  id: custom<string>((value) =>
    typeof value === 'string' && /^[\x21-\x7e]{1,128}$/.test(value) && !value.includes(':')
      ? { ok: value }
      : { problem: `${found(value)}, expected a client id of 1-128 printable characters without spaces or ":" (RFC 6749 §2.3.1)` },
  ),
  auth: z.enum(INTROSPECTION_AUTH_METHODS),
  secret: custom<string>((value) =>
    typeof value === 'string' && value.length >= MIN_CLIENT_SECRET_LENGTH
      ? { ok: value }
      : { problem: `${found(value, true)}, expected a secret of at least ${MIN_CLIENT_SECRET_LENGTH} characters` },
  ).optional(),
  jwks: jwksValueSchema.optional(),
}).superRefine(
  (value, ctx) => {
    if (value.auth === 'private_key_jwt') {
      if (value.secret !== undefined) ctx.addIssue({ code: 'custom', path: ['secret'], message: 'found a secret, expected none with auth: private_key_jwt (give jwks or jwks_file)' });
      if (value.jwks === undefined) ctx.addIssue({ code: 'custom', path: ['jwks'], message: 'missing, expected the client\'s public keys (jwks: {keys: [...]} or jwks_file: PATH) for auth: private_key_jwt' });
      const keys: unknown = (value.jwks as { keys?: unknown } | undefined)?.keys;
      if (Array.isArray(keys)) keys.forEach((jwk: unknown, index) => {
        const problem = jwkProblem(jwk, ISSUER_ALGORITHMS);
        if (problem) ctx.addIssue({ code: 'custom', path: ['jwks', 'keys', index], message: `found ${problem.detail}, expected a public signing key` });
      });
    } else if (typeof value.auth === 'string' && (INTROSPECTION_AUTH_METHODS as readonly string[]).includes(value.auth)) {
      if (value.jwks !== undefined) ctx.addIssue({ code: 'custom', path: ['jwks'], message: `found jwks, expected none with auth: ${value.auth} (give secret_file or secret: \${VAR})` });
      if (value.secret === undefined) ctx.addIssue({ code: 'custom', path: ['secret'], message: `missing, expected the client secret (secret_file: PATH, or secret: \${VAR}) for auth: ${value.auth}` });
    }
  },
  { when: (payload) => isMapping(payload.value) },
).transform(
  // A resource server allowed to call `/oauth2/introspect`, and how it authenticates (RFC 7662 §2.1):
  // a shared secret (RFC 6749 §2.3.1) or a JWT signed with its own key (RFC 7523 §2.2).
  ({ id, auth, secret, jwks }) =>
    auth === 'private_key_jwt' ? { id, auth, jwks: { keys: jwks!.keys.map((k) => ({ ...k })) } } : { id, auth, secret: secret! },
);

const introspectionSchema = section({
  clients: z.array(introspectionClientSchema).default([]).superRefine((clients, ctx) => {
    const seen = new Set<string>();
    clients.forEach((client, index) => {
      if (typeof client.id === 'string' && seen.has(client.id)) ctx.addIssue({ code: 'custom', path: [index, 'id'], message: `found ${JSON.stringify(client.id)} again, expected each client id once` });
      seen.add(client.id);
    });
  }),
});

/** What `session_tags` values may name: the identity's source or subject, or a claim. */
const tagSourceSchema = custom<string>((value) => {
  if (value === 'source' || value === 'subject') return { ok: value };
  if (typeof value === 'string' && value.startsWith('claims.') && !('error' in parseClaimPath(value.slice('claims.'.length)))) return { ok: value };
  return { problem: `${found(value)}, expected source, subject or claims.<dot.path>` };
});

/** A template (`repo:{claims.repository}`), parsed now so that a malformed one is a config problem with its path. */
const templateSchema = custom<Template>((value) => {
  if (typeof value !== 'string' || value === '') return { problem: `${found(value)}, expected a template such as "repo:{claims.repository}" (text with {subject}, {source}, {role} or {claims.<path>})` };
  const parsed = parseTemplate(value);
  return 'error' in parsed ? { problem: `found ${JSON.stringify(value)}, which is not a template: ${parsed.error}` } : { ok: parsed };
});

const TARGET_NAME = /^[a-z0-9][a-z0-9_-]{0,63}$/;
/** Target names travel in URLs (`/v1/targets/<name>/token`) and as RFC 8693 `audience` values. */
const targetNameSchema = custom<string>((value) =>
  typeof value === 'string' && TARGET_NAME.test(value) ? { ok: value } : { problem: `${found(value)}, expected 1-64 lowercase letters, digits, "_" or "-", starting with a letter or digit` },
);

/** A GCP workload identity pool provider's resource name. */
const GCP_PROVIDER = /^projects\/[0-9]{1,20}\/locations\/global\/workloadIdentityPools\/[a-z0-9-]{4,32}\/providers\/[a-z0-9-]{4,32}$/;

/**
 * One target: a relying party that trusts stsgate as an OIDC issuer, and the token it gets. Every limit
 * its cloud documents is checked here on what is literal (rules/target-claims.ts: the same functions
 * check the rendered values at mint time), each with the path of the setting that breaks it.
 */
const ROLE_ARN = /^arn:aws[a-z-]*:iam::[0-9]{12}:role\/[\w+=,.@\/-]{1,512}$/;
const POLICY_ARN = /^arn:aws[a-z-]*:iam::(aws|[0-9]{12}):policy\/[\w+=,.@\/-]{1,512}$/;

/** An aws target's broker: where its token is traded for real AWS credentials (AssumeRoleWithWebIdentity). */
function awsBrokerSchema(allowInsecureHttp: boolean) {
  return strict({
    role_arn: custom<string>((value) => (typeof value === 'string' && ROLE_ARN.test(value) ? { ok: value } : { problem: `${found(value)}, expected a role ARN such as arn:aws:iam::123456789012:role/deploy` })),
    region: custom<string>((value) => (typeof value === 'string' && /^[a-z]{2}(-[a-z]+)+-[0-9]$/.test(value) ? { ok: value } : { problem: `${found(value)}, expected an AWS region such as eu-west-1` })).default('us-east-1'),
    endpoint: httpsUrl('endpoint', allowInsecureHttp).optional(),
    session_name: templateSchema.optional(),
    duration_seconds: integer(900, 43_200).default(3_600),
    // AWS: a session policy of at most 2,048 characters (packed), up to 10 managed policy ARNs.
    policy: custom<string>((value) => {
      const text = typeof value === 'string' ? value : isMapping(value) ? JSON.stringify(value) : undefined;
      if (text === undefined) return { problem: `${found(value)}, expected an IAM policy (a mapping or its JSON text)` };
      try {
        if (!isMapping(JSON.parse(text))) throw new Error('not an object');
      } catch {
        return { problem: 'found text that is not a JSON object, expected an IAM policy document' };
      }
      return text.length <= 2_048 ? { ok: text } : { problem: `found a policy of ${text.length} characters, AWS allows at most 2048` };
    }).optional(),
    policy_arns: z.array(custom<string>((value) => (typeof value === 'string' && POLICY_ARN.test(value) ? { ok: value } : { problem: `${found(value)}, expected a managed policy ARN` }))).max(10).default([]),
    // The longest one call to AWS STS may take (the SDK's request timeout); retries come on top, at most two.
    timeout_seconds: integer(1, 60).default(10),
  }).transform((broker) => ({
    cloud: 'aws' as const,
    roleArn: broker.role_arn,
    region: broker.region,
    ...(broker.endpoint !== undefined ? { endpoint: broker.endpoint } : {}),
    sessionName: broker.session_name ?? DEFAULT_SESSION_NAME,
    durationSeconds: broker.duration_seconds,
    ...(broker.policy !== undefined ? { policy: broker.policy } : {}),
    policyArns: broker.policy_arns,
    timeoutSeconds: broker.timeout_seconds,
  }));
}


const GCP_CLOUD_PLATFORM_SCOPE = 'https://www.googleapis.com/auth/cloud-platform';
const GCP_SERVICE_ACCOUNT = /^[a-z][a-z0-9-]{4,28}[a-z0-9]@[a-z0-9][a-z0-9.-]{0,200}\.gserviceaccount\.com$/;
const GCP_SCOPE = /^https:\/\/www\.googleapis\.com\/auth\/[a-z0-9._-]+$/;

/**
 * A gcp target's broker: the STS token exchange against `token_url` with the target token as the subject
 * token (audience: the target's `gcp.provider`), then with `service_account` its `generateAccessToken`.
 * `access_boundary`: a Credential Access Boundary (1..10 rules, each `inRole:` permissions on a resource).
 */
function gcpBrokerSchema(allowInsecureHttp: boolean) {
  const rule = strict({
    available_resource: nonEmptyString,
    available_permissions: z.array(custom<string>((value) => (typeof value === 'string' && /^inRole:roles\/[\w.]+$/.test(value) ? { ok: value } : { problem: `${found(value)}, expected inRole:roles/<role>` }))).min(1),
    availability_condition: strict({ expression: nonEmptyString, title: nonEmptyString.optional(), description: nonEmptyString.optional() }).optional(),
  });
  return strict({
    service_account: custom<string>((value) => (typeof value === 'string' && GCP_SERVICE_ACCOUNT.test(value) ? { ok: value } : { problem: `${found(value)}, expected a service account email such as deploy@my-project.iam.gserviceaccount.com` })).optional(),
    token_url: httpsUrl('endpoint', allowInsecureHttp).default('https://sts.googleapis.com/v1/token'),
    iam_credentials_url: httpsUrl('endpoint', allowInsecureHttp).default('https://iamcredentials.googleapis.com'),
    scopes: z.array(custom<string>((value) => (typeof value === 'string' && GCP_SCOPE.test(value) ? { ok: value } : { problem: `${found(value)}, expected a Google OAuth scope such as ${GCP_CLOUD_PLATFORM_SCOPE}` }))).min(1).default([GCP_CLOUD_PLATFORM_SCOPE]),
    // generateAccessToken: up to one hour, 12 hours where the organization allows it.
    lifetime_seconds: integer(60, 43_200).default(3_600),
    access_boundary: z.array(rule).min(1).max(10).optional(),
    timeout_seconds: integer(1, 60).default(10),
  }).transform((broker) => ({
    cloud: 'gcp' as const,
    tokenUrl: broker.token_url,
    ...(broker.service_account !== undefined ? { serviceAccount: broker.service_account } : {}),
    iamCredentialsUrl: broker.iam_credentials_url.replace(/\/+$/, ''),
    scopes: broker.scopes,
    lifetimeSeconds: broker.lifetime_seconds,
    ...(broker.access_boundary !== undefined
      ? {
          accessBoundary: {
            accessBoundary: {
              accessBoundaryRules: broker.access_boundary.map((r) => ({
                availableResource: r.available_resource,
                availablePermissions: r.available_permissions,
                ...(r.availability_condition ? { availabilityCondition: r.availability_condition } : {}),
              })),
            },
          },
        }
      : {}),
    timeoutSeconds: broker.timeout_seconds,
  }));
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Microsoft Entra ID's authority host: https only (MSAL refuses anything else, as it should). */
const authorityHostSchema = custom<string>((value) => {
  if (typeof value !== 'string' || !URL.canParse(value)) return { problem: `${found(value)}, expected an https:// URL such as https://login.microsoftonline.com` };
  const url = new URL(value);
  if (url.protocol !== 'https:' || url.username || url.password || url.search || url.hash || (url.pathname !== '/' && url.pathname !== '')) {
    return { problem: `${found(value)}, expected an https:// origin such as https://login.microsoftonline.com (no path, query or credentials)` };
  }
  return { ok: url.origin };
});

/** An azure target's broker: Entra ID's client credentials grant with the target token as the client assertion. */
function azureBrokerSchema() {
  return strict({
    tenant_id: custom<string>((value) => (typeof value === 'string' && (UUID.test(value) || /^[a-z0-9-]+(\.[a-z0-9-]+)+$/i.test(value)) ? { ok: value } : { problem: `${found(value)}, expected the tenant's id (a GUID) or its domain name` })),
    client_id: custom<string>((value) => (typeof value === 'string' && UUID.test(value) ? { ok: value } : { problem: `${found(value)}, expected the application (client) id, a GUID` })),
    authority_host: authorityHostSchema.default('https://login.microsoftonline.com'),
    scopes: z.array(custom<string>((value) => (typeof value === 'string' && /^\S+\/\.default$/.test(value) ? { ok: value } : { problem: `${found(value)}, expected a resource's .default scope such as https://management.azure.com/.default` }))).min(1).default(['https://management.azure.com/.default']),
    // PEM certificates (`ca_file: PATH` reads them from a file, as every `<name>_file` setting does).
    ca: custom<string>((value) => (typeof value === 'string' && value.includes('-----BEGIN CERTIFICATE-----') ? { ok: value } : { problem: 'found no PEM certificate, expected the CA certificates that sign the authority host\'s TLS certificate (ca_file: PATH)' })).optional(),
    timeout_seconds: integer(1, 60).default(10),
  }).transform((broker) => ({
    cloud: 'azure' as const,
    tenantId: broker.tenant_id,
    clientId: broker.client_id,
    authorityHost: broker.authority_host,
    scopes: broker.scopes,
    ...(broker.ca !== undefined ? { ca: broker.ca } : {}),
    timeoutSeconds: broker.timeout_seconds,
  }));
}

/** A parsed broker as the runtime takes it: a gcp broker's STS audience is its target's provider. */
function brokerSpec(broker: Omit<BrokerSpec, 'audience'>, gcpProvider: string | undefined): BrokerSpec {
  return (broker.cloud === 'gcp' ? { ...broker, audience: `//iam.googleapis.com/${gcpProvider}` } : broker) as BrokerSpec;
}

/** The broker schema of each kind that has one. */
function brokerSchemas(allowInsecureHttp: boolean) {
  return { aws: awsBrokerSchema(allowInsecureHttp), gcp: gcpBrokerSchema(allowInsecureHttp), azure: azureBrokerSchema() };
}

function targetSchema(allowInsecureHttp: boolean) {
  const brokers = brokerSchemas(allowInsecureHttp);
  return strict({
    name: targetNameSchema,
    kind: z.enum(TARGET_KINDS),
    audience: nonEmptyString.optional(),
    subject: templateSchema.optional(),
    lifetime_seconds: integer(1, 1_000_000).optional(),
    algorithm: z.enum(SIGNING_ALGORITHMS).optional(),
    claims: z.record(nonEmptyString, templateSchema).default({}),
    aws: strict({
      principal_tags: z.record(z.string(), templateSchema).default({}),
      transitive_tag_keys: z.array(z.string()).default([]),
      source_identity: templateSchema.optional(),
    }).optional(),
    gcp: strict({
      provider: custom<string>((value) =>
        typeof value === 'string' && GCP_PROVIDER.test(value)
          ? { ok: value }
          : { problem: `${found(value)}, expected projects/<number>/locations/global/workloadIdentityPools/<pool>/providers/<provider>` },
      ).optional(),
    }).optional(),
    kubernetes: strict({
      username: templateSchema.optional(),
      groups: z.array(templateSchema).max(100).default([]),
      groups_from: tagSourceSchema.optional(),
    }).optional(),
    broker: z.unknown().optional(),
  }).superRefine(
    (target, ctx) => {
      const problem = (path: (string | number)[], message: string) => ctx.addIssue({ code: 'custom', path, message });
      const contract = KIND_CONTRACT[target.kind];
      for (const section of ['aws', 'gcp', 'kubernetes'] as const) {
        if (target[section] !== undefined && target.kind !== section) problem([section], `found a ${section} section on a ${target.kind} target, expected it only with kind: ${section}`);
      }
      if (target.algorithm !== undefined && !contract.algorithms.includes(target.algorithm)) {
        problem(['algorithm'], `found ${target.algorithm}, expected one of ${contract.algorithms.join(', ')} (what a ${target.kind} target's verifier accepts)`);
      }
      const { min, max } = contract.lifetime;
      if (target.lifetime_seconds !== undefined && (target.lifetime_seconds < min || target.lifetime_seconds > max)) {
        problem(['lifetime_seconds'], `found ${target.lifetime_seconds}, expected ${min}..${max} for a ${target.kind} target${target.kind === 'gcp' ? ' (GCP refuses tokens that live 48 hours or more)' : ''}`);
      }
      if (contract.fixedAudience !== undefined && target.audience !== undefined && target.audience !== contract.fixedAudience) {
        problem(['audience'], `found ${JSON.stringify(target.audience)}, expected ${contract.fixedAudience} (the only audience ${target.kind} accepts)`);
      }
      const needsAudience = ['vault', 'kubernetes', 'jwt'].includes(target.kind) || (target.kind === 'gcp' && target.gcp?.provider === undefined);
      if (target.audience === undefined && needsAudience) {
        problem(['audience'], `missing, expected the audience the ${target.kind} side checks${target.kind === 'gcp' ? ' (or gcp.provider, whose resource name is the default audience)' : ''}`);
      }
      const sub = literalOf(target.subject);
      const subProblem = sub === undefined ? undefined : subjectProblem(target.kind, sub);
      if (subProblem) problem(['subject'], `found ${JSON.stringify(sub!.slice(0, 60))}: ${subProblem}`);
      for (const name of Object.keys(target.claims)) {
        if (RESERVED_TARGET_CLAIMS.has(name)) problem(['claims', name], `found the claim name ${JSON.stringify(name)}, which stsgate sets itself, expected another name`);
      }
      if (target.broker !== undefined) {
        const schema = Object.hasOwn(brokers, target.kind) ? brokers[target.kind as keyof typeof brokers] : undefined;
        if (schema === undefined) problem(['broker'], `found a broker on a ${target.kind} target, expected one only on aws, gcp and azure targets`);
        else for (const issue of schema.safeParse(target.broker).error?.issues ?? []) ctx.addIssue({ ...issue, path: ['broker', ...issue.path] } as Parameters<typeof ctx.addIssue>[0]);
        if (target.kind === 'gcp' && target.gcp?.provider === undefined) problem(['gcp', 'provider'], 'missing, expected the workload identity pool provider the broker exchanges the token at');
      }
      if (target.aws) checkAwsTarget(target.aws, problem);
      if (target.kubernetes?.username) {
        const username = literalOf(target.kubernetes.username);
        const usernameProblem = username === undefined ? undefined : kubernetesNameProblem('username', username);
        if (usernameProblem) problem(['kubernetes', 'username'], usernameProblem);
      }
    },
    { when: (payload) => isMapping(payload.value) },
  ).transform((target) => ({ ...target, broker: target.broker === undefined ? undefined : brokerSpec(brokers[target.kind as keyof typeof brokers].parse(target.broker), target.gcp?.provider) }));
}

/** A target's AWS section: tag counts, keys and transitive keys, and what literal values and source_identity break. */
function checkAwsTarget(aws: { principal_tags: Record<string, Template>; transitive_tag_keys: string[]; source_identity?: Template | undefined }, problem: (path: (string | number)[], message: string) => void): void {
  const setProblem = awsTagSetProblem(Object.keys(aws.principal_tags), aws.transitive_tag_keys);
  if (setProblem) problem(['aws', 'principal_tags'], setProblem);
  for (const [key, template] of Object.entries(aws.principal_tags)) {
    const value = literalOf(template);
    const valueProblem = value === undefined ? undefined : awsTagValueProblem(key, value);
    if (valueProblem) problem(['aws', 'principal_tags', key], valueProblem);
  }
  const sourceIdentity = literalOf(aws.source_identity);
  const sourceProblem = sourceIdentity === undefined ? undefined : awsSourceIdentityProblem(sourceIdentity);
  if (sourceProblem) problem(['aws', 'source_identity'], sourceProblem);
}

/**
 * The literal value of a template that parsed, or undefined (placeholders, or a template whose own
 * problem is already reported: refinements run on the partly parsed section too).
 */
function literalOf(template: Template | undefined): string | undefined {
  return template !== undefined && Array.isArray((template as Partial<Template>).parts) ? literalValue(template) : undefined;
}

/** The subject when a target names none: the identity's source and subject, as stsgate's own `sub`. */
const DEFAULT_TARGET_SUBJECT = parseTemplate('{source}:{subject}') as Template;

/** A target as the runtime uses it: defaults of its kind applied, the algorithm resolved against `signing.algorithm`. */
/** RoleSessionName when a broker names none: the subject, which AWS shows in CloudTrail. */
const DEFAULT_SESSION_NAME = parseTemplate('{subject}') as Template;

function targetSpec(target: z.output<ReturnType<typeof targetSchema>>, signingAlgorithm: SigningAlgorithm): TargetSpec {
  const kind: TargetKind = target.kind;
  const contract = KIND_CONTRACT[kind];
  const audience =
    target.audience ??
    contract.fixedAudience ??
    (kind === 'aws' ? AWS_DEFAULT_AUDIENCE : kind === 'gcp' && target.gcp?.provider !== undefined ? `${GCP_AUDIENCE_PREFIX}${target.gcp.provider}` : '');
  const groupsFrom = target.kubernetes?.groups_from;
  return {
    name: target.name,
    kind,
    audience,
    subject: target.subject ?? DEFAULT_TARGET_SUBJECT,
    lifetimeSeconds: target.lifetime_seconds ?? contract.lifetime.default,
    // The gateway's algorithm when this kind's verifier takes it, else the first one it takes (Azure: RS256).
    algorithm: target.algorithm ?? (contract.algorithms.includes(signingAlgorithm) ? signingAlgorithm : contract.algorithms[0]!),
    claims: target.claims,
    ...(target.aws
      ? { aws: { principalTags: target.aws.principal_tags, transitiveTagKeys: target.aws.transitive_tag_keys, ...(target.aws.source_identity ? { sourceIdentity: target.aws.source_identity } : {}) } }
      : {}),
    ...(target.kubernetes
      ? {
          kubernetes: {
            ...(target.kubernetes.username ? { username: target.kubernetes.username } : {}),
            groups: target.kubernetes.groups,
            ...(groupsFrom !== undefined && groupsFrom.startsWith('claims.')
              ? { groupsFrom: { path: groupsFrom.slice('claims.'.length), segments: (parseClaimPath(groupsFrom.slice('claims.'.length)) as { segments: string[] }).segments } }
              : {}),
          },
        }
      : {}),
    ...(target.broker ? { broker: target.broker } : {}),
  };
}

// Passed through untouched (not rebuilt by zod), so claims named `__proto__` stay own properties.
const claimsSchema = custom<Record<string, unknown>>((value) => (isMapping(value) ? { ok: value } : { problem: `${found(value)}, expected a mapping of claims` }));

/** Which parts of a SAML Response must be signed: the Response, the Assertion, or both (the default). */
export const SAML_SIGNED_PARTS = ['both', 'response', 'assertion'] as const;
/** A claim a SAML attribute becomes: a name rules can use; `sub` is always the NameID. */
const SAML_CLAIM = /^[A-Za-z_][A-Za-z0-9_.:-]{0,63}$/;
const samlClaimSchema = custom<string>((value) =>
  typeof value === 'string' && SAML_CLAIM.test(value) && value !== 'sub'
    ? { ok: value }
    : { problem: `${found(value)}, expected a claim name (a letter or _, then letters, digits, _ . : -; not sub, which is always the NameID)` },
);

/**
 * `saml:` of a `use: saml` provider: where the IdP's metadata comes from (a URL, or a file given as
 * `idp_metadata_file`), what stsgate calls itself, which signatures it requires, how attributes become
 * claims, and whether AuthnRequests are signed.
 */
function samlSettingsSchema(allowInsecureHttp: boolean) {
  return strict({
    idp_metadata_url: httpsUrl('endpoint', allowInsecureHttp).optional(),
    // The metadata XML itself: what `idp_metadata_file: PATH` becomes when the loader reads the file.
    idp_metadata: nonEmptyString.optional(),
    // Picks one IdP out of a metadata aggregate (an EntitiesDescriptor); also checked against a single one.
    idp_entity_id: nonEmptyString.optional(),
    entity_id: nonEmptyString.max(1_024).optional(),
    signed: z.enum(SAML_SIGNED_PARTS).default('both'),
    // Claim names are checked below, where the problem can say what a claim name is.
    attributes: z.record(nonEmptyString, nonEmptyString).default({}),
    multi_valued: z.array(samlClaimSchema).default(['groups']),
    allow_idp_initiated: z.boolean().default(false),
    clock_skew_seconds: integer(0, 300).default(60),
    request_signing: strict({
      private_key: custom<string>((value) =>
        typeof value === 'string' && /-----BEGIN (RSA )?PRIVATE KEY-----/.test(value) ? { ok: value } : { problem: `${found(value, true)}, expected a PEM private key (or private_key_file: PATH)` },
      ),
      certificate: custom<string>((value) =>
        typeof value === 'string' && /-----BEGIN CERTIFICATE-----/.test(value) ? { ok: value } : { problem: `${found(value)}, expected a PEM certificate (or certificate_file: PATH)` },
      ),
    }).optional(),
  }).superRefine(
    (value, ctx) => {
      const sources = ['idp_metadata_url', 'idp_metadata'].filter((key) => value[key as keyof typeof value] !== undefined);
      if (sources.length !== 1) {
        ctx.addIssue({ code: 'custom', path: [], message: `found ${sources.length === 0 ? 'no IdP metadata' : 'both idp_metadata_url and idp_metadata'}, expected exactly one of idp_metadata_url: URL or idp_metadata_file: PATH` });
      }
      if (typeof value.idp_metadata === 'string' && !value.idp_metadata.includes('EntityDescriptor')) {
        ctx.addIssue({ code: 'custom', path: ['idp_metadata'], message: 'found text that is not SAML metadata, expected the IdP\'s metadata XML (an EntityDescriptor)' });
      }
      for (const claim of Object.keys(value.attributes ?? {})) {
        if (!SAML_CLAIM.test(claim) || claim === 'sub') ctx.addIssue({ code: 'custom', path: ['attributes', claim], message: `found ${JSON.stringify(claim)}, expected a claim name (a letter or _, then letters, digits, _ . : -; not sub, which is always the NameID)` });
      }
    },
    { when: (payload) => isMapping(payload.value) },
  ).transform((saml) => ({
    ...(saml.idp_metadata_url !== undefined ? { idpMetadataUrl: saml.idp_metadata_url } : {}),
    ...(saml.idp_metadata !== undefined ? { idpMetadata: saml.idp_metadata } : {}),
    ...(saml.idp_entity_id !== undefined ? { idpEntityId: saml.idp_entity_id } : {}),
    /** Default: `<public_url>/saml/<id>/metadata`. */
    ...(saml.entity_id !== undefined ? { entityId: saml.entity_id } : {}),
    signed: saml.signed,
    /** Claim name -> SAML attribute Name. */
    attributes: { ...saml.attributes } as Record<string, string>,
    multiValued: saml.multi_valued,
    allowIdpInitiated: saml.allow_idp_initiated,
    clockSkewSeconds: saml.clock_skew_seconds,
    ...(saml.request_signing !== undefined ? { requestSigning: { privateKey: saml.request_signing.private_key, certificate: saml.request_signing.certificate } } : {}),
  }));
}

/**
 * A browser-login provider: a definition from `providers/` (`use`) and this instance's client, scopes and
 * overrides. Which overrides apply depends on the definition: `issuer` for oidc kinds, the definition's
 * named base URLs (`base_url`, `api_url`, `graph_url`), and any of its endpoints by name.
 */
function providerSchema(allowInsecureHttp: boolean, definitions: ReadonlyMap<string, ProviderDefinition>) {
  const uses = [...definitions.keys()];
  // The one list of URL keys: every named base URL some definition declares.
  const allUrlKeys = [...new Set([...definitions.values()].flatMap((def) => Object.keys(def.urls)))];
  const urlKeys = Object.fromEntries(allUrlKeys.map((key) => [key, httpsUrl('endpoint', allowInsecureHttp).optional()]));
  return strict({
    id: idSchema,
    use: custom<string>((value) =>
      typeof value === 'string' && definitions.has(value)
        ? { ok: value }
        : { problem: `${found(value)}, expected one of ${uses.join(', ')} (a definition in providers/)${typeof value === 'string' && closest(value, uses) ? `; did you mean ${JSON.stringify(closest(value, uses))}?` : ''}` },
    ),
    client_id: custom<string>((value) => (typeof value === 'string' && value !== '' ? { ok: value } : { problem: `${found(value)}, expected the OAuth client id the provider issued` })).optional(),
    client_secret: custom<string>((value) =>
      typeof value === 'string' && value !== '' ? { ok: value } : { problem: `${found(value, true)}, expected the OAuth client secret (or client_secret_file: PATH)` },
    ).optional(),
    scopes: z.array(scopeSchema).min(1).optional(),
    issuer: httpsUrl('issuer', allowInsecureHttp).optional(),
    ...urlKeys,
    endpoints: z.record(nonEmptyString, httpsUrl('endpoint', allowInsecureHttp)).optional(),
    display_name: z.string().min(1).max(64).optional(),
    saml: samlSettingsSchema(allowInsecureHttp).optional(),
  }).superRefine(
    (value, ctx) => {
      const def = typeof value.use === 'string' ? definitions.get(value.use) : undefined;
      if (!def) return;
      if (def.kind === 'saml') {
        // SAML has no OAuth client: the IdP knows stsgate by its entity id and ACS URL.
        for (const key of ['client_id', 'client_secret', 'scopes', 'issuer', 'endpoints'] as const) {
          if (value[key] !== undefined) ctx.addIssue({ code: 'custom', path: [key], message: `found ${key}, expected none for use: ${def.name} (SAML settings go under saml:)` });
        }
        if (value.saml === undefined) ctx.addIssue({ code: 'custom', path: ['saml'], message: `missing, expected the SAML settings of use: ${def.name} (idp_metadata_url or idp_metadata_file, attributes...)` });
        return;
      }
      if (value.saml !== undefined) ctx.addIssue({ code: 'custom', path: ['saml'], message: `found saml settings, expected none for use: ${def.name} (they are for use: saml)` });
      if (value.client_id === undefined) ctx.addIssue({ code: 'custom', path: ['client_id'], message: 'missing, expected the OAuth client id the provider issued' });
      if (value.client_secret === undefined) ctx.addIssue({ code: 'custom', path: ['client_secret'], message: 'missing, expected the OAuth client secret (or client_secret_file: PATH)' });
      if (def.kind === 'oidc') {
        if (value.issuer === undefined && def.issuer === undefined) {
          ctx.addIssue({ code: 'custom', path: ['issuer'], message: `missing, expected the issuer URL to discover (use: ${def.name} has no default issuer)` });
        }
      } else if (value.issuer !== undefined) {
        ctx.addIssue({ code: 'custom', path: ['issuer'], message: `found an issuer, expected none: use: ${def.name} is OAuth 2 without discovery (override its base URLs or endpoints instead)` });
      }
      const ownUrls = Object.keys(def.urls);
      for (const key of allUrlKeys) {
        if (value[key as keyof typeof value] !== undefined && !ownUrls.includes(key)) {
          ctx.addIssue({ code: 'custom', path: [key], message: `found ${key}, expected ${ownUrls.length > 0 ? `only ${ownUrls.join(', ')}` : 'no base URL'} for use: ${def.name}${def.kind === 'oidc' ? ' (set issuer instead)' : ''}` });
        }
      }
      const endpointNames = overridableEndpoints(def);
      for (const name of Object.keys(value.endpoints ?? {})) {
        if (!endpointNames.includes(name)) ctx.addIssue({ code: 'custom', path: ['endpoints', name], message: `unknown endpoint ${JSON.stringify(name)} for use: ${def.name}${suggestion(name, endpointNames, 'endpoints')}` });
      }
    },
    { when: (payload) => isMapping(payload.value) },
  ).transform((provider) => ({
    /** Appears in `/login/<id>`, `/callback/<id>` and as the identity's `source`. */
    id: provider.id,
    /** The definition's name (`providers/<use>.yaml`). */
    use: provider.use,
    /** The OAuth client; empty for use: saml, which has none. */
    clientId: provider.client_id ?? '',
    clientSecret: provider.client_secret ?? '',
    /** use: saml only: the IdP and what its answers must satisfy. */
    ...(provider.saml !== undefined ? { saml: provider.saml } : {}),
    /** Replaces the definition's default scopes when given. */
    ...(provider.scopes !== undefined ? { scopes: provider.scopes } : {}),
    /** oidc kinds: the issuer to discover (replaces the definition's default). */
    ...(provider.issuer !== undefined ? { issuer: provider.issuer } : {}),
    /** Overrides of the definition's named base URLs (`base_url`, `api_url`, `graph_url`). */
    urls: Object.fromEntries(allUrlKeys.flatMap((key) => (typeof provider[key] === 'string' ? [[key, provider[key] as string]] : []))) as Record<string, string>,
    /** Overrides of single endpoints by name (`authorization`, `token`, `userinfo`, `user`...). */
    endpoints: { ...provider.endpoints } as Record<string, string>,
    ...(provider.display_name !== undefined ? { displayName: provider.display_name } : {}),
  }));
}

/** How nested groups are found: not at all, Active Directory's in-chain rule, or level by level. */
export const LDAP_NESTED_MODES = ['none', 'ad', 'search'] as const;
/** Defaults of a `use: ldap` provider's limits. */
export const DEFAULT_LDAP = { connectTimeoutSeconds: 5, timeoutSeconds: 10, maxGroups: 1_000, maxDepth: 5 } as const;

/** An LDAP filter template with these placeholders (each value is RFC 4515-escaped when filled in). */
function ldapFilterSchema(allowed: readonly string[], required: readonly string[]) {
  return custom<string>((value) => {
    if (typeof value !== 'string' || value === '') return { problem: `${found(value)}, expected an LDAP filter such as (uid={username})` };
    const problem = filterTemplateProblem(value, allowed, required);
    return problem === undefined ? { ok: value } : { problem: `${found(value)}: ${problem}` };
  });
}

/** An attribute name (RFC 4512 §2.5: a descriptor or an OID), or `dn` for the entry's DN. */
const ldapAttributeSchema = custom<string>((value) =>
  typeof value === 'string' && /^(?:[A-Za-z][A-Za-z0-9-]{0,63}|[0-9]+(?:\.[0-9]+)+)$/.test(value) ? { ok: value } : { problem: `${found(value)}, expected an attribute name such as uid, mail or sAMAccountName` },
);

/**
 * A `use: ldap` provider: a directory that checks usernames and passwords typed into stsgate's own form.
 * TLS always (ldaps://, or ldap:// with start_tls), unless `dev.allow_insecure_http`.
 */
function ldapProviderSchema(allowInsecureHttp: boolean) {
  return strict({
    id: idSchema,
    use: nonEmptyString,
    display_name: z.string().min(1).max(64).optional(),
    url: custom<string>((value) => {
      const problem = { problem: `${found(value)}, expected ldaps://HOST[:PORT] (or ldap://HOST[:PORT] with start_tls: true)` };
      if (typeof value !== 'string') return problem;
      const url = parsedUrl(value);
      if (!url) return problem;
      if (!['ldap:', 'ldaps:'].includes(url.protocol) || url.hostname === '' || url.username || url.password || url.search || url.hash || !['', '/'].includes(url.pathname)) return problem;
      return { ok: `${url.protocol}//${url.host}` };
    }),
    start_tls: z.boolean().default(false),
    // tls.ca_file: PATH is read into tls.ca (the `<name>_file` rule): the CA that signed the directory's certificate.
    tls: strict({ ca: nonEmptyString.optional(), server_name: nonEmptyString.optional() }).prefault({}),
    bind_dn: custom<string>((value) => (typeof value === 'string' && value.trim() !== '' ? { ok: value } : { problem: `${found(value)}, expected the DN of stsgate's service account` })),
    bind_password: custom<string>((value) =>
      typeof value === 'string' && value !== '' ? { ok: value } : { problem: `${found(value, true)}, expected the service account's password (bind_password: \${VAR} or bind_password_file: PATH)` },
    ),
    connect_timeout_seconds: integer(1, 60).default(DEFAULT_LDAP.connectTimeoutSeconds),
    timeout_seconds: integer(1, 120).default(DEFAULT_LDAP.timeoutSeconds),
    user: strict({
      base_dn: nonEmptyString,
      filter: ldapFilterSchema(['username'], ['username']).default('(uid={username})'),
      id_attribute: ldapAttributeSchema.default('dn'),
      username_attribute: ldapAttributeSchema.default('uid'),
      email_attribute: ldapAttributeSchema.default('mail'),
      name_attribute: ldapAttributeSchema.default('cn'),
    }),
    groups: strict({
      member_of: z.boolean().default(true),
      search: strict({
        base_dn: nonEmptyString,
        filter: ldapFilterSchema(['dn'], ['dn']).default('(member={dn})'),
        name_attribute: ldapAttributeSchema.default('cn'),
      }).optional(),
      nested: z.enum(LDAP_NESTED_MODES).default('none'),
      max_depth: integer(1, 20).default(DEFAULT_LDAP.maxDepth),
      max: integer(1, 10_000).default(DEFAULT_LDAP.maxGroups),
    }).prefault({}),
  }).superRefine(
    (value, ctx) => {
      if (typeof value.url === 'string' && value.url.startsWith('ldaps:') && value.start_tls === true) {
        ctx.addIssue({ code: 'custom', path: ['start_tls'], message: 'found start_tls: true with an ldaps:// URL, expected one of them (ldaps:// is TLS from the first byte)' });
      }
      if (typeof value.url === 'string' && value.url.startsWith('ldap:') && value.start_tls !== true && !allowInsecureHttp) {
        ctx.addIssue({ code: 'custom', path: ['url'], message: `found ${JSON.stringify(value.url)} without start_tls, expected ldaps:// or start_tls: true (passwords would cross the network in clear; plain ldap:// only with dev.allow_insecure_http: true)` });
      }
      const groups = value.groups as { search?: { filter?: unknown }; nested?: unknown } | undefined;
      if (groups && (groups.nested === 'ad' || groups.nested === 'search') && groups.search === undefined) {
        ctx.addIssue({ code: 'custom', path: ['groups', 'search'], message: `missing, expected a group search (base_dn, filter) with nested: ${String(groups.nested)}` });
      }
      if (groups?.nested === 'ad' && typeof groups.search?.filter === 'string' && !/\([A-Za-z][A-Za-z0-9-]*=\{dn\}\)/.test(groups.search.filter)) {
        ctx.addIssue({ code: 'custom', path: ['groups', 'search', 'filter'], message: 'expected an assertion such as (member={dn}), which nested: ad turns into the in-chain rule' });
      }
    },
    { when: (payload) => isMapping(payload.value) },
  ).transform((provider) => ({
    /** Appears in `/login/<id>`, `/login/<id>/password`, `/callback/<id>` and as the identity's `source`. */
    id: provider.id,
    use: provider.use,
    ...(provider.display_name !== undefined ? { displayName: provider.display_name } : {}),
    ldap: {
      url: provider.url,
      startTls: provider.start_tls,
      ...(provider.tls.ca !== undefined ? { ca: provider.tls.ca } : {}),
      ...(provider.tls.server_name !== undefined ? { serverName: provider.tls.server_name } : {}),
      bindDn: provider.bind_dn,
      bindPassword: provider.bind_password,
      connectTimeoutMs: provider.connect_timeout_seconds * 1_000,
      timeoutMs: provider.timeout_seconds * 1_000,
      user: {
        baseDn: provider.user.base_dn,
        filter: provider.user.filter,
        idAttribute: provider.user.id_attribute,
        usernameAttribute: provider.user.username_attribute,
        emailAttribute: provider.user.email_attribute,
        nameAttribute: provider.user.name_attribute,
      },
      groups: {
        memberOf: provider.groups.member_of,
        ...(provider.groups.search !== undefined ? { search: { baseDn: provider.groups.search.base_dn, filter: provider.groups.search.filter, nameAttribute: provider.groups.search.name_attribute } } : {}),
        nested: provider.groups.nested,
        maxDepth: provider.groups.max_depth,
        max: provider.groups.max,
      },
    },
  }));
}

/**
 * One entry of `providers:`: a directory (`use:` a definition of kind ldap) or an OAuth, OpenID Connect or SAML
 * provider, each validated by its own schema, so that each is told only about its own keys.
 */
function providerEntrySchema(allowInsecureHttp: boolean, definitions: ReadonlyMap<string, ProviderDefinition>) {
  const oauth = providerSchema(allowInsecureHttp, definitions);
  const ldap = ldapProviderSchema(allowInsecureHttp);
  type Entry = z.output<typeof oauth> | z.output<typeof ldap>;
  return z.unknown().transform((value, ctx): Entry => {
    const use = isMapping(value) ? value.use : undefined;
    const isLdap = typeof use === 'string' && definitions.get(use)?.kind === 'ldap';
    const result = (isLdap ? ldap : oauth).safeParse(value, { error: configErrorMap });
    if (result.success) return result.data;
    for (const issue of result.error.issues) ctx.addIssue({ code: 'custom', path: issue.path, message: issue.message });
    return z.NEVER;
  });
}


/**
 * The scopes an OpenID Provider client may be allowed (`clients[].scopes`), each with the claims it
 * releases (OIDC Core §5.4, plus stsgate's own `groups` and `roles`). `offline_access` releases none: it
 * asks for a refresh token (OIDC Core §11).
 */
export const CLIENT_SCOPE_CLAIMS = {
  openid: ['sub'],
  email: ['email', 'email_verified'],
  profile: ['name', 'preferred_username'],
  groups: ['groups'],
  roles: ['roles'],
  offline_access: [],
} as const satisfies Record<string, readonly string[]>;
export type ClientScope = keyof typeof CLIENT_SCOPE_CLAIMS;
/** The claims a client may be allowed to see besides `sub` (which every client sees). */
export const CLIENT_CLAIMS = ['email', 'email_verified', 'name', 'preferred_username', 'groups', 'roles'] as const;
export type ClientClaim = (typeof CLIENT_CLAIMS)[number];
/** Grant types a client may list: the short names of RFC 6749 §4.1 and §6, and RFC 8628's device code. */
export const CLIENT_GRANT_TYPES = ['authorization_code', 'refresh_token', 'device_code'] as const;
export type ClientGrantType = (typeof CLIENT_GRANT_TYPES)[number];
/** How a confidential client authenticates at the token endpoint (RFC 6749 §2.3.1). */
export const CLIENT_AUTH_METHODS = ['client_secret_basic', 'client_secret_post'] as const;
/** Defaults of `clients[].lifetimes` (seconds); the refresh token's default is the browser session's length. */
export const DEFAULT_CLIENT_LIFETIMES = { accessTokenSeconds: 600, idTokenSeconds: 600 } as const;

/**
 * A client's redirect URI (RFC 6749 §3.1.2): absolute, no fragment, https, or http on a loopback host
 * (RFC 8252 §7.3, a command's local listener), or any http with `dev.allow_insecure_http`. Compared
 * exactly, never as a prefix.
 */
function redirectUriSchema(allowInsecureHttp: boolean) {
  return custom<string>((value) => {
    const problem = { problem: `${found(value)}, expected an absolute https URL without a fragment (http only on a loopback host, or with dev.allow_insecure_http: true), compared exactly` };
    if (typeof value !== 'string' || value.length > 2_048 || value.includes('#')) return problem;
    const url = parsedUrl(value);
    if (!url) return problem;
    if (url.username !== '' || url.password !== '') return problem;
    if (url.protocol === 'https:' || (url.protocol === 'http:' && (allowInsecureHttp || isLoopback(url.hostname)))) return { ok: value };
    return problem;
  });
}

const CLIENT_ID = /^[A-Za-z0-9][A-Za-z0-9._~-]{0,127}$/;

/**
 * `clients:` (stsgate as an OpenID Provider): one application that signs people in through stsgate
 * (Grafana, Argo CD, Vault, kubelogin...). A confidential client has a secret; a public one has none and
 * must use PKCE (RFC 9700 §2.1.1).
 */
function clientSchema(allowInsecureHttp: boolean) {
  return strict({
    id: custom<string>((value) =>
      typeof value === 'string' && CLIENT_ID.test(value)
        ? { ok: value }
        : { problem: `${found(value)}, expected a client id of 1-128 letters, digits, ".", "_", "~" or "-", starting with a letter or digit` },
    ),
    name: z.string().min(1).max(64).optional(),
    type: z.enum(['confidential', 'public']).default('confidential'),
    secret: custom<string>((value) =>
      typeof value === 'string' && value.length >= MIN_CLIENT_SECRET_LENGTH
        ? { ok: value }
        : { problem: `${found(value, true)}, expected a secret of at least ${MIN_CLIENT_SECRET_LENGTH} characters` },
    ).optional(),
    auth_method: z.enum(CLIENT_AUTH_METHODS).optional(),
    redirect_uris: z.array(redirectUriSchema(allowInsecureHttp)).max(32).default([]),
    post_logout_redirect_uris: z.array(redirectUriSchema(allowInsecureHttp)).max(32).default([]),
    grant_types: z.array(z.enum(CLIENT_GRANT_TYPES)).min(1).default(['authorization_code', 'refresh_token']),
    scopes: z.array(z.enum(Object.keys(CLIENT_SCOPE_CLAIMS) as [ClientScope, ...ClientScope[]])).min(1).default(['openid', 'email', 'profile']),
    roles: z.array(nonEmptyString).default([]),
    claims: z.array(z.enum(CLIENT_CLAIMS)).default([...CLIENT_CLAIMS]),
    // `stsgate login --device --client <id>`: this client's device tokens may open stsgate terminal sessions
    // (which get credentials for every role the person is granted): only a public device_code client, on purpose.
    terminal_login: z.boolean().default(false),
    lifetimes: section({
      access_token_seconds: integer(60, 86_400).default(DEFAULT_CLIENT_LIFETIMES.accessTokenSeconds),
      id_token_seconds: integer(60, 86_400).default(DEFAULT_CLIENT_LIFETIMES.idTokenSeconds),
      refresh_token_seconds: integer(300, 30 * 86_400).optional(),
    }).prefault({}),
  }).superRefine(
    (value, ctx) => {
      if (value.type === 'public') {
        if (value.secret !== undefined) ctx.addIssue({ code: 'custom', path: ['secret'], message: 'found a secret, expected none for type: public (a public client cannot keep one; it uses PKCE)' });
        if (value.auth_method !== undefined) ctx.addIssue({ code: 'custom', path: ['auth_method'], message: 'found auth_method, expected none for type: public (it does not authenticate)' });
      } else if (value.type === 'confidential' && value.secret === undefined) {
        ctx.addIssue({ code: 'custom', path: ['secret'], message: 'missing, expected the client secret (secret_file: PATH, or secret: ${VAR}) for type: confidential, or type: public' });
      }
      const grants: readonly string[] = Array.isArray(value.grant_types) ? value.grant_types : [];
      if (grants.includes('authorization_code') && Array.isArray(value.redirect_uris) && value.redirect_uris.length === 0) {
        ctx.addIssue({ code: 'custom', path: ['redirect_uris'], message: 'found none, expected at least one redirect URI for grant_types with authorization_code' });
      }
      if (grants.includes('refresh_token') && !grants.includes('authorization_code') && !grants.includes('device_code')) {
        ctx.addIssue({ code: 'custom', path: ['grant_types'], message: 'found refresh_token alone, expected it beside authorization_code or device_code (a refresh token comes from one of them)' });
      }
      const scopes: readonly string[] = Array.isArray(value.scopes) ? value.scopes : [];
      if (!scopes.includes('openid')) ctx.addIssue({ code: 'custom', path: ['scopes'], message: 'found no openid, expected openid among the allowed scopes (an OpenID Connect client asks for it)' });
      if (scopes.includes('offline_access') && !grants.includes('refresh_token')) {
        ctx.addIssue({ code: 'custom', path: ['scopes'], message: 'found offline_access, expected refresh_token in grant_types too (offline_access asks for a refresh token)' });
      }
      if (value.terminal_login === true && (value.type !== 'public' || !grants.includes('device_code'))) {
        ctx.addIssue({ code: 'custom', path: ['terminal_login'], message: 'found terminal_login: true, expected it only on a type: public client with device_code in grant_types (stsgate login --device)' });
      }
      (Array.isArray(value.redirect_uris) ? value.redirect_uris : []).forEach((uri, index, all) => {
        if (all.indexOf(uri) !== index) ctx.addIssue({ code: 'custom', path: ['redirect_uris', index], message: `found ${JSON.stringify(uri)} again, expected each redirect URI once` });
      });
    },
    { when: (payload) => isMapping(payload.value) },
  ).transform((client) => ({
    /** The OAuth client_id. */
    id: client.id,
    /** Shown on the sign-in page ("to continue to Grafana"); default: the id. */
    name: client.name ?? client.id,
    type: client.type,
    ...(client.secret !== undefined ? { secret: client.secret } : {}),
    /** How it authenticates at the token endpoint: none for a public client. */
    authMethod: client.type === 'public' ? ('none' as const) : (client.auth_method ?? 'client_secret_basic'),
    /** Compared exactly (RFC 9700 §4.1.3). */
    redirectUris: client.redirect_uris,
    postLogoutRedirectUris: client.post_logout_redirect_uris,
    grantTypes: [...new Set(client.grant_types)],
    /** The scopes it may ask for; a request for another is refused (invalid_scope). */
    scopes: [...new Set(client.scopes)],
    /** The roles its `roles` claim may list (of those the rules grant the person). */
    roles: [...new Set(client.roles)],
    /** The claims it may see besides `sub`. */
    claims: [...new Set(client.claims)],
    /** Its device tokens may open stsgate terminal sessions (`stsgate login --device`). */
    terminalLogin: client.terminal_login,
    lifetimes: client.lifetimes,
  }));
}

/** RFC 6265 §4.1.1: a cookie name is an HTTP token. */
const COOKIE_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,64}$/;

/** An origin (`https://app.example.com[:port]`) that `return_to` may lead to; normalized to `URL.origin`. */
function originSchema(allowInsecureHttp: boolean) {
  return custom<string>((value) => {
    const problem = { problem: `${found(value)}, expected an origin such as https://app.example.com (scheme, host and optional port; no path)${allowInsecureHttp ? '' : '; http:// only with dev.allow_insecure_http: true'}` };
    if (typeof value !== 'string') return problem;
    const url = parsedUrl(value);
    if (!url) return problem;
    const secureEnough = url.protocol === 'https:' || (url.protocol === 'http:' && allowInsecureHttp);
    if (!secureEnough || url.username || url.password || url.search || url.hash || !['', '/'].includes(url.pathname) || value.includes('#')) return problem;
    return { ok: url.origin };
  });
}

/** One trusted proxy: an IPv4 or IPv6 address, or a CIDR range (`10.0.0.0/8`, `fd00::/8`). */
const trustedProxySchema = custom<string>((value) => {
  const problem = { problem: `${found(value)}, expected an IPv4 or IPv6 address or a CIDR range such as 10.0.0.0/8, 127.0.0.1 or "fd00::/8"` };
  if (typeof value !== 'string') return problem;
  const [address = '', prefix, extra] = value.split('/');
  const version = isIP(address);
  if (version === 0 || extra !== undefined) return problem;
  if (prefix === undefined) return { ok: address };
  if (!/^[0-9]{1,3}$/.test(prefix) || Number(prefix) > (version === 4 ? 32 : 128)) return problem;
  if (Number(prefix) === 0) return { problem: `${found(value)}, expected a range narrower than every address: believing X-Forwarded-For from anyone lets every client choose its own address` };
  return { ok: `${address}/${Number(prefix)}` };
});

/**
 * `listen.trusted_proxies`: the proxies whose X-Forwarded-For is believed, by address. The hop count it
 * once was is refused, not converted: a count believes the header from whoever reaches the port directly.
 */
const trustedProxiesSchema = custom<unknown>((value) =>
  typeof value === 'number' || (typeof value === 'string' && /^[0-9]+$/.test(value))
    ? { problem: `${found(value)}, expected a list of the proxies' addresses or CIDR ranges, such as [10.0.0.0/8, 127.0.0.1]: a count of proxies is no longer taken, because it believes X-Forwarded-For from any client that reaches the port directly` }
    : { ok: value },
).pipe(z.array(trustedProxySchema).max(256));

/**
 * Builds the schema; plain-http acceptance depends on `dev.allow_insecure_http`, read before validation,
 * and `use:` names one of `providers`, the definitions the loader read (`providerDefinitions()`).
 */
export function gatewaySchema(options: { allowInsecureHttp: boolean; providers: ReadonlyMap<string, ProviderDefinition> }) {
  const { allowInsecureHttp } = options;
  const issuerSchema = strict({
    id: idSchema,
    issuer: httpsUrl('issuer', allowInsecureHttp),
    audiences: z.array(nonEmptyString).min(1),
    jwks_uri: httpsUrl('jwks_uri', allowInsecureHttp).optional(),
    keys: strict({ keys: z.array(jwkSchema).min(1) }).optional(),
    algorithms: z.array(issuerAlgorithmSchema).min(1).default(['RS256', 'ES256']),
    clock_skew_seconds: integer(0, 300).default(60),
    max_token_age_seconds: integer(1, 604_800).optional(),
  }).superRefine(
    (value, ctx) => {
      if (value.jwks_uri !== undefined && value.keys !== undefined) {
        ctx.addIssue({ code: 'custom', path: [], message: `found both jwks_uri and keys, expected at most one (neither means discovery)` });
      }
      // Inline keys are the operator's own: an unusable one (weak, private, symmetric, for encryption, of an
      // algorithm not allowed) is refused here, where a fetched set would only have it dropped and logged.
      const algorithms = Array.isArray(value.algorithms) ? value.algorithms.filter((a) => (ISSUER_ALGORITHMS as readonly unknown[]).includes(a)) : [];
      const keys: unknown = (value.keys as { keys?: unknown } | undefined)?.keys;
      if (Array.isArray(keys) && algorithms.length > 0) {
        keys.forEach((jwk: unknown, index) => {
          const problem = jwkProblem(jwk, algorithms);
          const kid = (jwk as { kid?: unknown } | null)?.kid;
          if (problem) ctx.addIssue({ code: 'custom', path: ['keys', 'keys', index], message: `found ${problem.detail}${typeof kid === 'string' ? ` (kid ${printableMember(kid)})` : ''}, expected a public signing key for one of ${algorithms.join(', ')}` });
        });
      }
    },
    { when: (payload) => isMapping(payload.value) },
  ).transform((issuer) => {
    // Where keys come from: discovery (`<issuer>/.well-known/openid-configuration`), a JWKS URL, or inline.
    const keys =
      issuer.jwks_uri !== undefined
        ? { kind: 'jwks_uri' as const, uri: issuer.jwks_uri }
        : issuer.keys !== undefined
          ? { kind: 'inline' as const, jwks: { keys: issuer.keys.keys.map((k) => ({ ...k }) as Record<string, unknown>) } }
          : { kind: 'discovery' as const };
    return {
      id: issuer.id,
      /** Compared exactly with the token's `iss`. */
      issuer: issuer.issuer,
      audiences: issuer.audiences,
      keys: keys as { kind: 'discovery' } | { kind: 'jwks_uri'; uri: string } | { kind: 'inline'; jwks: { keys: Record<string, unknown>[] } },
      algorithms: [...new Set(issuer.algorithms)],
      clockSkewSeconds: issuer.clock_skew_seconds,
      ...(issuer.max_token_age_seconds !== undefined ? { maxTokenAgeSeconds: issuer.max_token_age_seconds } : {}),
    };
  });

  const roleSchema = section({
    name: roleNameSchema,
    // Shown to people on the account page beside the role's name, ARN and longest session.
    description: z.string().min(1).max(ROLE_DESCRIPTION_MAX).optional(),
    scopes: z.array(scopeSchema).default([]),
    audiences: z.array(nonEmptyString).default([]),
    max_session_seconds: integer(MIN_SESSION_SECONDS, MAX_SESSION_SECONDS).default(3_600),
    can_assume: z.array(nonEmptyString).default([]),
    session_tags: z.record(nonEmptyString, tagSourceSchema).default({}),
    // The targets (relying parties trusting stsgate as an issuer) this role's holders may get a token for.
    targets: z.array(nonEmptyString).default([]),
  });

  // A `tests:` case: `stsgate check-config` evaluates the identity and compares the roles granted.
  const testSchema = section({
    name: nonEmptyString.optional(),
    identity: section({ source: nonEmptyString, subject: z.string().optional(), claims: claimsSchema.default({}) }),
    expect_roles: z.array(nonEmptyString),
  });

  return strict({
    public_url: httpsUrl('public_url', allowInsecureHttp),
    // trusted_proxies: X-Forwarded-For is believed only from a connection of one of these, and only as far
    // as the entries these proxies appended (src/http/middleware/client-address.ts).
    listen: section({ host: nonEmptyString.default('0.0.0.0'), port: integer(1, 65_535).default(8_080), trusted_proxies: trustedProxiesSchema.default([]) }).prefault({}),
    // The operators' listener: /metrics, probes and the admin API, on a port the public never reaches.
    admin: section({
      listen: section({ host: nonEmptyString.optional(), port: integer(1, 65_535).default(DEFAULT_ADMIN_PORT) }).prefault({}),
      metrics_on_public_port: z.boolean().default(false),
      token: adminTokenSchema.optional(),
    }).prefault({}),
    store: storeSchema,
    signing: section({
      algorithm: z.enum(SIGNING_ALGORITHMS).default('ES256'),
      keys_file: nonEmptyString.optional(),
      // How soon a rotation written to the keys file is seen; `keys rotate --publish-ahead` must exceed it.
      reload_interval_seconds: integer(1, 3_600).default(DEFAULT_KEYS_RELOAD_SECONDS),
    }).prefault({}),
    account_id: custom<string>((value) =>
      typeof value === 'string' && /^[0-9]{12}$/.test(value)
        ? { ok: value }
        : { problem: `${found(value)}, expected a string of 12 digits${typeof value === 'number' ? ' (quote it in YAML)' : ''}` },
    ),
    providers: z.array(providerEntrySchema(allowInsecureHttp, options.providers)).default([]),
    // The browser login session, and the origins besides the gateway's own that `return_to` may lead to.
    browser: section({
      session_ttl_seconds: integer(300, 7 * 86_400).default(28_800),
      allowed_return_origins: z.array(originSchema(allowInsecureHttp)).default([]).transform((origins) => [...new Set(origins)]),
      cookie_name: custom<string>((value) =>
        typeof value === 'string' && COOKIE_NAME.test(value) ? { ok: value } : { problem: `${found(value)}, expected a cookie name (1-64 letters, digits or !#$%&'*+-.^_\`|~; RFC 6265)` },
      ).default('stsgate_session'),
    }).prefault({}),
    dev: section({ allow_insecure_http: z.boolean().default(false) }).prefault({}),
    credentials: section({ encryption_key: encryptionKeySchema.optional(), cache_min_remaining_fraction: fraction().default(0.5) }).prefault({}),
    limits: section({
      max_body_bytes: integer(1_024, 64 * 1_024 * 1_024).default(65_536),
      // Per minute, counted in the store across replicas; 0 turns a limit off. The defaults leave room for a
      // CI matrix of a few hundred jobs sharing one subject, and for NAT in front of many clients.
      exchange_per_address_per_minute: integer(0, 1_000_000).default(DEFAULT_EXCHANGE_LIMITS.perAddressPerMinute),
      exchange_per_subject_per_minute: integer(0, 1_000_000).default(DEFAULT_EXCHANGE_LIMITS.perSubjectPerMinute),
      // /login, /callback, /cli/login and /cli/token together, per minute; and login transactions started
      // per ten minutes (each is a store record kept for a browser nobody has authenticated yet).
      login_per_address_per_minute: integer(0, 1_000_000).default(DEFAULT_LOGIN_LIMITS.perAddressPerMinute),
      pending_logins_per_address: integer(0, 1_000_000).default(DEFAULT_LOGIN_LIMITS.pendingPerAddress),
      // Username-and-password attempts at a directory provider's form (use: ldap), per minute: per client
      // address, and per username from anywhere (password guessing from one machine, and from many).
      password_attempts_per_address_per_minute: integer(0, 1_000_000).default(DEFAULT_LOGIN_LIMITS.passwordPerAddressPerMinute),
      password_attempts_per_username_per_minute: integer(0, 1_000_000).default(DEFAULT_LOGIN_LIMITS.passwordPerUsernamePerMinute),
      // /oauth2/introspect, per client address, whether or not the client authenticates (guessing secrets
      // and scanning tokens both cost requests).
      introspection_per_address_per_minute: integer(0, 1_000_000).default(DEFAULT_INTROSPECTION_LIMIT),
    }).prefault({}),
    introspection: introspectionSchema.prefault({}),
    workers: workersSchema.default(1),
    // delay: /readyz fails but the port still serves, so load balancers stop routing here before it closes.
    shutdown: section({
      delay_seconds: integer(0, 300).default(DEFAULT_SHUTDOWN.delaySeconds),
      grace_seconds: integer(0, 3_600).default(DEFAULT_SHUTDOWN.graceSeconds),
    }).prefault({}),
    // STSGATE_LOG_FORMAT overrides log.format (observability/logger.ts). sync: every line written before
    // the response is sent (a system call per line) instead of in batches of at most 100 ms.
    log: section({ format: z.enum(LOG_FORMATS).default('auto'), sync: z.boolean().default(false) }).prefault({}),
    // Denial lines name the account (email or login) the person saw on the denial page; false leaves it out.
    audit: section({ include_account_label: z.boolean().default(true) }).prefault({}),
    issuers: z.array(issuerSchema).default([]),
    targets: z.array(targetSchema(allowInsecureHttp)).max(1_000).default([]),
    roles: z.array(roleSchema).default([]),
    rules: z.array(ruleSchema).default([]),
    tests: z.array(testSchema).default([]),
    // Applications that sign people in through stsgate as their OpenID Provider (src/op/).
    clients: z.array(clientSchema(allowInsecureHttp)).max(1_000).default([]),
  }).superRefine((value, ctx) => {
    const adminHost = value.admin.listen.host ?? value.listen.host;
    const overlaps = adminHost === value.listen.host || [adminHost, value.listen.host].some((host) => ['0.0.0.0', '::'].includes(host));
    if (value.admin.listen.port === value.listen.port && overlaps) {
      ctx.addIssue({ code: 'custom', path: ['admin', 'listen', 'port'], message: `found ${value.admin.listen.port}, the port of listen, expected another port (the admin listener is separate so that the public never reaches it)` });
    }
    // RFC 6265bis §4.1.3: a __Secure- or __Host- cookie must be Secure, which a plain-http gateway cannot set.
    if (/^__(Secure|Host)-/i.test(value.browser.cookieName) && value.public_url.startsWith('http:')) {
      ctx.addIssue({ code: 'custom', path: ['browser', 'cookie_name'], message: `found ${JSON.stringify(value.browser.cookieName)} with a plain-http public_url, expected a name without the __Secure-/__Host- prefix (such cookies need https)` });
    }
  }).transform(({ public_url, listen, admin, credentials, account_id, targets, ...rest }) => ({
    // Stripped so that `<public_url>/callback/<id>` never has a double slash.
    publicUrl: public_url.replace(/\/+$/, ''),
    listen,
    // The admin listener binds listen.host unless it names its own.
    admin: { ...admin, listen: { host: admin.listen.host ?? listen.host, port: admin.listen.port } },
    /** 32-byte key for encrypting secrets at rest; generated at start when absent (dev only). */
    ...(credentials.encryptionKey !== undefined ? { encryptionKey: credentials.encryptionKey } : {}),
    accountId: account_id,
    cache: { minRemainingFraction: credentials.cacheMinRemainingFraction },
    targets: targets.map((target) => targetSpec(target, rest.signing.algorithm)),
    ...rest,
  }));
}

/** The configuration as loaded: what the schema's transforms produce from a valid file. */
export type LoadedConfig = z.output<ReturnType<typeof gatewaySchema>>;
