/**
 * The rule vocabulary: what a rule and its conditions look like as written (zod schemas, with the
 * problem messages) and as the engine reads them (the schemas' output). config/schema.ts embeds
 * `ruleSchema`; nothing here imports config/. Operators come from operators.ts.
 */
import { z } from 'zod';
import { closest, isMapping, strict } from '../util/validation.js';
import { CLAIM_OPERATORS, OPERATOR_DEFINITIONS, claimPathSchema, type ClaimOperator } from './operators.js';

export { CLAIM_OPERATORS, type ClaimOperator } from './operators.js';

/** The combinators a condition may hold instead of a claim condition. */
export const COMBINATORS = ['all', 'any', 'not'] as const;

/**
 * One condition on an identity. `claim` is a dot path into `claims` only (`sub` is a claim); the identity's
 * source is matched by `RuleConfig.match.source`, so a token cannot pose as a source through a claim.
 */
export type Condition = { all: Condition[] } | { any: Condition[] } | { not: Condition } | ClaimCondition;

export interface ClaimCondition {
  claim: string;
  op: ClaimOperator;
  /** string | number | boolean | null for most ops; an array for `in`; a boolean for `exists`. */
  value: unknown;
  ignoreCase: boolean;
}

const CONDITION_KEYS = ['claim', ...CLAIM_OPERATORS, 'ignore_case', ...COMBINATORS];
const MATCH_KEYS = ['source', ...CONDITION_KEYS];

/** A condition object after its fields were validated (nested conditions already converted). */
type ValidatedCondition = { claim?: string; ignore_case?: boolean; all?: Condition[]; any?: Condition[]; not?: Condition } & { [op: string]: unknown };

function conditionFields() {
  const operators = Object.fromEntries(CLAIM_OPERATORS.map((op) => [op, OPERATOR_DEFINITIONS[op].value.optional()])) as {
    [Op in ClaimOperator]: z.ZodOptional<(typeof OPERATOR_DEFINITIONS)[Op]['value']>;
  };
  return {
    claim: claimPathSchema.optional(),
    ...operators,
    ignore_case: z.boolean().optional(),
    all: z.array(z.lazy(() => conditionSchema)).min(1).optional(),
    any: z.array(z.lazy(() => conditionSchema)).min(1).optional(),
    not: z.lazy(() => conditionSchema).optional(),
  };
}

function present(value: Record<string, unknown>, keys: readonly string[]): string[] {
  return keys.filter((k) => Object.hasOwn(value, k));
}

const quoted = (keys: string[]) => keys.map((k) => JSON.stringify(k)).join(' and ');

