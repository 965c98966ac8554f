import { spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { checkConfigCommand } from '../../src/commands/check-config.js';
import { explainCommand } from '../../src/commands/explain.js';
import { cliCommandLine, REPO_ROOT } from '../support/cli-process.js';

const dir = mkdtempSync(join(tmpdir(), 'stsgate-commands-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const EXAMPLE = fileURLToPath(new URL('../../examples/gateway.yaml', import.meta.url));

const CONFIG = `
public_url: https://sts.example.com
account_id: "123456789012"
issuers:
  - { id: gha, issuer: https://token.actions.githubusercontent.com, audiences: [sts] }
roles:
  - { name: deployer }
  - { name: reader }
rules:
  - name: main deploys
    match:
      source: gha
      all:
        - { claim: repository, equals: acme/app }
        - { claim: ref, equals: refs/heads/main }
    roles: [deployer]
  - name: acme reads
    match: { source: gha, claim: repository, glob: "acme/*" }
    roles: [reader]
`;

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

async function run(command: (write: (line: string) => void) => Promise<number>): Promise<{ code: number; lines: string[] }> {
  const lines: string[] = [];
  const code = await command((line) => lines.push(line));
  return { code, lines };
}

describe('check-config', () => {
  it('passes the example configuration and its tests', async () => {
    const { code, lines } = await run((w) => checkConfigCommand(EXAMPLE, w));
    expect(lines.filter((l) => l.startsWith('FAIL'))).toEqual([]);
    expect(lines.filter((l) => l.startsWith('PASS')).length).toBeGreaterThan(3);
    expect(lines.at(-1)).toMatch(/^tests: \d+ passed, 0 failed$/);
    expect(code).toBe(0);
  });

  it('exits 0 with no tests', async () => {
    const path = file('no-tests.yaml', CONFIG);
    expect(await run((w) => checkConfigCommand(path, w))).toEqual({
      code: 0,
      lines: [`${path}: valid (1 issuer, 0 providers, 2 roles, 2 rules)`, 'no tests: cases to run'],
    });
  });

  it('prints every problem and exits 1', async () => {
    const path = file('bad.yaml', `${CONFIG}\nlisten: { port: 0 }\nextra: 1\n`.replace('account_id: "123456789012"', 'account_id: "1"'));
    expect(await run((w) => checkConfigCommand(path, w))).toEqual({
      code: 1,
      lines: [
        `${path}: 3 problems`,
        '  listen.port: found 0, expected an integer in 1..65535',
        '  account_id: found "1", expected a string of 12 digits',
        '  (top level): unknown key "extra"; allowed keys: public_url, listen, admin, store, signing, account_id, providers, browser, dev, credentials, limits, introspection, workers, shutdown, log, audit, issuers, targets, roles, rules, tests, clients',
      ],
    });
  });

  it('refuses an inline JWKS holding a 1024-bit RSA key, naming its path and kid', async () => {
    const good = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ format: 'jwk' });
    const weak = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ format: 'jwk' });
    const keys = JSON.stringify({ keys: [{ ...good, kid: 'good' }, { ...weak, kid: 'weak' }] });
    const path = file('weak-key.yaml', CONFIG.replace('audiences: [sts] }', `audiences: [sts], keys: ${keys} }`));
    const { code, lines } = await run((w) => checkConfigCommand(path, w));
    expect({ code, lines }).toEqual({
      code: 1,
      lines: [`${path}: 1 problem`, '  issuers[0].keys.keys[1]: found an RSA key of 1024 bits; at least 2048 are required (kid "weak"), expected a public signing key for one of RS256, ES256'],
    });
    // No key material in what is printed.
    expect(lines.join('\n')).not.toContain(String(weak.n).slice(0, 20));
  });

  it('exits 1 on an unreadable file', async () => {
    const path = join(dir, 'missing.yaml');
    expect(await run((w) => checkConfigCommand(path, w))).toEqual({
      code: 1,
      lines: [`${path}: 1 problem`, `  ${path}: cannot read the configuration file (ENOENT), expected a readable YAML file`],
    });
  });

  it('runs tests as exact role sets, explains failures and exits 1', async () => {
    const tests = `
tests:
  - name: main
    identity: { source: gha, claims: { repository: acme/app, ref: refs/heads/main } }
    expect_roles: [reader, deployer]
  - name: expects too little
    identity: { source: gha, claims: { repository: acme/app, ref: refs/heads/main } }
    expect_roles: [deployer]
  - identity: { source: gha, claims: { repository: acme/app, ref: refs/heads/dev } }
    expect_roles: [deployer, reader]
  - identity: { source: gha, claims: { repository: evil/app } }
    expect_roles: []
`;
    const path = file('tests.yaml', CONFIG + tests);
    expect(await run((w) => checkConfigCommand(path, w))).toEqual({
      code: 1,
      lines: [
        `${path}: valid (1 issuer, 0 providers, 2 roles, 2 rules)`,
        'PASS tests[0] "main": gha -> [deployer, reader]',
        'FAIL tests[1] "expects too little": gha: expected [deployer], got [deployer, reader]',
        '  unexpected [reader], granted by:',
        '    rule 1 "acme reads"',
        'FAIL tests[2]: gha: expected [deployer, reader], got [reader]',
        '  missing [deployer]; rules that grant them did not match:',
        '    rule 0 "main deploys": no match',
        '        FAIL ref equals "refs/heads/main": found string "refs/heads/dev"',
        'PASS tests[3]: gha -> (none)',
        'tests: 2 passed, 2 failed',
      ],
    });
  });
});

