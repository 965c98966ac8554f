/**
 * Rule sets that are valid but dangerous, refused at load time (`check-config` and start-up) with the
 * reason. The classic mistakes of workload identity federation: trusting a public, multi-tenant issuer
 * (GitHub Actions, Google, GitLab.com) without pinning whose tokens are meant, so that anyone with an
 * account there can mint a matching token; a pattern that matches every value; an email trusted without
 * the issuer saying it was verified.
 */
import { compileGlob, compileRegex } from '../rules/patterns.js';
import type { ProblemList } from './problems.js';
import type { ClaimCondition, Condition, GatewayConfig, RuleConfig } from './types.js';

/** How a rule can pin a tenant of a public issuer: exact claims, and claims whose literal prefix names an owner. */
interface PublicIssuer {
  name: string;
  /** Claims that identify the tenant when compared exactly (`equals`, `in`). */
  exact: readonly string[];
  /** Claims whose `starts_with` / `glob` pins the tenant when the literal prefix ends an owner segment with `/`. */
  ownerPrefixed: Readonly<Record<string, string>>;
  /** `email` pins the tenant by `ends_with: "@domain"` (hosted-domain accounts). */
  emailDomain?: boolean;
}

/**
 * Issuers that sign tokens for anyone with an account: any repository's workflow (GitHub Actions, GitLab
 * CI) or any Google account and any service account (which can ask for an ID token with any audience).
 */
export const PUBLIC_ISSUERS: ReadonlyMap<string, PublicIssuer> = new Map<string, PublicIssuer>([
  [
    'https://token.actions.githubusercontent.com',
    {
      name: 'GitHub Actions',
      exact: ['repository', 'repository_id', 'repository_owner', 'repository_owner_id', 'sub'],
      ownerPrefixed: { repository: '', sub: 'repo:' },
    },
  ],
  ['https://accounts.google.com', { name: 'Google', exact: ['sub', 'email', 'hd', 'azp'], ownerPrefixed: {}, emailDomain: true }],
  ['https://gitlab.com', { name: 'GitLab.com', exact: ['project_id', 'project_path', 'namespace_id', 'namespace_path', 'sub'], ownerPrefixed: { project_path: '', sub: 'project_path:' } }],
]);

/** Browser-login providers anyone can sign in to (`use:` of a provider definition). */
const PUBLIC_PROVIDERS = new Set(['github', 'google', 'facebook']);

/**
 * Strings of every shape: a pattern that matches them all pins nothing. (No line breaks: `.*` does not match
 * them, yet pins nothing in practice.)
 */
const PROBES = ['a', 'Z', 'evil/app', 'repo:evil/app:ref:refs/heads/main', 'x@evil.example', '0', ' ', '\u00e9\u4e2d\u{1F600}'];

/** Adds a problem for every dangerous rule in a configuration that is otherwise valid. */
export function checkSafety(config: GatewayConfig, problems: ProblemList): void {
  const publicSources = new Map<string, string>();
  for (const issuer of config.issuers) {
    const known = PUBLIC_ISSUERS.get(issuer.issuer);
    if (known) publicSources.set(issuer.id, `the public issuer ${issuer.id} (${known.name}, ${issuer.issuer})`);
  }
  for (const provider of config.providers as readonly { id?: unknown; use?: unknown }[]) {
    if (typeof provider.id === 'string' && typeof provider.use === 'string' && PUBLIC_PROVIDERS.has(provider.use)) {
      publicSources.set(provider.id, `the login provider ${provider.id} (${provider.use}: anyone with an account can sign in)`);
    }
  }

  config.rules.forEach((rule, index) => {
    const path = ['rules', index];
    const named = `rule ${JSON.stringify(rule.name)}`;
    const sources = rule.match.source !== undefined ? [rule.match.source] : [...publicSources.keys()];
    for (const source of sources) {
      const described = publicSources.get(source);
      if (!described) continue;
      const via = rule.match.source === undefined ? `has no source, so it also applies to ${described}` : `trusts ${described}`;
      if (rule.match.conditions.length === 0) {
        problems.add(path, `${named} ${via} with no conditions: every identity it vouches for would get ${rolesOf(rule)}, expected conditions that pin whose identities are meant`);
        continue;
      }
      const issuer = config.issuers.find((i) => i.id === source);
      const pinning = issuer ? PUBLIC_ISSUERS.get(issuer.issuer) : undefined;
      if (pinning && !rule.match.conditions.some((c) => pins(c, pinning))) {
        problems.add(path, `${named} ${via} without pinning ${pinDescription(pinning)}: anyone there can mint a token that matches it, expected one of those claims compared exactly`);
      }
    }
    forEachClaimCondition(rule.match.conditions, (condition) => {
      if ((condition.op === 'glob' || condition.op === 'matches') && matchesEverything(condition)) {
        problems.add(path, `${named}: ${condition.op} ${JSON.stringify(condition.value)} on ${condition.claim} matches every value, so it pins nothing, expected a pattern with a literal part (or exists: true if presence is all that is meant)`);
      }
    });
    if (usesUnverifiedEmail(rule.match.conditions, false)) {
      problems.add(path, `${named} trusts the email claim without { claim: email_verified, equals: true } beside it: an unverified address proves nothing about who holds it, expected both`);
    }
  });
}

