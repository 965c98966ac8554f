/**
 * `stsgate check-config` loads what `serve` loads (the keys file too) through the same function, so a
 * configuration it calls valid is one serve starts with; `--connect` also reaches Redis and the issuers.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkConfigCommand, type CheckConfigOptions } from '../../src/commands/check-config.js';
import { generateSigningJwk } from '../../src/credentials/signing-keys.js';
import { runCliToEnd } from '../support/cli-process.js';
import { freePort } from '../support/common.js';
import { TestIssuer } from '../support/test-issuer.js';

const dir = mkdtempSync(join(tmpdir(), 'stsgate-check-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

const ISSUER = '  - { id: gha, issuer: https://token.actions.githubusercontent.com, audiences: [sts] }';
const RULES = `roles:
  - { name: deployer }
rules:
  - name: acme deploys
    match: { source: gha, claim: repository, equals: acme/app }
    roles: [deployer]
`;

/** A configuration with `extra` settings appended (a signing:, store: or targets: section). */
function config(name: string, extra: string, issuers = ISSUER, rules = RULES): string {
  return file(name, `public_url: https://sts.example.com\naccount_id: "123456789012"\nissuers:\n${issuers}\n${rules}${extra}`);
}

const keysFileSetting = (path: string, algorithm = 'ES256') => `signing: { algorithm: ${algorithm}, keys_file: ${JSON.stringify(path)} }\n`;

/** Runs the command as the CLI does, stdout and stderr apart. */
async function check(path: string, options: CheckConfigOptions = {}): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await checkConfigCommand(path, { out: (l) => out.push(l), err: (l) => err.push(l) }, options);
  return { code, out, err };
}

let es256: Awaited<ReturnType<typeof generateSigningJwk>>;
let goodKeys: string;
beforeAll(async () => {
  es256 = await generateSigningJwk('ES256');
  goodKeys = file('good-keys.json', JSON.stringify({ keys: [es256] }));
});

