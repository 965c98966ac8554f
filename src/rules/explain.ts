/** Human-readable text for a rule explanation (`stsgate explain`, failing `check-config` tests). */
import type { ConditionOutcome, FoundValue } from './conditions.js';
import type { Explanation, RuleExplanation } from './engine.js';

const MAX_SHOWN = 120;

function show(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > MAX_SHOWN ? `${text.slice(0, MAX_SHOWN)}…` : text;
}

/** "missing", or the JSON type and value: `string "refs/heads/dev"`, `boolean true`, `null`. */
export function formatFound(found: FoundValue): string {
  if (found.missing) return 'missing';
  if (found.type === 'null') return 'null';
  return `${found.type} ${show(found.value)}`;
}

function formatOutcome(outcome: ConditionOutcome, indent: string, lines: string[], onlyFailures: boolean): void {
  if (onlyFailures && outcome.passed) return;
  const mark = outcome.passed ? 'ok  ' : 'FAIL';
  switch (outcome.kind) {
    case 'claim': {
      const caseNote = outcome.ignoreCase ? ', ignoring case' : '';
      lines.push(`${indent}${mark} ${outcome.claim} ${outcome.op} ${show(outcome.expected)}${caseNote}: found ${formatFound(outcome.found)}`);
      return;
    }
    case 'all':
      lines.push(`${indent}${mark} all of (${outcome.passed ? 'every condition held' : 'some condition failed'}):`);
      for (const child of outcome.children) formatOutcome(child, `${indent}    `, lines, onlyFailures);
      return;
    case 'any':
      lines.push(`${indent}${mark} any of (${outcome.passed ? 'one condition held' : 'no condition held'}):`);
      // Show every branch of a failed `any`: each is a way the rule could have matched.
      for (const child of outcome.children) formatOutcome(child, `${indent}    `, lines, false);
      return;
    case 'not':
      lines.push(`${indent}${mark} not (${outcome.passed ? 'the condition did not hold' : 'the condition held'}):`);
      formatOutcome(outcome.child, `${indent}    `, lines, false);
      return;
  }
}

/** Formats one rule's outcome; with `onlyFailures`, lists just the conditions that failed. */
export function formatRuleExplanation(rule: RuleExplanation, onlyFailures = false): string[] {
  const lines = [`rule ${rule.index} ${show(rule.rule)}: ${rule.matched ? `MATCHED, grants ${rule.roles.join(', ')}` : 'no match'}`];
  if (rule.source) {
    const mark = rule.source.passed ? 'ok  ' : 'FAIL';
    if (!(onlyFailures && rule.source.passed)) {
      lines.push(`    ${mark} source equals ${show(rule.source.expected)}: found ${show(rule.source.found)}`);
    }
  }
  for (const outcome of rule.conditions) formatOutcome(outcome, '    ', lines, onlyFailures);
  return lines;
}

/** Formats a whole explanation: the identity, every rule with its conditions, and the roles granted. */
export function formatExplanation(explanation: Explanation): string {
  const lines = [`identity: source ${show(explanation.identity.source)}, subject ${show(explanation.identity.subject)}`];
  for (const rule of explanation.rules) lines.push(...formatRuleExplanation(rule));
  lines.push(explanation.roles.length > 0 ? `roles: ${explanation.roles.join(', ')}` : 'roles: none (no rule matched)');
  return lines.join('\n');
}

/** Why an identity was refused: the rule that came closest and, in `stsgate explain`'s words, what it lacked. */
export interface RefusalExplanation {
  closestRule: string;
  /** The failing lines `stsgate explain` prints under that rule (nested ones keep their extra indentation). */
  failing: string[];
}

/** How many conditions would have to change for `outcome` to hold: a failed `any` needs only its nearest branch. */
function misses(outcome: ConditionOutcome): number {
  if (outcome.passed) return 0;
  switch (outcome.kind) {
    case 'claim':
    case 'not':
      return 1;
    case 'all':
      return outcome.children.reduce((sum, child) => sum + misses(child), 0);
    case 'any':
      return Math.min(...outcome.children.map(misses));
  }
}

/**
 * The rule that came closest to granting `role` (any rule when no role is known): among the rules that
 * did not match, one for the identity's source before one for another, then the fewest failing
 * conditions, then rule order. Undefined when no such rule exists. For the audit log only: a person who
 * was refused is never told which claims would have helped.
 */
export function refusalExplanation(explanation: Explanation, role?: string): RefusalExplanation | undefined {
  let best: { rule: RuleExplanation; score: [number, number] } | undefined;
  for (const rule of explanation.rules) {
    if (rule.matched || (role !== undefined && !rule.roles.includes(role))) continue;
    const score: [number, number] = [rule.source?.passed === false ? 1 : 0, rule.conditions.reduce((sum, c) => sum + misses(c), 0)];
    if (!best || score[0] < best.score[0] || (score[0] === best.score[0] && score[1] < best.score[1])) best = { rule, score };
  }
  if (!best) return undefined;
  return { closestRule: best.rule.rule, failing: formatRuleExplanation(best.rule, true).slice(1).map((line) => line.replace(/^ {4}/, '')) };
}
