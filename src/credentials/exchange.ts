import { accountLabel } from '../domain/account-label.js';
import type { CredentialSet, Identity, Role } from '../domain/types.js';
import type { RoleCatalog } from '../domain/role-catalog.js';
import { GatewayError, type DecisionContext } from '../errors/gateway-error.js';
import type { TargetSpec } from '../rules/target-claims.js';
import { rootIdentityOf, type CredentialService, type LiveSession, type OpenSession } from './credential-service.js';
import type { TargetToken, TargetTokens } from './target-tokens.js';
import type { Broker, BrokeredCredentials, BrokerRequest } from './broker.js';

/** AWS's bounds on DurationSeconds. */
export const MIN_SESSION_SECONDS = 900;
/** A chained session (AssumeRole with temporary credentials) lasts at most one hour, as in AWS. */
export const MAX_CHAINED_SESSION_SECONDS = 3600;
const DEFAULT_SESSION_SECONDS = 3600;
/** How many AssumeRole / token-exchange hops a chain may have below its root (defence in depth; SECURITY.md). */
export const MAX_CHAIN_DEPTH = 5;

/** The result of verifying an external JWT (issuers/). */
export interface VerifiedIdentity {
  identity: Identity;
  /** The configured audience the token's `aud` matched. */
  audience?: string;
}

/** What the exchange needs from its neighbours; main.ts wires the concrete parts. */
export interface ExchangeDependencies {
  roles: RoleCatalog;
  credentials: CredentialService;
  /** Verifies a web-identity token from a trusted issuer; throws GatewayError. */
  verifyWebIdentityToken(token: string): Promise<VerifiedIdentity>;
  /** The first rule that grants `role` to `identity`, or undefined. */
  grant(identity: Identity, role: string): { rule: string } | undefined;
  /** Every role the rules grant to `identity`, in rule order. */
  grantedRoles(identity: Identity): string[];
  /** For the audit line of a refusal by the rules: the rule that came closest to granting `role` (any, when undefined) and what it lacked. */
  explainRefusal?(identity: Identity, role: string | undefined): Pick<DecisionContext, 'closestRule' | 'failing'> | undefined;
  /**
   * Counts one request of a verified identity against the per-subject abuse limit; throws Throttling
   * (GatewayError) over it. Absent: no limit.
   */
  admit?(identity: Pick<Identity, 'source' | 'subject'>): Promise<void>;
  /** The configured targets and their mint; absent: no targets. */
  targets?: TargetTokens;
  /** Trades aws targets' tokens for real AWS credentials (targets with a `broker`); absent: none. */
  broker?: Pick<Broker, 'credentials'>;
}

/** Real cloud credentials a broker target fetched, with what the audit log needs. */
export interface BrokeredResult {
  credentials: BrokeredCredentials;
  target: TargetSpec;
  role: Role;
  identity: Identity;
  issuedAt: Date;
  expiresAt: Date;
  cached: boolean;
  upstreamRequestId?: string;
}

export interface ExchangeRequest {
  /** Role name or ARN; omitted: the one role the identity is granted (OAuth only), or the parent's role (chaining). */
  role?: string;
  sessionName: string;
  durationSeconds?: number;
  scopes?: readonly string[];
  audiences?: readonly string[];
}

/** The outcome of an exchange, with what the audit log needs. */
export interface ExchangeResult {
  credentials: CredentialSet;
  identity: Identity;
  role: Role;
  matchedRule?: string;
  /** The audience of the web-identity token that was accepted. */
  audience?: string;
}

/**
 * The token-exchange service shared by the AWS STS and OAuth endpoints: a verified identity, a role it
 * is granted by the rules, a duration and scopes within the role, then a credential set.
 */
export class TokenExchange {
  readonly #deps: ExchangeDependencies;

  constructor(deps: ExchangeDependencies) {
    this.#deps = deps;
  }

