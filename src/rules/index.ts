/** The rules module: pure evaluation of identities against ordered rules. No I/O. */
export { compileRules } from './engine.js';
export type { RuleEngine, Evaluation, MatchedRule, Explanation, RuleExplanation } from './engine.js';
export type { ConditionOutcome, FoundValue } from './conditions.js';
export { formatExplanation, formatRuleExplanation, formatFound, refusalExplanation } from './explain.js';
export type { RefusalExplanation } from './explain.js';
export { parseClaimPath, resolveClaim, MISSING } from './claim-path.js';
export { foldCase, compileGlob, compileRegex, regexProblem } from './patterns.js';
