/**
 * The `stsgate` command line itself, in real processes: each command's help, its own options only (an
 * unknown or another command's flag is refused with the command's usage), required options, `--version`,
 * and the exit codes (0 done, 1 failed, 2 usage). `serve --port` and `--host` are checked by listening.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { cliCommandLine, REPO_ROOT, runCli, runCliToEnd } from '../support/cli-process.js';
import { ACCOUNT_ID, freePort } from '../support/common.js';

const dir = mkdtempSync(join(tmpdir(), 'stsgate-cli-parser-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** No session, no AWS or kube config of the person running the tests. */
const isolated = { HOME: dir, XDG_CONFIG_HOME: dir, KUBECONFIG: join(dir, 'kubeconfig'), AWS_CONFIG_FILE: join(dir, 'aws-config'), NODE_ENV: undefined };
const cli = (args: string[]) => runCliToEnd(args, isolated);
const keysFile = join(dir, 'keys.json');
writeFileSync(keysFile, '{"keys":[]}');

/** One row per command: its words, an option it requires (with a value, to show it is not what fails), and another command's flag. */
const COMMANDS: { words: string[]; required: string[]; foreign: string[] }[] = [
  { words: ['serve'], required: ['--config', 'x.yaml'], foreign: ['--role', 'x'] },
  { words: ['check-config'], required: ['--config', 'x.yaml'], foreign: ['--port', '1'] },
  { words: ['explain'], required: ['--config', 'x.yaml'], foreign: ['--gateway', 'https://x'] },
  { words: ['keys', 'generate'], required: [], foreign: ['--file', 'k.json'] },
  { words: ['keys', 'rotate'], required: ['--file', join(dir, 'never.json')], foreign: ['--out', 'x'] },
  { words: ['revoke'], required: ['--config', 'x.yaml'], foreign: ['--target', 'x'] },
  { words: ['demo'], required: [], foreign: ['--config', 'x.yaml'] },
  { words: ['login'], required: ['--gateway', 'https://sts.example.com'], foreign: ['--format', 'json'] },
  { words: ['credentials'], required: [], foreign: ['--server', 'https://x'] },
  { words: ['token'], required: ['--target', 't'], foreign: ['--role', 'x'] },
  { words: ['kube-token'], required: ['--target', 't'], foreign: ['--format', 'json'] },
  { words: ['kubeconfig'], required: ['--target', 't'], foreign: ['--port', '1'] },
  { words: ['configure'], required: ['--profile', 'p'], foreign: ['--config', 'x.yaml'] },
  { words: ['oidc', 'export'], required: ['--config', 'x.yaml', '--out', 'o'], foreign: ['--role', 'x'] },
  { words: ['logout'], required: [], foreign: ['--target', 'x'] },
];