  /** `AssumeRoleWithWebIdentity` and RFC 8693 with an external subject token. */
  async exchangeWebIdentity(token: string, request: ExchangeRequest): Promise<ExchangeResult> {
    const verified = await this.#deps.verifyWebIdentityToken(token);
    const result = await this.issueForIdentity(verified.identity, request, 'sts:AssumeRoleWithWebIdentity');
    // Not `{ ...result, audience }`: a member written after a spread is slow on Node 20 (bench/README.md).
    return verified.audience === undefined ? result : Object.assign({}, result, { audience: verified.audience });
  }

  /**
   * Issues for an identity that is already verified (a web-identity token above, or a browser login):
   * the rules must grant the role, the duration and scopes must lie within it.
   */
  async issueForIdentity(identity: Identity, request: ExchangeRequest, action = 'sts:AssumeRoleWithWebIdentity'): Promise<ExchangeResult> {
    // Counted before anything is decided, so a verified identity probing for roles it lacks is limited
    // too; the count's round trip runs while the rules are evaluated and the cache is read.
    const admitted = this.#admit({ source: identity.source, subject: identity.subject }, identity);
    const { role, granted, grantedContext, durationSeconds, narrowing } = await admittedFirst(admitted, () => this.#decide(identity, request, action));
    // From here the role is granted: a refusal (throttled, store down) may be counted under its name.
    const credentials = await withContext(grantedContext, () =>
      this.#deps.credentials.issue(
        {
          identity,
          role,
          durationSeconds,
          sessionName: request.sessionName,
          matchedRule: granted.rule,
          ...narrowing,
        },
        admitted,
      ),
    );
    return { credentials, identity, role, matchedRule: granted.rule };
  }

