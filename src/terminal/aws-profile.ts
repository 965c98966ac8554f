/**
 * `stsgate configure`'s edit of the AWS shared config file (`~/.aws/config`): one profile whose
 * `credential_process` runs `stsgate credentials`, and for a role a `services` section that sends the
 * profile's STS calls to the gateway (AWS SDKs and tools reference, "Service-specific endpoints":
 * `services = NAME` in the profile, then `[services NAME]` with `sts =` and an indented `endpoint_url`).
 *
 * The file is edited as text, section by section, not parsed and written back: the rest of it (other
 * profiles, comments, blank lines, line endings) must come out byte for byte as it went in, and INI
 * libraries drop comments or reorder keys.
 */

/** What the profile says. */
export interface AwsProfile {
  /** The profile's name (`default` is `[default]`, any other `[profile NAME]`). */
  name: string;
  /** The `credential_process` command line, already quoted. */
  credentialProcess: string;
  region: string;
  /** Where the profile's STS calls go (for stsgate's own keys); absent: AWS's own STS (a broker target's real keys). */
  stsEndpoint?: string;
}

/** A profile name the AWS CLI accepts in a section header and on its command line, kept simple. */
export const PROFILE_NAME = /^[A-Za-z0-9_.@+-]{1,64}$/;

/** The `[services …]` section stsgate writes for a profile. */
export function servicesSectionName(profile: string): string {
  return `stsgate-${profile}`;
}

/**
 * `words` as one command line that both the AWS CLI (Python's shlex, POSIX rules) and the SDKs that
 * hand it to `/bin/sh` split back into the same words: plain words as they are, others single-quoted.
 */
