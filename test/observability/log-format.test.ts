/**
 * The log's two formats, seen as an operator sees them: on a terminal (a pseudo-terminal from util-linux
 * `script`) one readable text line per event with level names, coloured unless NO_COLOR; through a pipe
 * JSON lines with `"level":"info"`; `STSGATE_LOG_FORMAT` over `log.format`. Secrets stay censored in both.
 */
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { formatTextLine, resolveLogFormat } from '../../src/observability/logger.js';
import { CLI_SOURCE, REPO_ROOT } from '../support/cli-process.js';
import { sleep } from '../support/common.js';
import { makeTempDir, sharedKeys, writeGatewayConfig } from '../support/gateway-process.js';
import { TestIssuer } from '../support/test-issuer.js';
import { postSts } from '../security/harness.js';

const SCRIPT = fileURLToPath(new URL('../support/log-lines.ts', import.meta.url));
const HAS_SCRIPT = spawnSync('script', ['--version']).status === 0;
const ESC = '\x1b';

/** Runs the log-lines script with `env` over this environment, under a pseudo-terminal or through a pipe; returns its output lines. */
function logLines(how: 'terminal' | 'pipe', env: Record<string, string | undefined> = {}, format?: string): string[] {
  const merged: Record<string, string> = {};
  for (const [key, value] of Object.entries({ ...process.env, STSGATE_LOG_FORMAT: undefined, NO_COLOR: undefined, STSGATE_LOG_LEVEL: undefined, ...env })) if (value !== undefined) merged[key] = value;
  const node = [process.execPath, '--import', 'tsx', SCRIPT, ...(format ? [format] : [])];
  const run =
    how === 'terminal'
      ? spawnSync('script', ['-q', '-e', '-c', node.map((w) => `'${w}'`).join(' '), '/dev/null'], { cwd: REPO_ROOT, env: merged, encoding: 'utf8', timeout: 15_000 })
      : spawnSync(node[0]!, node.slice(1), { cwd: REPO_ROOT, env: merged, encoding: 'utf8', timeout: 15_000 });
  expect(run.status, run.stderr).toBe(0);
  // A terminal ends lines with CR LF.
  return run.stdout.split(/\r?\n/).filter((line) => line !== '');
}

