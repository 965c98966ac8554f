/**
 * `stsgate configure`'s text edit of the AWS config file: a profile and its services section replaced or
 * appended, everything else (other profiles, comments, blank lines, CRLF) kept byte for byte; the quoting
 * of the credential_process line; the unified diff it shows.
 */
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { commandLine, replaceSection, unifiedDiff, writeAwsProfile } from '../../src/terminal/aws-profile.js';

const OTHERS = `# my AWS config: keep this comment
[default]
region = eu-west-1 ; and this one

# the work account
[profile work]
region = eu-central-1
output = json
`;

const DEV = { name: 'dev', credentialProcess: '/usr/bin/stsgate credentials --role deployer --gateway https://sts.example.com', region: 'us-east-1', stsEndpoint: 'https://sts.example.com' };

const DEV_SECTIONS = `[profile dev]
credential_process = /usr/bin/stsgate credentials --role deployer --gateway https://sts.example.com
region = us-east-1
services = stsgate-dev

[services stsgate-dev]
sts =
  endpoint_url = https://sts.example.com
`;

describe('writeAwsProfile', () => {
  it.each([
    ['an empty file', '', DEV_SECTIONS],
    ['a file with other profiles and comments: appended after a blank line', OTHERS, `${OTHERS}\n${DEV_SECTIONS}`],
    ['a file without a final newline', OTHERS.trimEnd(), `${OTHERS}\n${DEV_SECTIONS}`],
    [
      'an existing dev profile between others: replaced in place, its own comments gone, the next section\'s comment kept',
      `[profile dev]\n# old\nregion = ap-south-1\ncredential_process = old\n\n# the work account\n[profile work]\nregion = eu-central-1\n`,
      `${DEV_SECTIONS.replace('\n\n[services stsgate-dev]', '\n\n# the work account\n[profile work]\nregion = eu-central-1\n\n[services stsgate-dev]')}`,
    ],
    ['the same profile again: no change', `${OTHERS}\n${DEV_SECTIONS}`, `${OTHERS}\n${DEV_SECTIONS}`],
    ['a header written with extra spaces', `[ profile   dev ]\nregion = x\n`, DEV_SECTIONS],
  ])('%s', (_what, before, after) => {
    expect(writeAwsProfile(before, DEV)).toBe(after);
  });

  it('keeps CRLF line endings', () => {
    const crlf = OTHERS.replace(/\n/g, '\r\n');
    expect(writeAwsProfile(crlf, DEV)).toBe(`${OTHERS}\n${DEV_SECTIONS}`.replace(/\n/g, '\r\n'));
  });

  it('the default profile is [default]', () => {
    const written = writeAwsProfile(OTHERS, { ...DEV, name: 'default' });
    expect(written).toContain('# my AWS config: keep this comment\n[default]\ncredential_process = /usr/bin/stsgate');
    expect(written).toContain('# the work account\n[profile work]\nregion = eu-central-1\noutput = json\n');
    expect(written.match(/^\[default\]$/gm)).toHaveLength(1);
  });

  it('a broker target (real AWS keys): no services section, and one written before for a role is removed', () => {
    const withRole = writeAwsProfile(OTHERS, DEV);
    const target = { name: 'dev', credentialProcess: '/usr/bin/stsgate credentials --target aws-dev --gateway https://sts.example.com', region: 'us-east-1' };
    expect(writeAwsProfile(withRole, target)).toBe(`${OTHERS}\n[profile dev]\ncredential_process = ${target.credentialProcess}\nregion = us-east-1\n`);
  });
});

describe('replaceSection', () => {
  it.each([
    ['removes a section in the middle with its blank separator', '[a]\nx = 1\n\n[b]\ny = 2\n\n[c]\nz = 3\n', undefined, '[a]\nx = 1\n\n[c]\nz = 3\n'],
    ['removes the last section', '[a]\nx = 1\n\n[b]\ny = 2\n', undefined, '[a]\nx = 1\n'],
    ['leaves a file without the section alone', '[a]\nx = 1\n', undefined, '[a]\nx = 1\n'],
    ['keeps a trailing comment of the file', '[a]\nx = 1\n\n[b]\ny = 2\n# end\n', ['y = 3'], '[a]\nx = 1\n\n[b]\ny = 3\n# end\n'],
  ])('%s', (_what, before, body, after) => {
    expect(replaceSection(before, 'b', body)).toBe(after);
  });
});

describe('commandLine', () => {
  const words = ['/opt/my tools/node', '--import', 'tsx', "/home/o'brien/stsgate.js", 'credentials', '--role', 'arn:aws:iam::123456789012:role/dev'];

  it('quotes only what needs it', () => {
    expect(commandLine(words)).toBe(`'/opt/my tools/node' --import tsx '/home/o'\\''brien/stsgate.js' credentials --role arn:aws:iam::123456789012:role/dev`);
  });

  it('splits back into the same words with /bin/sh (the SDKs) and Python\'s shlex (the AWS CLI)', () => {
    const line = commandLine(words);
    expect(execFileSync('/bin/sh', ['-c', `printf '%s\\n' ${line}`], { encoding: 'utf8' }).trimEnd().split('\n')).toEqual(words);
    expect(JSON.parse(execFileSync('python3', ['-c', 'import json,shlex,sys; print(json.dumps(shlex.split(sys.argv[1])))', line], { encoding: 'utf8' }))).toEqual(words);
  });
});

describe('unifiedDiff', () => {
  it('is what diff -u prints, headers aside', () => {
    const before = 'a\nb\nc\nd\ne\nf\ng\nh\ni\nj\nk\nl\n';
    const after = 'a\nB\nc\nd\ne\nf\ng\nh\ni\nj\nK\nl\nm\n';
    expect(unifiedDiff(before, after, { from: 'old', to: 'new' })).toBe(
      ['--- old', '+++ new', '@@ -1,5 +1,5 @@', ' a', '-b', '+B', ' c', ' d', ' e', '@@ -8,5 +8,6 @@', ' h', ' i', ' j', '-k', '+K', ' l', '+m', ''].join('\n'),
    );
  });

  it('is empty for the same text; a new file is all additions', () => {
    expect(unifiedDiff('x\n', 'x\n', { from: 'a', to: 'b' })).toBe('');
    expect(unifiedDiff('', 'x\ny\n', { from: '/dev/null', to: 'b' })).toBe('--- /dev/null\n+++ b\n@@ -0,0 +1,2 @@\n+x\n+y\n');
  });
});