function rolesOf(rule: RuleConfig): string {
  return rule.roles.length === 1 ? `role ${rule.roles[0]}` : `roles ${rule.roles.join(', ')}`;
}

function pinDescription(issuer: PublicIssuer): string {
  const claims = issuer.exact.join(', ');
  return issuer.emailDomain ? `${claims} (or email ending in @domain)` : claims;
}

/** Whether a condition, as one of a rule's ANDed conditions, restricts the rule to one tenant. */
function pins(condition: Condition, issuer: PublicIssuer): boolean {
  if ('all' in condition) return condition.all.some((c) => pins(c, issuer));
  // Every branch of an `any` must pin, or the unpinned branch lets anyone in.
  if ('any' in condition) return condition.any.every((c) => pins(c, issuer));
  if ('not' in condition) return false;
  const { claim, op, value } = condition;
  if ((op === 'equals' || op === 'in') && issuer.exact.includes(claim)) {
    return op === 'equals' ? typeof value === 'string' || typeof value === 'number' : Array.isArray(value) && value.every((v) => typeof v === 'string' || typeof v === 'number');
  }
  if ((op === 'starts_with' || op === 'glob') && typeof value === 'string' && Object.hasOwn(issuer.ownerPrefixed, claim)) {
    // `acme/` pins the owner acme; `acme` alone would also match `acme-evil/app`.
    const literal = op === 'glob' ? value.split(/[*?]/)[0]! : value;
    const lead = issuer.ownerPrefixed[claim]!;
    return literal.startsWith(lead) && /^[^/*?]+\//.test(literal.slice(lead.length));
  }
  if (issuer.emailDomain && op === 'ends_with' && claim === 'email' && typeof value === 'string') return /^@[^@\s]+\.[^@\s]+$/.test(value);
  return false;
}

/** Whether a glob or regex accepts every string it is shown: it constrains nothing. */
function matchesEverything(condition: ClaimCondition): boolean {
  const pattern = String(condition.value);
  let test: (value: string) => boolean;
  try {
    test = condition.op === 'glob' ? compileGlob(pattern) : compileRegex(pattern);
  } catch {
    return false;
  }
  return PROBES.every((probe) => test(probe));
}

function forEachClaimCondition(conditions: readonly Condition[], visit: (condition: ClaimCondition) => void): void {
  for (const condition of conditions) {
    if ('all' in condition) forEachClaimCondition(condition.all, visit);
    else if ('any' in condition) forEachClaimCondition(condition.any, visit);
    else if ('not' in condition) forEachClaimCondition([condition.not], visit);
    else visit(condition);
  }
}

/** `email_verified equals true` among ANDed conditions (directly or through `all`). */
function verifiesEmail(conditions: readonly Condition[]): boolean {
  return conditions.some((c) => ('all' in c ? verifiesEmail(c.all) : 'claim' in c && c.claim === 'email_verified' && c.op === 'equals' && c.value === true));
}

/**
 * Whether a positive test of the `email` claim can pass without `email_verified: true` required in the
 * same branch. Conditions under `not` grant nothing by the address, and `exists` does not read it.
 */
function usesUnverifiedEmail(conditions: readonly Condition[], verified: boolean): boolean {
  const here = verified || verifiesEmail(conditions);
  return conditions.some((c) => {
    if ('all' in c) return usesUnverifiedEmail(c.all, here);
    if ('any' in c) return c.any.some((branch) => usesUnverifiedEmail([branch], here));
    if ('not' in c) return false;
    return c.claim === 'email' && c.op !== 'exists' && c.op !== 'not_equals' && !here;
  });
}
