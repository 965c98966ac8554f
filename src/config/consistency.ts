/**
 * Checks across sections: unique ids and names, and every reference (a rule's roles and source, a role's
 * can_assume, a test's roles and source) naming something defined. Runs on the raw tree, defensively, so
 * these problems are reported together with the structural ones instead of after they are fixed.
 */
import { AWS_DEFAULT_AUDIENCE, AZURE_AUDIENCE, GCP_AUDIENCE_PREFIX } from '../rules/target-claims.js';
import { type ProblemList, formatPath, suggestion } from './problems.js';

type Tree = Record<string, unknown>;

function isMapping(value: unknown): value is Tree {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function list(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

function field(value: unknown, key: string): unknown {
  return isMapping(value) && Object.hasOwn(value, key) ? value[key] : undefined;
}

/** Records `name` at `where`; a second occurrence is a problem naming the first. */
function checkUnique(seen: Map<string, string>, name: unknown, where: (string | number)[], what: string, problems: ProblemList, scope: string): void {
  if (typeof name !== 'string') return;
  const first = seen.get(name);
  if (first !== undefined) problems.add(where, `duplicate ${what} ${JSON.stringify(name)} (also ${first}), expected ${scope}`);
  else seen.set(name, formatPath(where));
}

function checkReference(value: unknown, known: readonly string[] | undefined, where: (string | number)[], what: string, problems: ProblemList): void {
  if (known === undefined || typeof value !== 'string' || known.includes(value)) return;
  problems.add(where, `unknown ${what} ${JSON.stringify(value)}${suggestion(value, known, `known ${what}s`)}`);
}

/** Adds a problem for every duplicate id or name and every dangling reference in `tree`. */
export function checkConsistency(tree: Tree, problems: ProblemList): void {
  // When a section is not a list its own problem is already reported; references into it would only add noise.
  const knowsSources = [tree.issuers, tree.providers].every((section) => section === undefined || Array.isArray(section));
  const knowsRoles = tree.roles === undefined || Array.isArray(tree.roles);
  const sources = new Map<string, string>();
  list(tree.issuers).forEach((issuer, i) => checkUnique(sources, field(issuer, 'id'), ['issuers', i, 'id'], 'id', problems, 'ids unique across issuers and providers'));
  list(tree.providers).forEach((provider, i) => checkUnique(sources, field(provider, 'id'), ['providers', i, 'id'], 'id', problems, 'ids unique across issuers and providers'));
  const sourceIds = knowsSources ? [...sources.keys()] : undefined;

  const roleNames = new Map<string, string>();
  list(tree.roles).forEach((role, i) => checkUnique(roleNames, field(role, 'name'), ['roles', i, 'name'], 'role name', problems, 'unique role names'));
  const roles = knowsRoles ? [...roleNames.keys()] : undefined;

  list(tree.roles).forEach((role, i) => {
    list(field(role, 'can_assume')).forEach((target, j) => checkReference(target, roles, ['roles', i, 'can_assume', j], 'role', problems));
  });
  checkTargets(tree, roles, problems);

  const ruleNames = new Map<string, string>();
  list(tree.rules).forEach((rule, i) => {
    checkUnique(ruleNames, field(rule, 'name'), ['rules', i, 'name'], 'rule name', problems, 'unique rule names (audit logs and explain name rules)');
    list(field(rule, 'roles')).forEach((role, j) => checkReference(role, roles, ['rules', i, 'roles', j], 'role', problems));
    checkReference(field(field(rule, 'match'), 'source'), sourceIds, ['rules', i, 'match', 'source'], 'source', problems);
  });

  list(tree.tests).forEach((test, i) => {
    checkReference(field(field(test, 'identity'), 'source'), sourceIds, ['tests', i, 'identity', 'source'], 'source', problems);
    list(field(test, 'expect_roles')).forEach((role, j) => checkReference(role, roles, ['tests', i, 'expect_roles', j], 'role', problems));
  });

  const clientIds = new Map<string, string>();
  list(tree.clients).forEach((client, i) => {
    checkUnique(clientIds, field(client, 'id'), ['clients', i, 'id'], 'client id', problems, 'unique client ids');
    list(field(client, 'roles')).forEach((role, j) => checkReference(role, roles, ['clients', i, 'roles', j], 'role', problems));
  });

  checkWorkers(tree, problems);
}

/** A target's audience as it will be: the configured one, or its kind's default (aws, azure, gcp with a provider). */
function effectiveAudience(target: unknown): string | undefined {
  const audience = field(target, 'audience');
  if (typeof audience === 'string') return audience;
  const kind = field(target, 'kind');
  if (kind === 'aws') return AWS_DEFAULT_AUDIENCE;
  if (kind === 'azure') return AZURE_AUDIENCE;
  const provider = field(field(target, 'gcp'), 'provider');
  return kind === 'gcp' && typeof provider === 'string' ? `${GCP_AUDIENCE_PREFIX}${provider}` : undefined;
}

/**
 * Targets: unique names, none named like a role (RFC 8693's `audience` names either), every role's
 * `targets` defined, and no target audience that is also a role's: an stsgate access token carries its
 * role's audiences, so it would pass where only a target token should. A trusted issuer that is stsgate
 * itself would take its own target tokens back as subject tokens, so that is refused too.
 */
function checkTargets(tree: Tree, roles: readonly string[] | undefined, problems: ProblemList): void {
  const names = new Map<string, string>();
  list(tree.targets).forEach((target, i) => {
    checkUnique(names, field(target, 'name'), ['targets', i, 'name'], 'target name', problems, 'unique target names');
    const name = field(target, 'name');
    if (typeof name === 'string' && roles?.includes(name)) problems.add(['targets', i, 'name'], `found ${JSON.stringify(name)}, also a role's name, expected a name no role has (an RFC 8693 audience names a role or a target)`);
  });
  const known = Array.isArray(tree.targets) || tree.targets === undefined ? [...names.keys()] : undefined;
  const roleAudiences = new Map<string, string>();
  list(tree.roles).forEach((role, i) => {
    list(field(role, 'targets')).forEach((target, j) => checkReference(target, known, ['roles', i, 'targets', j], 'target', problems));
    list(field(role, 'audiences')).forEach((audience, j) => typeof audience === 'string' && roleAudiences.set(audience, formatPath(['roles', i, 'audiences', j])));
  });
  list(tree.targets).forEach((target, i) => {
    const audience = effectiveAudience(target);
    const clash = audience === undefined ? undefined : roleAudiences.get(audience);
    if (clash !== undefined) {
      const where = field(target, 'audience') === undefined ? ['targets', i, 'kind'] : ['targets', i, 'audience'];
      problems.add(where, `found ${field(target, 'audience') === undefined ? `the default audience ${JSON.stringify(audience)}` : JSON.stringify(audience)}, also an audience of stsgate's access tokens (${clash}), expected an audience only target tokens carry`);
    }
  });
  const publicUrl = typeof tree.public_url === 'string' ? tree.public_url.replace(/\/+$/, '') : undefined;
  list(tree.issuers).forEach((issuer, i) => {
    const url = field(issuer, 'issuer');
    if (publicUrl !== undefined && typeof url === 'string' && url.replace(/\/+$/, '') === publicUrl) {
      problems.add(['issuers', i, 'issuer'], `found stsgate's own public_url, expected another issuer (stsgate would accept its own target tokens as subject tokens)`);
    }
  });
}

/**
 * Several worker processes are several gateways: like replicas, they must share the store (an in-memory
 * one is per process) and the keys (one worker's credentials must verify on the next). "auto" may mean
 * several on the machine it runs on, so it is held to the same standard.
 */
function checkWorkers(tree: Tree, problems: ProblemList): void {
  const workers = tree.workers;
  const several = workers === 'auto' || (typeof workers === 'number' && workers > 1) || (typeof workers === 'string' && /^[0-9]+$/.test(workers) && Number(workers) > 1);
  if (!several) return;
  const shown = JSON.stringify(workers);
  const store = tree.store;
  if (store === undefined || field(store, 'memory') !== undefined) {
    problems.add(['workers'], `found ${shown} with the in-memory store, expected 1: each worker would keep its own store (configure store.redis to run several)`);
  }
  if (field(tree.signing, 'keys_file') === undefined) {
    problems.add(['signing', 'keys_file'], `missing, expected a keys file with workers: ${shown} (generated keys differ per worker, so one worker's tokens would fail on the next)`);
  }
  if (field(tree.credentials, 'encryption_key') === undefined) {
    problems.add(['credentials', 'encryption_key'], `missing, expected a key with workers: ${shown} (generated keys differ per worker, so stored secrets would not open on the next)`);
  }
}
