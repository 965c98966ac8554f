/**
 * Checks over the chart's source text that need no Helm binary: Go template structure, the `.Values`
 * paths the templates use against values.yaml, and the `# --` documentation of every value.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CHART_DIR, goTemplateProblems, isLeaf, readChartFile, templateFiles, valueEntries, valuesReferences, wholeSubtreeReferences } from './chart.js';

const valuesText = readChartFile('values.yaml');
const entries = valueEntries(valuesText);
const valuePaths = new Set(entries.map((e) => e.path));
const templates = templateFiles().map((file) => ({ file, text: readChartFile(file) }));

/**
 * Keys of the gateway file a template may read under `.Values.config` although values.yaml leaves them
 * out (they are optional sections of the gateway configuration, documented by the gateway).
 */
const OPTIONAL_CONFIG_SECTIONS = new Set(['config.store', 'config.signing', 'config.credentials', 'config.listen']);

describe('Go template structure', () => {
  it('finds the templates', () => {
    expect(templates.map((t) => t.file)).toEqual(
      expect.arrayContaining(['templates/_helpers.tpl', 'templates/deployment.yaml', 'templates/configmap.yaml', 'templates/NOTES.txt']),
    );
  });

  it.each(templateFiles())('%s: balanced {{ }}, every block closed by end', (file) => {
    expect(goTemplateProblems(readChartFile(file))).toEqual([]);
  });

  it.each(templateFiles())('%s: no tab characters (YAML forbids them for indentation)', (file) => {
    expect(readChartFile(file)).not.toContain('\t');
  });

  // The checker itself, on broken input: each row must be caught.
  it.each([
    ['an if without end', '{{ if .Values.a }}x'],
    ['an extra end', '{{ if .a }}x{{ end }}{{ end }}'],
    ['an unclosed action', 'a: {{ .Values.a '],
    ['a stray }}', 'a: .Values.a }}'],
    ['an unclosed comment', '{{/* note }}'],
    ['else outside a block', '{{ else }}'],
    ['a define without end', '{{- define "x" -}}y'],
    ['unbalanced parentheses', '{{ include "x" (dict "a" 1 }}'],
    ['an unterminated string', '{{ printf "%s }}'],
  ])('the checker catches %s', (_name, text) => {
    expect(goTemplateProblems(text)).not.toEqual([]);
  });

  it('the checker accepts trim markers, comments, strings holding braces, and else if', () => {
    expect(goTemplateProblems('{{- /* c */ -}}{{ if .a }}{{ "}}" }}{{- else if .b -}}{{ `{{` }}{{ end }}')).toEqual([]);
  });
});

describe('values used by the templates', () => {
  it.each(templates.map((t) => [t.file, t.text] as const))('%s: every .Values path exists in values.yaml', (_file, text) => {
    const missing = valuesReferences(text).filter((path) => !valuePaths.has(path) && !OPTIONAL_CONFIG_SECTIONS.has(path));
    expect(missing).toEqual([]);
  });

  it('every value in values.yaml is used by a template', () => {
    const allText = templates.map((t) => t.text).join('\n');
    const used = new Set(valuesReferences(allText));
    const wholes = wholeSubtreeReferences(allText);
    // `.Values.config` reaches the templates whole (deepCopy, then toYaml in stsgate.gatewayConfig).
    wholes.push('config');
    const unused = entries
      .filter(isLeaf)
      .map((e) => e.path)
      .filter((path) => !used.has(path) && !wholes.some((whole) => path === whole || path.startsWith(`${whole}.`)));
    expect(unused).toEqual([]);
  });

  it('the gateway configuration reaches the ConfigMap whole', () => {
    expect(readChartFile('templates/_helpers.tpl')).toMatch(/deepCopy \(\.Values\.config \| default dict\)/);
  });
});

describe('values documentation', () => {
  it('every key in values.yaml has a "# --" comment', () => {
    expect(entries.length).toBeGreaterThan(50);
    expect(entries.filter((e) => !e.doc).map((e) => e.path)).toEqual([]);
  });

  it('the production example uses only keys that values.yaml documents (or data under list and free-form values)', () => {
    const example = valueEntries(readChartFile(join('examples', 'production-values.yaml')));
    const freeForm = ['config.', 'ingress.annotations.', 'serviceMonitor.labels.', 'podAnnotations.', 'podLabels.', 'nodeSelector.', 'serviceAccount.annotations.'];
    const unknown = example.map((e) => e.path).filter((path) => !valuePaths.has(path) && !freeForm.some((prefix) => path.startsWith(prefix)));
    expect(unknown).toEqual([]);
  });
});

describe('secrets by reference', () => {
  it.each(templateFiles())('%s renders no Secret object', (file) => {
    expect(readChartFile(file)).not.toMatch(/^kind:\s*Secret\s*$/m);
  });

  it('values.yaml holds no secret value: every secret-looking key is an existingSecret reference', () => {
    const secretish = entries.filter((e) => /password|secret|token|(^|\.)key$/i.test(e.path.split('.').pop() ?? ''));
    for (const entry of secretish) {
      expect(entry.path, `${entry.path} looks like it holds a secret`).toMatch(/existingSecret(Key)?$|sentinelPasswordKey$|automountToken$|^secretEnv$|imagePullSecrets$/);
    }
  });

  it('the chart directory has no file that looks like key material', () => {
    const all = [readChartFile('values.yaml'), readChartFile(join('examples', 'production-values.yaml')), ...templates.map((t) => t.text)].join('\n');
    expect(all).not.toMatch(/-----BEGIN|"d"\s*:|\bAKIA[0-9A-Z]{16}\b/);
    expect(CHART_DIR).toContain(join('helm', 'stsgate'));
  });
});