  /** The role, the rule that grants it, the duration and the narrowing; throws the refusal. */
  #decide(identity: Identity, request: ExchangeRequest, action: string) {
    const role = withContext({ source: identity.source, subject: identity.subject }, () => this.#pickRole(identity, request.role));
    const context = { source: identity.source, subject: identity.subject, ...(role ? { role: role.name } : {}) };
    const granted = role ? this.#deps.grant(identity, role.name) : undefined;
    // An unknown role and a role this identity may not have get the same AccessDenied, so probing
    // role names learns nothing.
    if (!role || !granted) {
      throw new GatewayError('AccessDenied', `Not authorized to perform ${action}`, {
        debug: role ? `no rule grants role ${role.name}` : 'unknown role',
        // The audit line says which rule came closest and who was refused; the client hears none of it.
        context: { ...context, ...this.#deps.explainRefusal?.(identity, role?.name), account: accountLabel(identity) },
      });
    }
    const grantedContext = { source: identity.source, subject: identity.subject, role: role.name, granted: true };
    const durationSeconds = withContext(grantedContext, () => this.#duration(request.durationSeconds, role.maxSessionSeconds));
    const narrowing = withContext(grantedContext, () => this.#narrowing(role, request));
    return { role, granted, grantedContext, durationSeconds, narrowing };
  }

  /** Starts the per-subject count (absent: admitted at once); its refusal carries the audit context. */
  #admit(context: DecisionContext, identity: Pick<Identity, 'source' | 'subject'>): Promise<void> {
    const admitted = this.#deps.admit ? withContext(context, () => this.#deps.admit!(identity)) : Promise.resolve();
    // Awaited before any outcome; this only keeps a refusal met by an earlier error from going unhandled.
    admitted.catch(() => {});
    return admitted;
  }

  /** The named role, or when none is named, the only role the rules grant (several or none: no guess). */
  #pickRole(identity: Identity, requested: string | undefined): Role | undefined {
    if (requested !== undefined) return this.#deps.roles.resolve(requested);
    const granted = this.#deps.grantedRoles(identity);
    if (granted.length > 1) {
      throw new GatewayError('invalid_target', `This identity may assume several roles (${granted.join(', ')}); name one as the audience.`);
    }
    return granted.length === 1 ? this.#deps.roles.byName(granted[0]!) : undefined;
  }

  /**
   * Role chaining and narrowing from a live stsgate session (AWS AssumeRole with temporary keys, or
   * RFC 8693 with an stsgate access token). Each step meets today's configuration again (#checkChain),
   * and the new session lasts at most one hour, as in AWS, and never past any session on its path: a
   * leaked credential cannot renew itself beyond the root session it came from.
   */
  async chain(parent: LiveSession, request: ExchangeRequest): Promise<ExchangeResult> {
    const context = { source: parent.info.source, subject: parent.info.subject };
    return withContext(context, () => this.#chain(parent, request));
  }

  async #chain(parent: LiveSession, request: ExchangeRequest): Promise<ExchangeResult> {
    await this.#admit({ source: parent.info.source, subject: parent.info.subject }, parent.info);
    const role = this.#checkChain(parent, request.role);
    // The chain may take this role: refusals from here on may be counted under its name.
    return withContext({ role: role.name, granted: true }, () => this.#issueChained(parent, request, role));
  }

  /** Issues the chained or narrowed session once #checkChain allowed `role`. */
  async #issueChained(parent: LiveSession, request: ExchangeRequest, role: Role): Promise<ExchangeResult> {
    const path = pathOf(parent);
    const identity: Identity = { source: parent.info.source, subject: parent.info.subject, claims: {} };
    const limit = Math.min(role.maxSessionSeconds, MAX_CHAINED_SESSION_SECONDS);
    const durationSeconds = this.#duration(request.durationSeconds, limit);
    const notAfter = chainEnd(parent);
    // Narrowing an existing session can only shrink it: its scopes and audiences bound the new ones.
    const sameRole = role.name === parent.info.role;
    const bound = sameRole ? { scopes: parent.info.scopes, audiences: parent.info.audiences } : { scopes: role.scopes, audiences: role.audiences };
    const narrowing = this.#narrowing({ ...role, ...bound }, request);
    const credentials = await this.#deps.credentials.issue({
      identity,
      role: sameRole ? { ...role, scopes: bound.scopes, audiences: bound.audiences } : role,
      durationSeconds,
      sessionName: request.sessionName,
      ancestorSessionIds: path.map((session) => session.info.sessionId),
      notAfter,
      ...narrowing,
    });
    // What is handed out must end with its chain, cached or new; anything else is a bug, and fails closed.
    if (credentials.session.exp > notAfter || credentials.session.parentSessionId !== parent.info.sessionId) {
      throw new GatewayError('InternalFailure', 'An internal error occurred.', { debug: `chained session ${credentials.sessionId} outlives or left its chain` });
    }
    return { credentials, identity, role };
  }

  /**
   * The role a chain step may take, or the refusal. The path (root first, the caller last) must still be
   * what today's configuration allows: the rules still grant the root identity the root role, each hop on
   * the path is still in `can_assume`, and it is not yet MAX_CHAIN_DEPTH hops deep; otherwise the caller's
   * grant has lapsed (RFC 6749 §5.2 invalid_grant). Then the new hop must be in the caller's `can_assume`,
   * also when it names the caller's own role (RFC 8693 §2.2.2 invalid_target).
   */
  #checkChain(caller: LiveSession, requested: string | undefined): Role {
    const path = pathOf(caller);
    const target = requested === undefined ? this.#deps.roles.byName(caller.info.role) : this.#deps.roles.resolve(requested);
    const refuse = (debug: string, oauthCode: 'invalid_grant' | 'invalid_target') =>
      new GatewayError('AccessDenied', `User: ${caller.info.roleArn}/${caller.info.sessionName} is not authorized to perform: sts:AssumeRole`, {
        debug,
        oauthCode,
        ...(target ? { context: { role: target.name } } : {}),
      });
    if (path.length > MAX_CHAIN_DEPTH) throw refuse(`the chain is already ${path.length - 1} hops deep (at most ${MAX_CHAIN_DEPTH})`, 'invalid_grant');
    const lapsed = this.#lapsedGrant(caller);
    if (lapsed !== undefined) throw refuse(lapsed, 'invalid_grant');
    if (!target) throw refuse('unknown role', 'invalid_target');
    if (!this.#deps.roles.byName(caller.info.role)?.canAssume.includes(target.name)) {
      throw refuse(`role ${caller.info.role} may not assume ${target.name}${target.name === caller.info.role ? ' (itself: not in its can_assume)' : ''}`, 'invalid_target');
    }
    return target;
  }

  /**
   * Why a session's grant has lapsed under today's configuration, or undefined while it holds: the rules
   * still grant the root identity the root role, and each hop on the path is still in `can_assume`.
   */
  #lapsedGrant(session: LiveSession): string | undefined {
    const path = pathOf(session);
    const root = path[0]!;
    const rootIdentity = rootIdentityOf(session);
    if (!rootIdentity || !this.#deps.roles.byName(root.info.role) || !this.#deps.grant(rootIdentity, root.info.role)) {
      return `no rule grants the root identity role ${root.info.role} any more`;
    }
    for (let hop = 1; hop < path.length; hop++) {
      const from = path[hop - 1]!.info.role;
      const to = path[hop]!.info.role;
      if (!this.#deps.roles.byName(from)?.canAssume.includes(to)) return `role ${from} may no longer assume ${to} (hop ${hop} of the chain)`;
    }
    return undefined;
  }

  /** The targets the rules let `identity` get a token for, each with the first granted role (rule order) that lists it. */
  grantedTargets(identity: Identity): { target: TargetSpec; role: Role }[] {
    const targets = this.#deps.targets;
    if (!targets) return [];
    const found = new Map<string, { target: TargetSpec; role: Role }>();
    for (const name of this.#deps.grantedRoles(identity)) {
      const role = this.#deps.roles.byName(name);
      for (const targetName of role?.targets ?? []) {
        const target = targets.byName(targetName);
        if (role && target && !found.has(targetName)) found.set(targetName, { target, role });
      }
    }
    return [...found.values()];
  }

  /** A target token for a verified identity (a workload's token, or a browser or terminal session whose end is `notAfter`). */
  async targetForIdentity(identity: Identity, targetName: string, notAfter?: number): Promise<TargetToken> {
    const { target, role } = await this.#identityTarget(identity, targetName, (entry) => entry.target.name === targetName);
    return withContext({ source: identity.source, subject: identity.subject, role: role.name, granted: true }, () => this.#deps.targets!.mint(target, identity, role, notAfter));
  }

  /**
   * The first granted target `matches` accepts, counted against the identity's abuse limit first (a
   * throttled caller learns nothing); refused as not granted, naming `asked`, when there is none.
   */
  async #identityTarget(identity: Identity, asked: string, matches: (entry: { target: TargetSpec; role: Role }) => boolean): Promise<{ target: TargetSpec; role: Role }> {
    const context = { source: identity.source, subject: identity.subject };
    const admitted = this.#admit(context, identity);
    const granted = await admittedFirst(admitted, () => this.grantedTargets(identity).find(matches));
    await admitted;
    if (!granted) throw targetRefused(asked, context, 'no granted role lists this target (or it does not exist, or has no broker where one is needed)');
    return granted;
  }

  /**
   * Real AWS credentials through a broker target, from an stsgate session (RFC 8693 with an access token):
   * the session's role must list the target and its grant must hold today, as for a target token; the
   * broker's set never outlives the sessions on its path.
   */
  async brokerForSession(session: LiveSession, targetName: string, request: BrokerRequest = {}): Promise<BrokeredResult> {
    const { role, target, identity, notAfter } = await this.#sessionTarget(session, targetName, (spec) => spec.broker !== undefined && this.#deps.broker !== undefined);
    return withContext({ source: identity.source, subject: identity.subject, role: role.name, granted: true }, async () =>
      brokered(await this.#deps.broker!.credentials(target, identity, role, { ...request, notAfter }), target, role, identity),
    );
  }

  /**
   * RFC 8693 with an stsgate access token as the subject token: the session's role must list the target,
   * the session's grant must hold under today's configuration (as for a chain step), the templates are
   * filled from the root identity's claims, and the token ends no later than any session on the path.
   */
  async targetForSession(session: LiveSession, targetName: string): Promise<TargetToken> {
    const { role, target, identity, notAfter } = await this.#sessionTarget(session, targetName, () => true);
    return withContext({ source: identity.source, subject: identity.subject, role: role.name, granted: true }, () => this.#deps.targets!.mint(target, identity, role, notAfter));
  }

  /**
   * The target a session may reach: its role lists it (and `usable` accepts it), the session's grant
   * holds under today's configuration, and its root identity's sealed claims fill the templates. Ends no
   * later than any session on its path (`notAfter`, epoch seconds).
   */
  async #sessionTarget(session: LiveSession, targetName: string, usable: (target: TargetSpec) => boolean) {
    const context = { source: session.info.source, subject: session.info.subject };
    await this.#admit(context, session.info);
    const role = this.#deps.roles.byName(session.info.role);
    const target = this.#deps.targets?.byName(targetName);
    if (!role || !target || !role.targets.includes(targetName) || !usable(target)) throw targetRefused(targetName, context, `role ${session.info.role} does not list this target (or it does not exist)`);
    const lapsed = this.#lapsedGrant(session);
    const identity = rootIdentityOf(session);
    if (lapsed !== undefined || !identity) {
      throw new GatewayError('AccessDenied', `Not authorized to get a token for target ${targetName}.`, { debug: lapsed ?? 'no root identity', oauthCode: 'invalid_grant', context });
    }
    const notAfter = chainEnd(session);
    return { role, target, identity, notAfter };
  }

  /**
   * Real AWS credentials through a broker target, for a verified identity (a workload's token, a browser
   * or terminal session ending at `notAfter`): the same grant as a target token (a granted role lists
   * the target), then the broker. A target without a broker is refused like one not granted.
   */
  async brokerForIdentity(identity: Identity, targetName: string, options: BrokerRequest = {}): Promise<BrokeredResult> {
    return this.#broker(identity, targetName, (entry) => entry.target.name === targetName, options);
  }

  /** `AssumeRoleWithWebIdentity` whose RoleArn is a broker target's AWS role: the first granted target with that role ARN. */
  async brokerForWebIdentity(token: string, roleArn: string, request: BrokerRequest = {}): Promise<BrokeredResult> {
    const { identity } = await this.#deps.verifyWebIdentityToken(token);
    return this.#broker(identity, roleArn, (entry) => entry.target.broker?.cloud === 'aws' && entry.target.broker.roleArn === roleArn, request);
  }

  /** The broker's credentials for the first granted broker target `matches` accepts. */
  async #broker(identity: Identity, asked: string, matches: (entry: { target: TargetSpec; role: Role }) => boolean, request: BrokerRequest): Promise<BrokeredResult> {
    const broker = this.#deps.broker;
    const { target, role } = await this.#identityTarget(identity, asked, (entry) => broker !== undefined && entry.target.broker !== undefined && matches(entry));
    return withContext({ source: identity.source, subject: identity.subject, role: role.name, granted: true }, async () => brokered(await broker!.credentials(target, identity, role, request), target, role, identity));
  }

  /** Verifies a trusted issuer's JWT (throws the refusal) and returns its identity. */
  async verifyWebIdentity(token: string): Promise<Identity> {
    return (await this.#deps.verifyWebIdentityToken(token)).identity;
  }

  /** Whether some broker target trades for this AWS role (the STS API then brokers instead of issuing stsgate's own keys). */
  isBrokeredRoleArn(roleArn: string): boolean {
    return this.#deps.broker !== undefined && (this.#deps.targets?.brokerRoleArns.has(roleArn) ?? false);
  }

  /** DurationSeconds: default one hour (capped by the role), 900..the role's maximum, else ValidationError as AWS words it. */
  #duration(requested: number | undefined, max: number): number {
    if (requested === undefined) return Math.min(DEFAULT_SESSION_SECONDS, max);
    if (!Number.isInteger(requested) || requested < MIN_SESSION_SECONDS) {
      throw new GatewayError(
        'ValidationError',
        `1 validation error detected: Value '${requested}' at 'durationSeconds' failed to satisfy constraint: Member must have value greater than or equal to ${MIN_SESSION_SECONDS}`,
      );
    }
    if (requested > max) {
      throw new GatewayError('ValidationError', `The requested DurationSeconds exceeds the MaxSessionDuration set for this role (${max} seconds).`);
    }
    return requested;
  }

  /** Requested scopes and audiences must lie within the role's; asking for more is refused, never silently widened. */
  #narrowing(role: Pick<Role, 'scopes' | 'audiences'>, request: ExchangeRequest): { scopes?: readonly string[]; audiences?: readonly string[] } {
    const out: { scopes?: readonly string[]; audiences?: readonly string[] } = {};
    if (request.scopes !== undefined) {
      const extra = request.scopes.filter((s) => !role.scopes.includes(s));
      if (extra.length > 0) throw new GatewayError('invalid_scope', `The role does not grant the requested scope: ${extra.join(' ')}`);
      out.scopes = request.scopes;
    }
    if (request.audiences !== undefined) {
      const extra = request.audiences.filter((a) => !role.audiences.includes(a));
      if (extra.length > 0) throw new GatewayError('invalid_target', `The role does not grant the requested audience: ${extra.join(' ')}`);
      out.audiences = request.audiences;
    }
    return out;
  }
}