export function commandLine(words: string[]): string {
  return words.map((word) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`)).join(' ');
}

/** The config text with the profile (and its services section) written in: replaced where they are, else appended. */
export function writeAwsProfile(text: string, profile: AwsProfile): string {
  const services = servicesSectionName(profile.name);
  const profileLines = [
    `credential_process = ${profile.credentialProcess}`,
    `region = ${profile.region}`,
    ...(profile.stsEndpoint !== undefined ? [`services = ${services}`] : []),
  ];
  let next = replaceSection(text, profile.name === 'default' ? 'default' : `profile ${profile.name}`, profileLines);
  next = replaceSection(next, `services ${services}`, profile.stsEndpoint !== undefined ? ['sts =', `  endpoint_url = ${profile.stsEndpoint}`] : undefined);
  return next;
}

/** A section header's name, as the AWS CLI reads it: `[ profile  dev ]` is `profile dev`. */
function headerName(line: string): string | undefined {
  const match = /^\s*\[([^\]]*)\]\s*(?:[#;].*)?$/.exec(line);
  return match ? match[1]!.trim().split(/\s+/).join(' ') : undefined;
}

const isComment = (line: string) => /^\s*[#;]/.test(line);
const isBlank = (line: string) => line.trim() === '';

/**
 * Replaces the section named `name` (header to the next header) with `body` under a fresh header, or
 * removes it (`body` undefined), or appends it when there is none. The comments and blank lines just
 * before the next section are left in place (they are that section's, or the end of the file); those
 * between the old section's own lines go with it. Every other line is untouched.
 */
export function replaceSection(text: string, name: string, body: string[] | undefined): string {
  const eol = text.includes('\r\n') ? '\r\n' : '\n';
  const lines = text === '' ? [] : text.split(/\r?\n/);
  // A final newline leaves an empty last element: keep it out of the sections, put it back at the end.
  const endsWithNewline = lines.length > 0 && lines.at(-1) === '';
  if (endsWithNewline) lines.pop();
  const section = body === undefined ? [] : [`[${name}]`, ...body];

  const start = lines.findIndex((line) => headerName(line) === name);
  let result: string[];
  if (start === -1) {
    if (section.length === 0) return text;
    const separator = lines.length > 0 && !isBlank(lines.at(-1)!) ? [''] : [];
    result = [...lines, ...separator, ...section];
  } else {
    let end = lines.findIndex((line, i) => i > start && headerName(line) !== undefined);
    if (end === -1) end = lines.length;
    // Keep the run of comments and blank lines that ends the old section.
    let keepFrom = end;
    while (keepFrom > start + 1 && (isComment(lines[keepFrom - 1]!) || isBlank(lines[keepFrom - 1]!))) keepFrom -= 1;
    const kept = lines.slice(keepFrom, end);
    // A removed section takes its blank separator with it; a replaced one is followed by one as before.
    const tail = section.length === 0 && kept.every(isBlank) ? [] : kept;
    result = [...lines.slice(0, start), ...section, ...tail, ...lines.slice(end)];
    if (section.length === 0 && start > 0 && isBlank(result[start - 1]!) && (start === result.length || isBlank(result[start]!))) result.splice(start - 1, 1);
  }
  return result.length === 0 ? '' : `${result.join(eol)}${eol}`;
}

/**
 * A unified diff (`diff -u`, three lines of context) of two texts, line by line; empty when they are the
 * same. For config files (hundreds of lines): the longest common subsequence, quadratic.
 */
export function unifiedDiff(before: string, after: string, names: { from: string; to: string }): string {
  if (before === after) return '';
  const a = splitLines(before);
  const b = splitLines(after);
  // lcs[i][j]: the longest common subsequence of a[i..] and b[j..].
  const lcs = Array.from({ length: a.length + 1 }, () => new Array<number>(b.length + 1).fill(0));
  for (let i = a.length - 1; i >= 0; i -= 1) for (let j = b.length - 1; j >= 0; j -= 1) lcs[i]![j] = a[i] === b[j] ? lcs[i + 1]![j + 1]! + 1 : Math.max(lcs[i + 1]![j]!, lcs[i]![j + 1]!);
  const ops: { kind: ' ' | '-' | '+'; line: string }[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    if (i < a.length && j < b.length && a[i] === b[j]) {
      ops.push({ kind: ' ', line: a[i]! });
      i += 1;
      j += 1;
    } else if (i < a.length && (j === b.length || lcs[i + 1]![j]! >= lcs[i]![j + 1]!)) {
      // Removals before additions, as diff -u shows a changed line.
      ops.push({ kind: '-', line: a[i++]! });
    } else {
      ops.push({ kind: '+', line: b[j++]! });
    }
  }
  const CONTEXT = 3;
  const out = [`--- ${names.from}`, `+++ ${names.to}`];
  const changed = ops.map((op, k) => (op.kind !== ' ' ? k : -1)).filter((k) => k >= 0);
  let k = 0;
  while (k < changed.length) {
    const first = Math.max(0, changed[k]! - CONTEXT);
    let last = changed[k]!;
    while (k + 1 < changed.length && changed[k + 1]! - last <= 2 * CONTEXT) last = changed[++k]!;
    last = Math.min(ops.length - 1, last + CONTEXT);
    k += 1;
    const hunk = ops.slice(first, last + 1);
    // Line numbers: where the hunk starts in each file (1-based), and how many lines of each it covers.
    const oldCount = hunk.filter((op) => op.kind !== '+').length;
    const newCount = hunk.filter((op) => op.kind !== '-').length;
    const before = ops.slice(0, first);
    const oldStart = before.filter((op) => op.kind !== '+').length + (oldCount > 0 ? 1 : 0);
    const newStart = before.filter((op) => op.kind !== '-').length + (newCount > 0 ? 1 : 0);
    out.push(`@@ -${oldStart},${oldCount} +${newStart},${newCount} @@`, ...hunk.map((op) => `${op.kind}${op.line}`));
  }
  return `${out.join('\n')}\n`;
}

function splitLines(text: string): string[] {
  const lines = text.split(/\r?\n/);
  if (lines.at(-1) === '') lines.pop();
  return lines;
}
