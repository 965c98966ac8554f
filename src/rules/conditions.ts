/**
 * Compiles one condition into a predicate over an identity's claims, and into an explainer that says
 * what it expected and what it found.
 *
 * Semantics, chosen to fail closed:
 * - Types are strict: `===` on JSON scalars, so the string "true" is not `true` and 1 is not "1".
 * - A missing claim fails every operator, including `not_equals` (absence is not evidence of being
 *   different); only `exists: false` matches a missing claim. `null` is a present value.
 * - `contains` needs an array claim; `starts_with`, `ends_with`, `glob` and `matches` need a string claim.
 *   Any other type simply does not match.
 * - `ignore_case` folds strings on both sides with `foldCase`; non-string values still compare strictly.
 */
import { MISSING, parseClaimPath, resolveClaim } from './claim-path.js';
import { OPERATOR_DEFINITIONS, type ClaimOperator } from './operators.js';
import type { ClaimCondition, Condition } from './vocabulary.js';

/** What a claim path resolved to, for explanations. */
export type FoundValue =
  | { missing: true }
  | { missing: false; type: 'string' | 'number' | 'boolean' | 'null' | 'array' | 'object'; value: unknown };

/** The outcome of one condition against one identity, with enough detail to say why. */
export type ConditionOutcome =
  | {
      kind: 'claim';
      passed: boolean;
      claim: string;
      op: ClaimOperator;
      expected: unknown;
      ignoreCase: boolean;
      found: FoundValue;
    }
  | { kind: 'all' | 'any'; passed: boolean; children: ConditionOutcome[] }
  | { kind: 'not'; passed: boolean; child: ConditionOutcome };

/** A condition compiled once: `test` is the fast path, `explain` the detailed one. */
export interface CompiledCondition {
  test(claims: unknown): boolean;
  explain(claims: unknown): ConditionOutcome;
}

/** Compiles a condition; throws on a malformed claim path, pattern or value (config validation prevents these). */
export function compileCondition(condition: Condition): CompiledCondition {
  if ('all' in condition) {
    const children = condition.all.map(compileCondition);
    return {
      test: (claims) => children.every((c) => c.test(claims)),
      explain: (claims) => {
        const outcomes = children.map((c) => c.explain(claims));
        return { kind: 'all', passed: outcomes.every((o) => o.passed), children: outcomes };
      },
    };
  }
  if ('any' in condition) {
    const children = condition.any.map(compileCondition);
    return {
      test: (claims) => children.some((c) => c.test(claims)),
      explain: (claims) => {
        const outcomes = children.map((c) => c.explain(claims));
        return { kind: 'any', passed: outcomes.some((o) => o.passed), children: outcomes };
      },
    };
  }
  if ('not' in condition) {
    const child = compileCondition(condition.not);
    return {
      test: (claims) => !child.test(claims),
      explain: (claims) => {
        const outcome = child.explain(claims);
        return { kind: 'not', passed: !outcome.passed, child: outcome };
      },
    };
  }
  return compileClaimCondition(condition);
}

function compileClaimCondition(condition: ClaimCondition): CompiledCondition {
  const parsed = parseClaimPath(condition.claim);
  if ('error' in parsed) throw new Error(`claim path "${condition.claim}" has ${parsed.error}`);
  const segments = parsed.segments;
  const predicate = compilePredicate(condition);
  const test = (claims: unknown) => {
    const value = resolveClaim(claims, segments);
    return predicate(value);
  };
  return {
    test,
    explain: (claims) => {
      const value = resolveClaim(claims, segments);
      return {
        kind: 'claim',
        passed: predicate(value),
        claim: condition.claim,
        op: condition.op,
        expected: condition.value,
        ignoreCase: condition.ignoreCase,
        found: describeFound(value),
      };
    },
  };
}

/** The operator's predicate, from its entry in operators.ts; throws on a value validation would refuse. */
function compilePredicate(condition: ClaimCondition) {
  // Own keys only: an operator named `toString` or `__proto__` is unknown, not inherited.
  if (!Object.hasOwn(OPERATOR_DEFINITIONS, condition.op)) throw new Error(`unknown operator ${String(condition.op)}`);
  return OPERATOR_DEFINITIONS[condition.op].predicate(condition.value, condition.ignoreCase);
}

/** Describes a resolved claim value for explanations. */
export function describeFound(value: unknown): FoundValue {
  if (value === MISSING) return { missing: true };
  if (value === null) return { missing: false, type: 'null', value };
  if (Array.isArray(value)) return { missing: false, type: 'array', value };
  switch (typeof value) {
    case 'string':
      return { missing: false, type: 'string', value };
    case 'number':
      return { missing: false, type: 'number', value };
    case 'boolean':
      return { missing: false, type: 'boolean', value };
    default:
      return { missing: false, type: 'object', value };
  }
}