function expectText(lines: string[], colour: boolean): void {
  expect(lines).toHaveLength(3);
  const plain = lines.map((line) => line.replace(/\x1b\[[0-9;]*m/g, ''));
  expect(plain[0]).toMatch(/^\d\d:\d\d:\d\d\.\d{3} INFO  request method=POST path=\/ status=200 ms=1\.5$/);
  expect(plain[1]).toMatch(/^\d\d:\d\d:\d\d\.\d{3} INFO  log=audit event=denied subject=repo:acme\/app reason="no rule grants role deployer" headers=\{"authorization":"\[redacted\]"\}$/);
  expect(plain[2]).toMatch(/^\d\d:\d\d:\d\d\.\d{3} WARN  store connection error store="connect ECONNREFUSED"$/);
  expect(lines.join('\n')).not.toContain('canary-secret');
  expect(lines.some((line) => line.includes(ESC))).toBe(colour);
  if (colour) expect(lines[2]).toContain(`${ESC}[33mWARN `);
}

function expectJson(lines: string[]): void {
  expect(lines).toHaveLength(3);
  const parsed = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
  expect(parsed.map((line) => line.level)).toEqual(['info', 'info', 'warn']);
  expect(parsed[0]).toMatchObject({ service: 'stsgate', msg: 'request', method: 'POST', status: 200 });
  expect(parsed[1]).toMatchObject({ log: 'audit', event: 'denied', headers: { authorization: '[redacted]' } });
  expect(lines.join('\n')).not.toContain('canary-secret');
}

describe.skipIf(!HAS_SCRIPT)('log format on a terminal and through a pipe', () => {
  it('a terminal gets coloured text lines with level names', () => expectText(logLines('terminal'), true));
  it('NO_COLOR keeps the text and drops the colour', () => expectText(logLines('terminal', { NO_COLOR: '1' }), false));
  it('a pipe gets JSON lines with level names', () => expectJson(logLines('pipe')));
  it('STSGATE_LOG_FORMAT=json on a terminal gives JSON', () => expectJson(logLines('terminal', { STSGATE_LOG_FORMAT: 'json' })));
  it('STSGATE_LOG_FORMAT=text through a pipe gives text, uncoloured', () => expectText(logLines('pipe', { STSGATE_LOG_FORMAT: 'text' }), false));
  it('log.format: json holds on a terminal', () => expectJson(logLines('terminal', {}, 'json')));
  it('STSGATE_LOG_FORMAT overrides log.format', () => expectText(logLines('terminal', { STSGATE_LOG_FORMAT: 'text', NO_COLOR: '1' }, 'json'), false));
});

describe.skipIf(!HAS_SCRIPT)('stsgate serve on a terminal', () => {
  it('writes text lines, the denial naming the closest rule and its failing condition', async () => {
    const idp = await TestIssuer.start();
    const dir = makeTempDir('log-format');
    const config = await writeGatewayConfig(dir, { keys: await sharedKeys(dir), issuer: idp });
    const env: Record<string, string> = {};
    for (const [key, value] of Object.entries({ ...process.env, STSGATE_LOG_FORMAT: undefined, NO_COLOR: '1' })) if (value !== undefined) env[key] = value;
    const command = [process.execPath, '--import', 'tsx', CLI_SOURCE, 'serve', '--config', config.file].map((w) => `'${w}'`).join(' ');
    const child = spawn('script', ['-q', '-e', '-c', command, '/dev/null'], { cwd: REPO_ROOT, env, stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    const exited = new Promise((resolve) => child.once('exit', resolve));
    try {
      const url = `http://127.0.0.1:${config.port}`;
      for (const until = Date.now() + 15_000; !(await fetch(`${url}/readyz`).then((r) => r.ok, () => false)); await sleep(100)) {
        if (Date.now() > until) throw new Error(`the gateway did not start:\n${output}`);
      }
      const res = await postSts(url, { WebIdentityToken: await idp.mint({ repository: 'acme/app', ref: 'refs/heads/dev', sub: 'tty-subject' }) });
      expect(res.status).toBe(403);
      for (const until = Date.now() + 5_000; !output.includes('event=denied') && Date.now() < until; ) await sleep(50);
      const lines = output.split(/\r?\n/).filter((line) => line !== '');
      expect(lines.length).toBeGreaterThan(2);
      for (const line of lines) expect(line).toMatch(/^\d\d:\d\d:\d\d\.\d{3} (TRACE|DEBUG|INFO |WARN |ERROR|FATAL) /);
      expect(output).not.toContain(ESC);
      const denied = lines.find((line) => line.includes('event=denied'));
      expect(denied).toMatch(/ INFO  log=audit event=denied action=AssumeRoleWithWebIdentity .*subject=tty-subject .*closestRule="main branch of acme\/app may deploy" failing=\["FAIL ref equals \\"refs\/heads\/main\\": found string \\"refs\/heads\/dev\\""\]/);
    } finally {
      // script ends its session on SIGTERM, and the gateway with it.
      child.kill('SIGTERM');
      await exited;
      await idp.close();
    }
  });
});

describe('format choice', () => {
  it.each<[string, 'auto' | 'text' | 'json' | undefined, string | undefined, boolean, 'text' | 'json']>([
    ['nothing set, a terminal', undefined, undefined, true, 'text'],
    ['nothing set, a pipe', undefined, undefined, false, 'json'],
    ['auto, a terminal', 'auto', undefined, true, 'text'],
    ['text configured, a pipe', 'text', undefined, false, 'text'],
    ['json configured, a terminal', 'json', undefined, true, 'json'],
    ['the variable over the config', 'json', 'text', false, 'text'],
    ['the variable auto over the config', 'text', 'auto', false, 'json'],
    ['an empty variable is unset', 'text', '', false, 'text'],
  ])('%s', (_name, configured, variable, isTTY, expected) => {
    expect(resolveLogFormat(configured, { STSGATE_LOG_FORMAT: variable }, isTTY)).toBe(expected);
  });

  it('refuses an unknown STSGATE_LOG_FORMAT, naming the allowed values', () => {
    expect(() => resolveLogFormat(undefined, { STSGATE_LOG_FORMAT: 'pretty' }, true)).toThrow('STSGATE_LOG_FORMAT: found "pretty", expected one of auto, text, json');
  });
});

describe('text lines', () => {
  const line = (fields: Record<string, unknown>) => formatTextLine(JSON.stringify({ level: 'info', time: '2026-12-04T21:14:44.123Z', service: 'stsgate', ...fields }), { colour: false });

  it.each<[string, Record<string, unknown>, string]>([
    ['message and fields', { msg: 'request', status: 200, ok: true }, '21:14:44.123 INFO  request status=200 ok=true\n'],
    ['a value with spaces or quotes is a JSON string', { msg: 'm', reason: 'say "hi" now' }, '21:14:44.123 INFO  m reason="say \\"hi\\" now"\n'],
    ['a newline cannot start a second line', { msg: 'a\nb', v: 'c\nd' }, '21:14:44.123 INFO  a\\nb v="c\\nd"\n'],
    ['terminal control sequences are escaped', { msg: '\x1b[2J', v: '\x1b]0;title\x07', c1: '\u009b31m' }, '21:14:44.123 INFO  \\u001b[2J v="\\u001b]0;title\\u0007" c1="\\u009b31m"\n'],
    ['objects and lists as JSON', { failing: ['FAIL ref equals "main"'], n: null }, '21:14:44.123 INFO  failing=["FAIL ref equals \\"main\\""] n=null\n'],
    ['an empty string is quoted', { msg: 'm', v: '' }, '21:14:44.123 INFO  m v=""\n'],
  ])('%s', (_name, fields, expected) => {
    expect(line(fields)).toBe(expected);
  });

  it('colours the level and dims the time and keys', () => {
    expect(formatTextLine(JSON.stringify({ level: 'error', time: '2026-12-04T21:14:44.123Z', msg: 'boom', code: 'E' }), { colour: true })).toBe(
      `${ESC}[2m21:14:44.123${ESC}[0m ${ESC}[31mERROR${ESC}[0m boom ${ESC}[2mcode=${ESC}[0mE\n`,
    );
  });
});
