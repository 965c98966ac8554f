/**
 * The rule engine: ordered rules compiled once into an index, evaluated against an identity.
 *
 * Indexing: rules are bucketed by `match.source` (rules without one sit in a shared bucket), and inside a
 * bucket by the value of one top-level `equals` (else `in`) condition, keyed by claim path. Evaluation
 * resolves each indexed path once, collects the candidate rules from the hit buckets plus the rules that
 * could not be indexed, merges them back into rule order, and checks every condition of each candidate.
 * Skipping a rule is safe because an `equals`/`in` condition can only pass when the claim's value is one
 * of the indexed keys, and every condition of a rule is ANDed.
 */
import type { Identity } from '../domain/types.js';
import type { ClaimCondition, Condition, RuleConfig } from './vocabulary.js';
import { parseClaimPath, resolveClaim } from './claim-path.js';
import { compileCondition, type CompiledCondition, type ConditionOutcome } from './conditions.js';
import { foldCase } from './patterns.js';

/** One rule that matched during evaluation. */
export interface MatchedRule {
  rule: string;
  index: number;
  roles: string[];
}

/** The result of evaluating an identity: granted roles (deduplicated, first-seen order) and matching rules. */
export interface Evaluation {
  roles: string[];
  matched: MatchedRule[];
}

/** Why one rule did or did not match. */
export interface RuleExplanation {
  index: number;
  rule: string;
  roles: string[];
  matched: boolean;
  /** Present when the rule names a source. */
  source?: { expected: string; found: string; passed: boolean };
  conditions: ConditionOutcome[];
}

/** Every rule's outcome for one identity, and the roles it is granted. */
export interface Explanation {
  identity: { source: string; subject: string };
  rules: RuleExplanation[];
  roles: string[];
}

/** Compiled rules: evaluate, grant and explain. Pure: no I/O, no clock. */
export interface RuleEngine {
  /** All matching rules in order, and the union of their roles. */
  evaluate(identity: Identity): Evaluation;
  /** The first rule, in order, that matches and grants `roleName`; undefined when none does. */
  grant(identity: Identity, roleName: string): { rule: string } | undefined;
  /** Per rule: matched or not, and for each condition what was expected and found. Scans every rule. */
  explain(identity: Identity): Explanation;
  /** Number of compiled rules. */
  readonly size: number;
}

interface CompiledRule {
  index: number;
  name: string;
  roles: string[];
  source: string | undefined;
  conditions: CompiledCondition[];
}

/** Rules sharing one claim path (and case mode) as index key. */
interface IndexGroup {
  segments: string[];
  ignoreCase: boolean;
  byValue: Map<string, number[]>;
}

interface Bucket {
  /** Rules with no indexable condition: always candidates for this bucket. */
  unindexed: number[];
  groups: Map<string, IndexGroup>;
}

/** Type-tagged key so that "1", 1 and true never share a bucket (strict types). */
function indexKey(value: unknown, ignoreCase: boolean): string | undefined {
  switch (typeof value) {
    case 'string':
      return `s${ignoreCase ? foldCase(value) : value}`;
    case 'number':
      return `n${value}`;
    case 'boolean':
      return value ? 'bt' : 'bf';
    default:
      return value === null ? 'z' : undefined;
  }
}

/** The condition a rule is indexed by: its first top-level `equals`, else its first top-level `in`. */
function indexCondition(conditions: readonly Condition[]): ClaimCondition | undefined {
  const claims = conditions.filter((c): c is ClaimCondition => 'op' in c);
  return claims.find((c) => c.op === 'equals') ?? claims.find((c) => c.op === 'in');
}

function newBucket(): Bucket {
  return { unindexed: [], groups: new Map() };
}

function addToIndex(bucket: Bucket, rule: CompiledRule, condition: ClaimCondition | undefined): void {
  if (!condition) {
    bucket.unindexed.push(rule.index);
    return;
  }
  const parsed = parseClaimPath(condition.claim);
  if ('error' in parsed) throw new Error(`rule "${rule.name}": claim path "${condition.claim}" has ${parsed.error}`);
  const groupKey = `${condition.ignoreCase ? 'i' : 'e'}${JSON.stringify(parsed.segments)}`;
  let group = bucket.groups.get(groupKey);
  if (!group) {
    group = { segments: parsed.segments, ignoreCase: condition.ignoreCase, byValue: new Map() };
    bucket.groups.set(groupKey, group);
  }
  const values = condition.op === 'in' ? (condition.value as unknown[]) : [condition.value];
  for (const value of values) {
    const key = indexKey(value, condition.ignoreCase);
    if (key === undefined) throw new Error(`rule "${rule.name}": ${condition.op} needs scalar values`);
    const list = group.byValue.get(key);
    if (!list) group.byValue.set(key, [rule.index]);
    // An `in` list may name the same value twice (or twice after folding): keep the rule once.
    else if (list[list.length - 1] !== rule.index) list.push(rule.index);
  }
}