/** A session's chain: its root first, the session itself last. */
function pathOf(session: LiveSession): readonly OpenSession[] {
  return [...session.ancestors, session];
}

/** The earliest expiry on a session's chain (epoch seconds): nothing derived from it may outlive that. */
function chainEnd(session: LiveSession): number {
  return Math.min(...pathOf(session).map((open) => open.info.exp));
}

function brokered(credentials: BrokeredCredentials, target: TargetSpec, role: Role, identity: Identity): BrokeredResult {
  return {
    credentials,
    target,
    role,
    identity,
    issuedAt: credentials.issuedAt,
    expiresAt: credentials.expiresAt,
    cached: credentials.cached,
    ...(credentials.upstreamRequestId !== undefined ? { upstreamRequestId: credentials.upstreamRequestId } : {}),
  };
}

/** The one refusal for a target that is not granted and one that does not exist, so probing names learns nothing. */
function targetRefused(targetName: string, context: DecisionContext, debug: string): GatewayError {
  return new GatewayError('AccessDenied', `Not authorized to get a token for target ${JSON.stringify(targetName.slice(0, 64))}.`, { debug, oauthCode: 'invalid_target', context });
}

/**
 * Runs `decide` while `admitted` is pending; the admission's refusal (rate limit) wins over the decision's
 * (a throttled caller learns nothing about its roles), and either is thrown only once admission settled.
 */
async function admittedFirst<T>(admitted: Promise<void>, decide: () => T): Promise<T> {
  let decision: T;
  try {
    decision = decide();
  } catch (err) {
    await admitted;
    throw err;
  }
  return decision;
}

/** Runs `fn`, adding audit context to any GatewayError it throws (sync or async). */
function withContext<T>(context: DecisionContext, fn: () => T): T {
  const annotate = (err: unknown): never => {
    if (err instanceof GatewayError) err.withContext(context);
    throw err;
  };
  try {
    const value = fn();
    return (value instanceof Promise ? value.catch(annotate) : value) as T;
  } catch (err) {
    return annotate(err);
  }
}
