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