describe('explain', () => {
  const config = file('explain.yaml', CONFIG);

  it.each<[string, string, string]>([
    ['JSON', 'id.json', JSON.stringify({ source: 'gha', subject: 'repo:acme/app', claims: { repository: 'acme/app', ref: 'refs/heads/dev' } })],
    ['YAML', 'id.yaml', 'source: gha\nsubject: repo:acme/app\nclaims:\n  repository: acme/app\n  ref: refs/heads/dev\n'],
  ])('explains an identity from %s', async (_name, name, text) => {
    const identity = file(name, text);
    expect(await run((w) => explainCommand({ configFile: config, identity: identity }, w))).toEqual({
      code: 0,
      lines: [
        'identity: source "gha", subject "repo:acme/app"',
        'rule 0 "main deploys": no match',
        '    ok   source equals "gha": found "gha"',
        '    ok   repository equals "acme/app": found string "acme/app"',
        '    FAIL ref equals "refs/heads/main": found string "refs/heads/dev"',
        'rule 1 "acme reads": MATCHED, grants reader',
        '    ok   source equals "gha": found "gha"',
        '    ok   repository glob "acme/*": found string "acme/app"',
        'roles: reader',
      ],
    });
  });

  it('takes the subject from the sub claim and notes an unknown source', async () => {
    const identity = file('other.json', JSON.stringify({ source: 'k8s', claims: { sub: 'system:serviceaccount:ci:runner', ref: 1 } }));
    const { code, lines } = await run((w) => explainCommand({ configFile: config, identity: identity }, w));
    expect(code).toBe(0);
    expect(lines[0]).toBe('note: source "k8s" is not a configured issuer or provider (gha)');
    expect(lines[1]).toBe('identity: source "k8s", subject "system:serviceaccount:ci:runner"');
    expect(lines).toContain('    FAIL ref equals "refs/heads/main": found number 1');
    expect(lines).toContain('    FAIL source equals "gha": found "k8s"');
    expect(lines.at(-1)).toBe('roles: none (no rule matched)');
  });

  it.each<[string, string, string[]]>([
    ['not a mapping', '[1, 2]', ['(top level): found a list, expected a mapping { source, subject?, claims }']],
    ['missing source and bad claims', '{ "claims": "x", "extra": 1 }', ['extra: unknown key; allowed keys: source, subject, claims', 'source: found nothing, expected an issuer or provider id', 'claims: found "x", expected a mapping of claims']],
    ['subject not a string', '{ "source": "gha", "subject": 5 }', ['subject: found 5, expected a string']],
  ])('reports a bad identity file (%s) and exits 1', async (_name, text, problems) => {
    const identity = file('bad-identity.json', text);
    const { code, lines } = await run((w) => explainCommand({ configFile: config, identity: identity }, w));
    expect(code).toBe(1);
    expect(lines).toEqual([`${identity}: ${problems.length} problem${problems.length === 1 ? '' : 's'}`, ...problems.map((p) => `  ${p}`)]);
  });

  it('reports an unparsable identity file', async () => {
    const identity = file('broken.json', '{ "source": ');
    const { code, lines } = await run((w) => explainCommand({ configFile: config, identity: identity }, w));
    expect(code).toBe(1);
    expect(lines[0]).toBe(`${identity}: 1 problem`);
    expect(lines[1]).toMatch(/expected JSON or YAML$/);
  });

  it('shows what each OpenID Provider client would receive for the identity (its roles and claims only)', async () => {
    const withClients = file(
      'clients.yaml',
      CONFIG +
        `clients:
  - { id: kubelogin, type: public, redirect_uris: ["http://localhost:8000"], scopes: [openid, email, groups, roles], roles: [deployer] }
  - { id: wiki, type: public, redirect_uris: ["https://wiki.example.com/callback"], claims: [email] }
`,
    );
    const identity = file('person.json', JSON.stringify({ source: 'gha', subject: 's', claims: { repository: 'acme/app', ref: 'refs/heads/main', email: 'ada@acme.com', groups: ['platform'] } }));
    const { code, lines } = await run((w) => explainCommand({ configFile: withClients, identity }, w));
    expect(code).toBe(0);
    expect(lines.filter((line) => line.startsWith('client '))).toEqual([
      'client "kubelogin" would receive: {"sub":"gha:s","email":"ada@acme.com","groups":["platform"],"roles":["deployer"]}',
      'client "wiki" would receive: {"sub":"gha:s","email":"ada@acme.com"}',
    ]);
  });

  it('shows the targets an identity may get and the exact claims each token would carry, or the limit it breaks', async () => {
    const withTargets = file(
      'targets.yaml',
      CONFIG.replace('  - { name: reader }', '  - { name: reader, targets: [aws-prod, kube] }') +
        `targets:
  - name: aws-prod
    kind: aws
    subject: "repo:{claims.repository}:ref:{claims.ref}"
    aws: { principal_tags: { repo: "{claims.repository}", actor: "{claims.actor}" } }
  - { name: kube, kind: kubernetes, audience: kubernetes, kubernetes: { username: "{claims.login}" } }
  - { name: vault, kind: vault, audience: vault }
`,
    );
    const identity = file('workload.json', JSON.stringify({ source: 'gha', subject: 's', claims: { repository: 'acme/app', ref: 'refs/heads/dev', actor: 'octo;cat' } }));
    let { lines } = await run((w) => explainCommand({ configFile: withTargets, identity: identity }, w));
    const targets = lines.slice(lines.indexOf('targets:'));
    expect(targets).toEqual([
      'targets:',
      '  aws-prod (aws, ES256, via role reader, lives 900 s at most): REFUSED, target aws-prod: tag actor has a character AWS refuses (letters, digits, spaces and _ . : / = + - @ only)',
      '  kube (kubernetes, ES256, via role reader, lives 900 s at most): REFUSED, target kube: kubernetes.username: {claims.login} is missing for this identity',
      '  not granted: vault',
    ]);
    const good = file('good.json', JSON.stringify({ source: 'gha', subject: 's', claims: { repository: 'acme/app', ref: 'refs/heads/dev', actor: 'octocat', login: 'octocat' } }));
    ({ lines } = await run((w) => explainCommand({ configFile: withTargets, identity: good }, w)));
    const claims = lines.slice(lines.indexOf('  aws-prod (aws, ES256, via role reader, lives 900 s at most): a token would carry') + 1, lines.findIndex((l) => l.startsWith('  kube')));
    expect(JSON.parse(claims.join('\n'))).toEqual({
      iss: 'https://sts.example.com',
      sub: 'repo:acme/app:ref:refs/heads/dev',
      aud: 'sts.amazonaws.com',
      'https://aws.amazon.com/tags': { principal_tags: { repo: ['acme/app'], actor: ['octocat'] } },
    });
  });

  it('reports config problems and exits 1', async () => {
    const bad = file('bad-config.yaml', CONFIG.replace('equals: acme/app', 'equal: acme/app'));
    const identity = file('id2.json', '{ "source": "gha" }');
    expect(await run((w) => explainCommand({ configFile: bad, identity: identity }, w))).toEqual({
      code: 1,
      lines: [`${bad}: 1 problem`, '  rules[0].match.all[0]: unknown operator "equal"; did you mean "equals"?'],
    });
  });
});