/** Shape rules for a condition object (or a rule's match), which zod's field types cannot express. */
function checkConditionShape(value: Record<string, unknown>, ctx: z.RefinementCtx, isMatch: boolean): void {
  const allowed = isMatch ? MATCH_KEYS : CONDITION_KEYS;
  const operators = present(value, CLAIM_OPERATORS);
  const combinators = present(value, COMBINATORS);
  const unknown = Object.keys(value).filter((k) => !allowed.includes(k));
  const claimForm = Object.hasOwn(value, 'claim') || operators.length > 0 || Object.hasOwn(value, 'ignore_case');
  const issue = (message: string) => ctx.addIssue({ code: 'custom', path: [], message });

  for (const key of unknown) {
    const guess = closest(key, allowed);
    const isOperatorGuess = guess !== undefined && (CLAIM_OPERATORS as readonly string[]).includes(guess);
    if (guess !== undefined) issue(`unknown ${isOperatorGuess ? 'operator' : 'key'} ${JSON.stringify(key)}; did you mean ${JSON.stringify(guess)}?`);
    else if (claimForm) issue(`unknown operator ${JSON.stringify(key)}; operators: ${CLAIM_OPERATORS.join(', ')}`);
    else issue(`unknown key ${JSON.stringify(key)}; allowed keys: ${allowed.join(', ')}`);
  }

  if (!isMatch) {
    if (combinators.length > 1) issue(`found ${quoted(combinators)} together, expected one combinator per condition (nest them under all)`);
    else if (combinators.length === 1 && claimForm) issue(`found ${JSON.stringify(combinators[0])} next to a claim condition, expected one per condition (put both under all)`);
  }

  if (claimForm) {
    if (!Object.hasOwn(value, 'claim')) {
      issue(`missing claim, expected claim: <dot.path> next to ${operators.length > 0 ? JSON.stringify(operators[0]) : 'the operator'}`);
    } else if (operators.length === 0 && unknown.length === 0) {
      issue(`found claim ${JSON.stringify(value.claim)} without an operator, expected one of ${CLAIM_OPERATORS.join(', ')}`);
    }
    if (operators.length > 1) issue(`found operators ${quoted(operators)}, expected exactly one per condition (combine conditions with all)`);
    if (value.ignore_case === true && operators.includes('matches')) {
      issue(`found ignore_case with matches, expected the pattern to accept both cases itself (e.g. [Aa]); ignore_case folds plain strings only`);
    }
    if (value.ignore_case === true && operators.includes('exists')) issue(`found ignore_case with exists, expected it only with operators that compare strings`);
  } else if (combinators.length === 0 && unknown.length === 0) {
    if (!isMatch) issue(`found an empty condition, expected { claim: <dot.path>, <operator>: <value> } or all, any, not`);
    else if (!Object.hasOwn(value, 'source')) issue(`found an empty match, expected a source and/or conditions`);
  }
}

/** The claim condition an object holds, if any (its shape was checked: at most one operator). */
function claimCondition(raw: ValidatedCondition): ClaimCondition | undefined {
  const op = CLAIM_OPERATORS.find((o) => Object.hasOwn(raw, o));
  if (op === undefined || raw.claim === undefined) return undefined;
  return { claim: raw.claim, op, value: raw[op], ignoreCase: raw.ignore_case ?? false };
}

/** Converts one validated condition; a condition object holds exactly one form. */
function toCondition(raw: ValidatedCondition): Condition {
  if (raw.all !== undefined) return { all: raw.all };
  if (raw.any !== undefined) return { any: raw.any };
  if (raw.not !== undefined) return { not: raw.not };
  return claimCondition(raw)!;
}

/** One condition as written, converted to a `Condition`. */
export const conditionSchema: z.ZodType<Condition> = z
  .looseObject(conditionFields())
  .superRefine((value, ctx) => checkConditionShape(value, ctx, false), { when: (payload) => isMapping(payload.value) })
  .transform((value) => toCondition(value as ValidatedCondition));

/**
 * A rule's match: an optional source, and any of a claim condition, all, any, not, flattened to ANDed
 * conditions: the claim condition, then all's items, then any, then not.
 */
export const matchSchema = z
  .looseObject({ source: z.string().min(1).optional(), ...conditionFields() })
  .superRefine((value, ctx) => checkConditionShape(value, ctx, true), { when: (payload) => isMapping(payload.value) })
  .transform((value): { source?: string; conditions: Condition[] } => {
    const match = value as ValidatedCondition & { source?: string };
    const conditions: Condition[] = [];
    const single = claimCondition(match);
    if (single) conditions.push(single);
    if (match.all) conditions.push(...match.all);
    if (match.any) conditions.push({ any: match.any });
    if (match.not) conditions.push({ not: match.not });
    return { ...(match.source !== undefined ? { source: match.source } : {}), conditions };
  });

/** A rule: when its match holds, the identity may assume its roles. */
export const ruleSchema = strict({ name: z.string().min(1), match: matchSchema, roles: z.array(z.string().min(1)).min(1) }).transform(({ name, match, roles }) => ({ name, match, roles }));

/** A rule as the engine reads it; `match.source` restricts it to one provider or issuer id. */
export type RuleConfig = z.output<typeof ruleSchema>;