describe.each(COMMANDS)('stsgate $words', ({ words, required, foreign }) => {
  const name = words.join(' ');

  it('help <command> and <command> --help: usage, a description and an example on stdout, exit 0', async () => {
    const help = await cli(['help', ...words]);
    expect(help.code).toBe(0);
    expect(help.stderr).toBe('');
    expect(help.stdout).toMatch(new RegExp(`^Usage: stsgate ${name} `));
    expect(help.stdout).toContain('Examples:');
    expect(help.stdout).toContain(`$ stsgate ${name}`);
    const flag = await cli([...words, '--help']);
    expect(flag).toEqual(help);
  });

  it('an unknown flag: exit 2, the flag named and the command\'s usage on stderr, nothing on stdout', async () => {
    const result = await cli([...words, ...required, '--no-such-flag']);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(/^stsgate: unknown option '--no-such-flag'\n/);
    expect(result.stderr).toContain(`Usage: stsgate ${name} `);
  });

  it(`another command's flag (${foreign[0]}): exit 2`, async () => {
    const result = await cli([...words, ...required, ...foreign]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`unknown option '${foreign[0]}'`);
    expect(result.stderr).toContain(`Usage: stsgate ${name} `);
  });

  // Only commands with a required option have one to leave out (defined for them alone, not skipped).
  if (required.length > 0) it('a missing required option: exit 2, naming it', async () => {
    const result = await cli([...words, ...required.slice(0, -2)]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(new RegExp(`^stsgate: required option '(?:-c, )?${required.at(-2)} <[^>]+>' not specified\\n`));
    expect(result.stderr).toContain(`Usage: stsgate ${name} `);
  });
});

describe('stsgate', () => {
  it('--version prints package.json\'s version, exit 0', async () => {
    const { version } = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string };
    for (const flag of ['--version', '-v']) expect(await cli([flag])).toEqual({ code: 0, stdout: `${version}\n`, stderr: '' });
  });

  it('help lists every command and the exit codes, exit 0', async () => {
    const help = await cli(['help']);
    expect(help.code).toBe(0);
    for (const { words } of COMMANDS) expect(help.stdout).toMatch(new RegExp(`^  ${words[0]} `, 'm'));
    expect(help.stdout).toContain('Exit codes: 0 done, 1 failed, 2 usage error');
    expect(await cli(['--help'])).toEqual(help);
  });

  it.each([
    ['no command', [], /^Usage: stsgate \[options\] \[command\]/],
    ['an unknown command', ['serv'], /^stsgate: unknown command 'serv'\n\(Did you mean serve\?\)/],
    ['help for an unknown command', ['help', 'nope'], /^stsgate: unknown command 'nope'/],
    ['keys without generate or rotate', ['keys'], /^Usage: stsgate keys /],
    ['an argument no command takes', ['serve', '--config', 'x.yaml', 'extra'], /^stsgate: too many arguments for 'serve'/],
    ['a value outside the choices', ['keys', 'generate', '--alg', 'HS256'], /^stsgate: option '--alg <alg>' argument 'HS256' is invalid\. Allowed choices are ES256, EdDSA, RS256\./],
    ['credentials --format xml', ['credentials', '--format', 'xml'], /Allowed choices are json, token\./],
    ['a port that is not a number', ['serve', '--config', 'x.yaml', '--port', '80a'], /^stsgate: --port must be a port number \(1-65535\)\n\nUsage: stsgate serve /],
    ['a host with a scheme', ['serve', '--config', 'x.yaml', '--host', 'http://0.0.0.0'], /^stsgate: --host must be an IP address or a host name/],
    ['keys rotate of an existing file without --config or --max-lifetime', ['keys', 'rotate', '--file', keysFile], /^stsgate: --config \(to read the longest role session\) or --max-lifetime is required/],
  ])('%s: exit 2, the reason on stderr', async (_what, args, message) => {
    const result = await cli(args);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(message);
  });

  it('a failure is exit 1: check-config of a file that does not exist', async () => {
    const result = await cli(['check-config', '--config', join(dir, 'missing.yaml')]);
    expect(result.code).toBe(1);
  });
});

describe('stsgate serve --port --host', () => {
  it('listens there instead of listen.port and listen.host', async () => {
    const [configured, chosen, admin] = [await freePort(), await freePort(), await freePort()];
    const file = join(dir, 'serve.yaml');
    writeFileSync(file, stringify({
      public_url: 'http://127.0.0.1:8080',
      listen: { host: '0.0.0.0', port: configured },
      admin: { listen: { host: '127.0.0.1', port: admin } },
      account_id: ACCOUNT_ID,
      dev: { allow_insecure_http: true },
      issuers: [{ id: 'ci', issuer: 'https://token.actions.githubusercontent.com', audiences: ['sts'] }],
      roles: [{ name: 'deployer' }],
      rules: [],
    }));
    const serve = runCli(['serve', '--config', file, '--port', String(chosen), '--host', '127.0.0.1'], isolated);
    try {
      const [line] = await serve.waitFor(/.*"stsgate listening".*/, 'stdout');
      expect(JSON.parse(line).url).toBe(`http://127.0.0.1:${chosen}`);
      expect((await fetch(`http://127.0.0.1:${chosen}/healthz`)).status).toBe(200);
      await expect(fetch(`http://127.0.0.1:${configured}/healthz`)).rejects.toThrow();
    } finally {
      serve.child.kill('SIGTERM');
      expect(await serve.exited).toBe(0);
    }
  });
});

describe('stsgate explain', () => {
  it.each([
    ['neither --identity nor --token', []],
    ['both --identity and --token', ['--identity', 'i.json', '--token', 't.jwt']],
  ])('%s: exit 2, saying to give one', async (_name, extra) => {
    const result = await cli(['explain', '--config', 'x.yaml', ...extra]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/^stsgate: give one of --identity FILE or --token FILE/);
    expect(result.stderr).toContain('Usage: stsgate explain ');
  });
});

describe('stsgate | a reader that stops early', () => {
  it('ends quietly when its standard output is closed (EPIPE), with no stack trace', async () => {
    const [command, ...prefix] = cliCommandLine();
    const child = spawn(command!, [...prefix, 'help', 'keys', 'rotate'], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.destroy();
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect(stderr).not.toContain('EPIPE');
    expect(code).toBe(0);
  });
});