describe('check-config reads the signing keys file as serve does', () => {
  it('passes a configuration whose keys file holds a private key of signing.algorithm', async () => {
    const path = config('keys-ok.yaml', keysFileSetting(goodKeys));
    expect(await check(path)).toEqual({ code: 0, out: [`${path}: valid (1 issuer, 0 providers, 1 role, 1 rule)`, 'no tests: cases to run'], err: [] });
  });

  // Each row: the keys file's name, its content (undefined: no such file), what the problem says after the file's path.
  it.each<[string, string, () => string | undefined, RegExp]>([
    ['a missing file', 'missing-keys.json', () => undefined, /^cannot be read \(ENOENT\), expected a readable file holding a JWKS of private keys/],
    ['a file that is not JSON', 'not-json.json', () => '{ "keys": [', /^found text that is not JSON, expected a JWKS of private keys/],
    ['a JWKS without private parts', 'public.json', () => JSON.stringify({ keys: [publicHalf(es256)] }), /^keys\[0\] \(kid "[^"]+"\): found a public key \(no "d"\), expected a private key/],
    ['a single JWK instead of a JWKS', 'single.json', () => JSON.stringify(es256), /^found a single JWK, expected a JWKS holding it: \{"keys": \[ <the key> \]\}$/],
    ['an empty keys list', 'empty.json', () => '{"keys": []}', /^found an empty "keys" list, expected at least one private key in it/],
    ['a list instead of a JWKS', 'list.json', () => JSON.stringify([es256]), /^found a list, expected a JWKS of private keys/],
  ])('refuses %s, naming signing.keys_file and the file, and exits 1', async (_name, name, content, problem) => {
    const text = content();
    const keys = text === undefined ? join(dir, name) : file(name, text);
    const path = config(`${name}.yaml`, keysFileSetting(keys));
    const { code, out, err } = await check(path);
    expect({ code, out, first: err[0], count: err.length }).toEqual({ code: 1, out: [], first: `${path}: 1 problem`, count: 2 });
    const prefix = `  signing.keys_file: ${keys}: `;
    expect(err[1]!.startsWith(prefix)).toBe(true);
    expect(err[1]!.slice(prefix.length)).toMatch(problem);
    // No key material in what is printed.
    expect(err.join('\n')).not.toContain(String(es256.d));
  });

  it('refuses a keys file without a key of an algorithm the configuration signs with (signing.algorithm, a target)', async () => {
    const eddsaKeys = file('eddsa-keys.json', JSON.stringify({ keys: [await generateSigningJwk('EdDSA')] }));
    const path = config(
      'algorithms.yaml',
      `${keysFileSetting(eddsaKeys)}targets:\n  - { name: kube, kind: kubernetes, audience: kubernetes, algorithm: RS256, kubernetes: { username: "{claims.sub}" } }\n`,
    );
    const { code, err } = await check(path);
    expect(code).toBe(1);
    expect(err).toEqual([
      `${path}: 2 problems`,
      `  signing.keys_file: ${eddsaKeys}: no ES256 signing key is usable now: the keys file holds no ES256 key, expected an ES256 key that signs now, as signing.algorithm is ES256 (add one: stsgate keys generate --alg ES256)`,
      `  signing.keys_file: ${eddsaKeys}: found no RS256 key, expected one for targets[0] "kube", which signs with RS256 (add one: stsgate keys generate --alg RS256)`,
    ]);
  });

  it('refuses a shared Redis store without shared keys, by setting', async () => {
    const path = config('redis-no-keys.yaml', 'store: { redis: { url: "redis://127.0.0.1:6379" } }\n');
    const { code, err } = await check(path);
    expect(code).toBe(1);
    expect(err[0]).toBe(`${path}: 2 problems`);
    expect(err[1]).toMatch(/^ {2}signing\.keys_file: missing, expected a keys file: the standalone Redis store is shared/);
    expect(err[2]).toMatch(/^ {2}credentials\.encryption_key: missing, expected a key: /);
  });
});

describe('a configuration that grants nothing', () => {
  it.each<[string, string, string, string[]]>([
    ['no issuers', '  []', RULES.replace('source: gha, ', ''), ['warning: issuers: none (and no providers), so no identity is ever verified and nothing is granted']],
    ['no rules', ISSUER, 'roles: []\nrules: []\n', ['warning: rules: none, so no role is ever granted']],
  ])('is a warning, not an error (%s): exit 0', async (_name, issuers, rules, warnings) => {
    const path = config(`grants-nothing-${issuers.length}.yaml`, '', issuers, rules);
    const { code, out, err } = await check(path);
    expect({ code, err }).toEqual({ code: 0, err: warnings });
    expect(out[0]).toMatch(new RegExp(`^${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: valid `));
  });
});

describe('check-config --connect', () => {
  const encryptionKey = randomBytes(32).toString('base64');
  const redis = (port: number) => `store: { redis: { url: "redis://127.0.0.1:${port}" } }\ncredentials: { encryption_key: "${encryptionKey}" }\n${keysFileSetting(goodKeys)}`;
  let idp: TestIssuer;
  let closedPort: number;
  beforeAll(async () => {
    idp = await TestIssuer.start();
    closedPort = await freePort();
  });
  afterAll(() => idp.close());

  const loopbackIssuer = (issuer: string, more = '') => `  - { id: gha, issuer: "${issuer}", audiences: [sts]${more} }\ndev: { allow_insecure_http: true }`;

  it('reaches Redis (PING) and fetches each issuer\'s discovery document and JWKS', async () => {
    const path = config('connect-ok.yaml', redis(6379), loopbackIssuer(idp.url));
    const { code, out, err } = await check(path, { connect: true });
    expect({ code, err }).toEqual({ code: 0, err: [] });
    expect(out).toContain('connect: issuers[0] gha: 2 usable keys');
    expect(out.some((line) => /^connect: redis standalone redis:\/\/127\.0\.0\.1:6379.*: PING answered$/.test(line))).toBe(true);
    expect(out).toContain(`${path}: valid (1 issuer, 0 providers, 1 role, 1 rule)`);
  });

  it('reports an unreachable Redis by its setting, within the store\'s timeout, and exits 1', async () => {
    const path = config('connect-no-redis.yaml', redis(closedPort), loopbackIssuer(idp.url));
    const started = Date.now();
    const { code, out, err } = await check(path, { connect: true });
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(code).toBe(1);
    expect(out.filter((line) => line.includes('valid'))).toEqual([]);
    expect(err[0]).toBe(`${path}: 1 problem`);
    expect(err[1]).toMatch(new RegExp(`^ {2}store\\.redis\\.url: redis ping failed: .*, expected a Redis that answers PING$`));
  });

  it.each<[string, (port: number) => string, string]>([
    ['discovery', (port) => loopbackIssuer(`http://127.0.0.1:${port}`), 'issuers[0].issuer: discovery failed: request to http://127.0.0.1:PORT/.well-known/openid-configuration failed: '],
    ['jwks_uri', (port) => loopbackIssuer(idp.url, `, jwks_uri: "http://127.0.0.1:${port}/jwks"`), 'issuers[0].jwks_uri: '],
  ])('reports an unreachable issuer (%s) by its setting and exits 1', async (_name, issuers, problem) => {
    const path = config(`connect-no-issuer-${_name}.yaml`, '', issuers(closedPort));
    const { code, err } = await check(path, { connect: true, connectTimeoutMs: 2_000 });
    expect(code).toBe(1);
    expect(err[0]).toBe(`${path}: 1 problem`);
    expect(err[1]!.startsWith(`  ${problem.replace('PORT', String(closedPort))}`)).toBe(true);
    expect(err[1]).toContain(`127.0.0.1:${closedPort}`);
    expect(err[1]).toContain('ECONNREFUSED');
  });
});

describe('the stsgate command', () => {
  it('check-config: problems on stderr, exit 1; the valid line on stdout, warnings on stderr, exit 0', async () => {
    const keys = join(dir, 'absent-keys.json');
    const broken = config('cli-broken.yaml', keysFileSetting(keys));
    const failed = await runCliToEnd(['check-config', '--config', broken]);
    expect(failed).toEqual({ code: 1, stdout: '', stderr: expect.stringContaining(`${broken}: 1 problem\n  signing.keys_file: ${keys}: cannot be read (ENOENT)`) as unknown as string });

    const valid = config('cli-no-rules.yaml', keysFileSetting(goodKeys), ISSUER, 'roles: []\nrules: []\n');
    expect(await runCliToEnd(['check-config', '--config', valid])).toEqual({
      code: 0,
      stdout: `${valid}: valid (1 issuer, 0 providers, 0 roles, 0 rules)\nno tests: cases to run\n`,
      stderr: 'warning: rules: none, so no role is ever granted\n',
    });
  });

  it('serve refuses a broken keys file before it listens, naming the setting and the file', async () => {
    const keys = file('serve-single.json', JSON.stringify(es256));
    const path = config('serve-broken.yaml', `${keysFileSetting(keys)}listen: { host: 127.0.0.1, port: 1 }\n`);
    const { code, stdout, stderr } = await runCliToEnd(['serve', '--config', path]);
    expect({ code, stdout }).toEqual({ code: 1, stdout: '' });
    expect(stderr).toContain(`${path}: 1 problem\n  signing.keys_file: ${keys}: found a single JWK, expected a JWKS holding it`);
  });
});

/** The public members of a private JWK (what /.well-known/jwks.json publishes). */
function publicHalf(jwk: Record<string, unknown>): Record<string, unknown> {
  const { d: _d, ...rest } = jwk;
  return rest;
}
