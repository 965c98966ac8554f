/**
 * The claim operators, each in one entry: the zod schema of its value as written in a rule, and the
 * predicate it compiles to. Adding an operator is adding an entry here; the condition schema, the
 * `ClaimOperator` type, the problem messages and the compiler all read this table.
 *
 * Semantics, chosen to fail closed (see conditions.ts): strict `===` on JSON scalars; a missing claim
 * (`MISSING`) fails every operator but `exists: false`; string operators need a string claim.
 */
import { z } from 'zod';
import { custom, found } from '../util/validation.js';
import { MISSING, parseClaimPath } from './claim-path.js';
import { compileGlob, compileRegex, foldCase, regexProblem, type StringMatcher } from './patterns.js';

/** A compiled test of one resolved claim value (`MISSING` when absent). */
export type Predicate = (value: unknown) => boolean;

type Scalar = string | number | boolean | null;

const nonEmptyString = z.string().min(1);

/** A JSON scalar: what `equals`, `not_equals`, `contains` and `in`'s members compare with. */
export const jsonScalar = z.union([z.string(), z.number(), z.boolean(), z.null()], {
  error: (issue) => `${found(issue.input)}, expected a string, number, boolean or null`,
});

/** A claim path as written (`repository`, `org.team`). */
export const claimPathSchema = custom<string>((value) => {
  if (typeof value !== 'string') return { problem: `${found(value)}, expected a claim path such as repository or org.team` };
  const parsed = parseClaimPath(value);
  return 'error' in parsed ? { problem: `${found(value)}, expected a dot path of claim names (it has ${parsed.error})` } : { ok: value };
});

const MAX_PATTERN_LENGTH = 1_000;
const regexSchema = custom<string>((value) => {
  if (typeof value !== 'string') return { problem: `${found(value)}, expected an RE2 regular expression` };
  if (value.length > MAX_PATTERN_LENGTH) return { problem: `found a pattern of ${value.length} characters, expected at most ${MAX_PATTERN_LENGTH}` };
  const problem = regexProblem(value);
  return problem === undefined ? { ok: value } : { problem: `${found(value)}, expected an RE2 regular expression (linear-time; no backreferences or lookaround): ${problem}` };
});

function isScalar(value: unknown): value is Scalar {
  return value === null || typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean';
}

/** Strict scalar equality, folding only when both sides are strings and ignore_case is set. */
function scalarEquals(ignoreCase: boolean, expected: unknown): Predicate {
  if (ignoreCase && typeof expected === 'string') {
    const folded = foldCase(expected);
    return (value) => typeof value === 'string' && foldCase(value) === folded;
  }
  return (value) => value === expected;
}

function scalar(op: string, expected: unknown): Scalar {
  if (!isScalar(expected)) throw new Error(`${op} needs a string, number, boolean or null`);
  return expected;
}

function stringPredicate(expected: unknown, op: string, build: (pattern: string) => StringMatcher, ignoreCase: boolean): Predicate {
  if (typeof expected !== 'string') throw new Error(`${op} needs a string value`);
  const matcher = build(ignoreCase ? foldCase(expected) : expected);
  return ignoreCase
    ? (value) => typeof value === 'string' && matcher(foldCase(value))
    : (value) => typeof value === 'string' && matcher(value);
}

/** One operator: its value's schema, and its predicate (throws on a value the schema would refuse, for configs built in code). */
interface OperatorDefinition {
  value: z.ZodType;
  predicate(expected: unknown, ignoreCase: boolean): Predicate;
}

/** Every claim operator, in the order problem messages list them. */
export const OPERATOR_DEFINITIONS = {
  equals: { value: jsonScalar, predicate: (expected, ignoreCase) => scalarEquals(ignoreCase, scalar('equals', expected)) },
  not_equals: {
    value: jsonScalar,
    predicate: (expected, ignoreCase) => {
      const equals = scalarEquals(ignoreCase, scalar('not_equals', expected));
      return (value) => value !== MISSING && !equals(value);
    },
  },
  in: {
    value: z.array(jsonScalar).min(1),
    predicate: (expected, ignoreCase) => {
      if (!Array.isArray(expected) || !expected.every(isScalar)) throw new Error('in needs a list of scalars');
      const members = expected.map((e) => scalarEquals(ignoreCase, e));
      return (value) => value !== MISSING && members.some((m) => m(value));
    },
  },
  contains: {
    value: jsonScalar,
    predicate: (expected, ignoreCase) => {
      const equals = scalarEquals(ignoreCase, scalar('contains', expected));
      return (value) => Array.isArray(value) && value.some((element) => equals(element));
    },
  },
  starts_with: { value: nonEmptyString, predicate: (expected, ignoreCase) => stringPredicate(expected, 'starts_with', (p) => (v) => v.startsWith(p), ignoreCase) },
  ends_with: { value: nonEmptyString, predicate: (expected, ignoreCase) => stringPredicate(expected, 'ends_with', (p) => (v) => v.endsWith(p), ignoreCase) },
  glob: { value: z.string(), predicate: (expected, ignoreCase) => stringPredicate(expected, 'glob', compileGlob, ignoreCase) },
  matches: {
    value: regexSchema,
    predicate: (expected, ignoreCase) => {
      // Folding a regex's source would corrupt escapes such as \D or \S, and RE2's own case folding
      // treats U+212A KELVIN SIGN as "k"; config validation refuses ignore_case here for both reasons.
      if (ignoreCase) throw new Error('ignore_case is not supported with matches');
      return stringPredicate(expected, 'matches', compileRegex, false);
    },
  },
  exists: {
    value: z.boolean(),
    predicate: (expected) => {
      if (typeof expected !== 'boolean') throw new Error('exists needs a boolean value');
      return (value) => (value !== MISSING) === expected;
    },
  },
} as const satisfies Record<string, OperatorDefinition>;

/** A claim operator's name, as written in a rule. */
export type ClaimOperator = keyof typeof OPERATOR_DEFINITIONS;

/** The operators' names, in table order. */
export const CLAIM_OPERATORS = Object.keys(OPERATOR_DEFINITIONS) as ClaimOperator[];

/** The value an operator takes, as written. */
export type OperatorValue<Op extends ClaimOperator> = z.output<(typeof OPERATOR_DEFINITIONS)[Op]['value']>;