/** Merges ascending lists of rule indexes into one ascending list without duplicates. */
function mergeAscending(lists: number[][]): number[] {
  if (lists.length === 0) return [];
  if (lists.length === 1) return lists[0]!;
  let merged = lists[0]!;
  for (let l = 1; l < lists.length; l++) {
    const other = lists[l]!;
    const out: number[] = [];
    let i = 0;
    let j = 0;
    while (i < merged.length && j < other.length) {
      const a = merged[i]!;
      const b = other[j]!;
      if (a < b) {
        out.push(a);
        i++;
      } else if (b < a) {
        out.push(b);
        j++;
      } else {
        out.push(a);
        i++;
        j++;
      }
    }
    while (i < merged.length) out.push(merged[i++]!);
    while (j < other.length) out.push(other[j++]!);
    merged = out;
  }
  return merged;
}

/** Compiles ordered rules once; throws when a rule names an unknown role or holds a malformed condition. */
export function compileRules(config: { rules: readonly RuleConfig[]; roles: readonly { name: string }[] }): RuleEngine {
  const roleNames = new Set(config.roles.map((r) => r.name));
  const rules: CompiledRule[] = config.rules.map((rule, index) => {
    for (const role of rule.roles) {
      if (!roleNames.has(role)) throw new Error(`rule "${rule.name}" grants unknown role "${role}"`);
    }
    return {
      index,
      name: rule.name,
      roles: [...rule.roles],
      source: rule.match.source,
      conditions: rule.match.conditions.map(compileCondition),
    };
  });

  const anySource = newBucket();
  const bySource = new Map<string, Bucket>();
  for (const rule of rules) {
    let bucket = anySource;
    if (rule.source !== undefined) {
      bucket = bySource.get(rule.source) ?? newBucket();
      bySource.set(rule.source, bucket);
    }
    addToIndex(bucket, rule, indexCondition(config.rules[rule.index]!.match.conditions));
  }

  function candidates(identity: Identity): number[] {
    const lists: number[][] = [];
    for (const bucket of [bySource.get(identity.source), anySource]) {
      if (!bucket) continue;
      if (bucket.unindexed.length > 0) lists.push(bucket.unindexed);
      for (const group of bucket.groups.values()) {
        const key = indexKey(resolveClaim(identity.claims, group.segments), group.ignoreCase);
        if (key === undefined) continue;
        const hit = group.byValue.get(key);
        if (hit) lists.push(hit);
      }
    }
    return mergeAscending(lists);
  }

  function matches(rule: CompiledRule, identity: Identity): boolean {
    if (rule.source !== undefined && rule.source !== identity.source) return false;
    for (const condition of rule.conditions) if (!condition.test(identity.claims)) return false;
    return true;
  }

  return {
    size: rules.length,
    evaluate(identity) {
      const roles: string[] = [];
      const seen = new Set<string>();
      const matched: MatchedRule[] = [];
      for (const index of candidates(identity)) {
        const rule = rules[index]!;
        if (!matches(rule, identity)) continue;
        matched.push({ rule: rule.name, index, roles: [...rule.roles] });
        for (const role of rule.roles) {
          if (!seen.has(role)) {
            seen.add(role);
            roles.push(role);
          }
        }
      }
      return { roles, matched };
    },
    grant(identity, roleName) {
      for (const index of candidates(identity)) {
        const rule = rules[index]!;
        if (rule.roles.includes(roleName) && matches(rule, identity)) return { rule: rule.name };
      }
      return undefined;
    },
    explain(identity) {
      const explained = rules.map((rule): RuleExplanation => {
        const conditions = rule.conditions.map((c) => c.explain(identity.claims));
        const source =
          rule.source === undefined ? undefined : { expected: rule.source, found: identity.source, passed: rule.source === identity.source };
        const matched = (source?.passed ?? true) && conditions.every((c) => c.passed);
        return { index: rule.index, rule: rule.name, roles: [...rule.roles], matched, ...(source ? { source } : {}), conditions };
      });
      const roles: string[] = [];
      for (const rule of explained) if (rule.matched) for (const role of rule.roles) if (!roles.includes(role)) roles.push(role);
      return { identity: { source: identity.source, subject: identity.subject }, rules: explained, roles };
    },
  };
}