/** A compact JWT with `claims` and a signature nobody made: explain must read it without verifying it. */
function unsignedToken(claims: unknown, header: unknown = { alg: 'RS256', kid: 'k1' }): string {
  const part = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
  return `${part(header)}.${part(claims)}.${Buffer.from('not a signature').toString('base64url')}`;
}

describe('explain --token and standard input', () => {
  const config = file('explain-token.yaml', CONFIG);
  const GHA = 'https://token.actions.githubusercontent.com';
  const stdin = (text: string) => Readable.from([Buffer.from(text)]);

  it('--token - reads a JWT on standard input, says it was not verified, and explains its claims as the issuer\'s identity', async () => {
    const token = unsignedToken({ iss: GHA, sub: 'repo:acme/app:ref:refs/heads/dev', aud: 'sts', exp: 1, repository: 'acme/app', ref: 'refs/heads/dev' });
    const { code, lines } = await run((w) => explainCommand({ configFile: config, token: '-', stdin: stdin(`${token}\n`) }, w));
    expect(code).toBe(0);
    expect(lines).toEqual([
      'note: the token was decoded, not verified: its signature, expiry and audience were not checked; the gateway checks them before any rule sees its claims',
      `note: iss "${GHA}" is issuer "gha"`,
      'identity: source "gha", subject "repo:acme/app:ref:refs/heads/dev"',
      'rule 0 "main deploys": no match',
      '    ok   source equals "gha": found "gha"',
      '    ok   repository equals "acme/app": found string "acme/app"',
      '    FAIL ref equals "refs/heads/main": found string "refs/heads/dev"',
      'rule 1 "acme reads": MATCHED, grants reader',
      '    ok   source equals "gha": found "gha"',
      '    ok   repository glob "acme/*": found string "acme/app"',
      'roles: reader',
    ]);
  });

  it('--token FILE with an iss no issuer has: the URL is the source, and says so', async () => {
    const token = file('other.jwt', unsignedToken({ iss: 'https://idp.example.org', sub: 'u-1', repository: 'acme/app' }));
    const { code, lines } = await run((w) => explainCommand({ configFile: config, token }, w));
    expect(code).toBe(0);
    expect(lines.slice(0, 4)).toEqual([
      expect.stringContaining('not verified'),
      'note: iss "https://idp.example.org" is no configured issuer\'s; it is used as the source as it is',
      'note: source "https://idp.example.org" is not a configured issuer or provider (gha)',
      'identity: source "https://idp.example.org", subject "u-1"',
    ]);
    expect(lines.at(-1)).toBe('roles: none (no rule matched)');
  });

  const SECRET_LOOKING = 'eyJzZWNyZXQiOiJ0b2tlbi1wYXJ0In0';
  it.each<[string, string, string]>([
    ['empty input', '  \n', 'found nothing, expected a JWT (header.payload.signature)'],
    ['not a JWT at all', SECRET_LOOKING, 'found 1 part separated by ".", expected a JWT of three (header.payload.signature)'],
    ['two parts', `${SECRET_LOOKING}.${SECRET_LOOKING}`, 'found 2 parts separated by ".", expected a JWT of three (header.payload.signature)'],
    ['an encrypted token', 'a.b.c.d.e', 'found an encrypted token (JWE, five parts), expected a signed JWT: its claims cannot be read without the key'],
    ['a payload that is not base64url', `${SECRET_LOOKING}.pay+load/.sig`, 'the payload (second part) is not base64url, expected a JWT'],
    ['a payload that is not JSON', `${SECRET_LOOKING}.${Buffer.from('{not json').toString('base64url')}.sig`, "the payload (second part) is not JSON, expected a JWT's claims"],
    ['a payload that is a list', unsignedToken([1, 2]), 'the payload holds a list, expected a mapping of claims'],
    ['no iss', unsignedToken({ sub: 'x' }), 'iss: found nothing, expected the issuer URL (the source is found by it)'],
  ])('a malformed token (%s): one clear problem, exit 1, the token not echoed', async (_name, token, problem) => {
    const { code, lines } = await run((w) => explainCommand({ configFile: config, token: '-', stdin: stdin(token) }, w));
    expect(code).toBe(1);
    expect(lines).toEqual(['standard input: 1 problem', `  ${problem}`]);
    expect(lines.join('\n')).not.toContain(SECRET_LOOKING);
  });

  it('a token file that cannot be read', async () => {
    const missing = join(dir, 'missing.jwt');
    expect(await run((w) => explainCommand({ configFile: config, token: missing }, w))).toEqual({ code: 1, lines: [`${missing}: 1 problem`, '  cannot read the token file (ENOENT)'] });
  });

  it.each<[string, { identity?: string; token?: string }]>([
    ['neither', {}],
    ['both', { identity: '-', token: '-' }],
  ])('--identity and --token: %s is a usage error (exit 2)', async (_name, inputs) => {
    expect(await run((w) => explainCommand({ configFile: config, ...inputs }, w))).toEqual({ code: 2, lines: ['explain: give one of --identity FILE or --token FILE (- reads standard input)'] });
  });

  it('stsgate explain --identity - reads the identity document from standard input', () => {
    const [command, ...prefix] = cliCommandLine();
    const identity = JSON.stringify({ source: 'gha', subject: 's', claims: { repository: 'acme/app', ref: 'refs/heads/main' } });
    const result = spawnSync(command!, [...prefix, 'explain', '--config', config, '--identity', '-'], { cwd: REPO_ROOT, input: identity, encoding: 'utf8', timeout: 30_000 });
    expect(result.status, result.stderr).toBe(0);
    const lines = result.stdout.trimEnd().split('\n');
    expect(lines[0]).toBe('identity: source "gha", subject "s"');
    expect(lines).toContain('rule 0 "main deploys": MATCHED, grants deployer');
    expect(lines.at(-1)).toBe('roles: deployer, reader');
  });
});
