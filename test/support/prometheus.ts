/** Parses Prometheus text exposition (v0.0.4) into samples, checking each line's shape as it goes. */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+\d+)?$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

export function parsePrometheusText(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('# HELP ') || line.startsWith('# TYPE ')) continue;
    const match = SAMPLE.exec(line);
    if (!match) throw new Error(`not a Prometheus sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, key, value] of (match[3] ?? '').matchAll(LABEL)) labels[key!] = value!.replace(/\\(.)/g, '$1');
    const value = sampleValue(match[4]!);
    if (value === undefined) throw new Error(`bad value in: ${line}`);
    samples.push({ name: match[1]!, labels, value });
  }
  return samples;
}

/** Sum of the samples named `name` whose labels include `labels`. */
export function sumOf(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  return samples
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((sum, s) => sum + s.value, 0);
}

/**
 * A sample value as Prometheus reads it (Go's strconv.ParseFloat): a decimal, or Inf / NaN in any letter
 * case with an optional sign on Inf. prom-client writes an empty gauge's NaN as "Nan", which Prometheus
 * accepts.
 */
function sampleValue(text: string): number | undefined {
  if (/^nan$/i.test(text)) return NaN;
  const infinity = /^([+-]?)inf(inity)?$/i.exec(text);
  if (infinity) return infinity[1] === '-' ? -Infinity : Infinity;
  const value = Number(text);
  return Number.isNaN(value) || text.trim() === '' ? undefined : value;
}

/** GETs `<baseUrl>/metrics` (the admin listener's URL), checks it answers Prometheus text, and parses it. */
export async function scrapeMetrics(baseUrl: string): Promise<Sample[]> {
  const res = await fetch(`${baseUrl}/metrics`);
  const text = await res.text();
  if (res.status !== 200) throw new Error(`GET ${baseUrl}/metrics: ${res.status} ${text.slice(0, 200)}`);
  return parsePrometheusText(text);
}
