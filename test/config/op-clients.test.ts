/**
 * `clients:` (stsgate as an OpenID Provider): a valid client becomes its runtime shape with defaults, and
 * every mistake is reported at its path, all at once, as `check-config` prints them.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { ConfigError, parseConfig } from '../../src/config/load.js';
import type { GatewayConfig } from '../../src/config/types.js';
import { ACCOUNT_ID } from '../support/common.js';

type Tree = Record<string, unknown>;

const dir = mkdtempSync(join(tmpdir(), 'stsgate-clients-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const SECRET = 'a-client-secret-of-some-length';

function withClients(clients: unknown): Tree {
  return {
    public_url: 'https://sts.example.com',
    account_id: ACCOUNT_ID,
    roles: [{ name: 'deployer' }, { name: 'reader' }],
    clients,
  };
}

function parse(tree: Tree, env: Record<string, string> = { SECRET }): GatewayConfig {
  return parseConfig(stringify(tree), env, dir);
}

function problemsOf(tree: Tree, env?: Record<string, string>): string[] {
  try {
    parse(tree, env);
  } catch (err) {
    if (err instanceof ConfigError) return [...err.problems];
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('clients: as loaded', () => {
  it('a confidential client with the defaults', () => {
    const config = parse(withClients([{ id: 'grafana', secret: '${SECRET}', redirect_uris: ['https://grafana.example.com/login/generic_oauth'] }]));
    expect(config.clients).toEqual([
      {
        id: 'grafana',
        name: 'grafana',
        type: 'confidential',
        secret: SECRET,
        authMethod: 'client_secret_basic',
        redirectUris: ['https://grafana.example.com/login/generic_oauth'],
        postLogoutRedirectUris: [],
        grantTypes: ['authorization_code', 'refresh_token'],
        scopes: ['openid', 'email', 'profile'],
        roles: [],
        claims: ['email', 'email_verified', 'name', 'preferred_username', 'groups', 'roles'],
        terminalLogin: false,
        lifetimes: { accessTokenSeconds: 600, idTokenSeconds: 600 },
      },
    ]);
  });

  it('a public device-flow client, its secret from a file for a confidential one', () => {
    const file = join(dir, 'argocd-secret');
    writeFileSync(file, `${SECRET}\n`);
    const config = parse(
      withClients([
        { id: 'kubelogin', type: 'public', redirect_uris: ['http://localhost:8000'], grant_types: ['authorization_code', 'device_code', 'refresh_token'], scopes: ['openid', 'groups', 'roles'], roles: ['reader'], lifetimes: { refresh_token_seconds: 3600 } },
        { id: 'argocd', secret_file: file, auth_method: 'client_secret_post', redirect_uris: ['https://argocd.example.com/auth/callback'] },
      ]),
    );
    expect(config.clients![0]).toMatchObject({ type: 'public', authMethod: 'none', grantTypes: ['authorization_code', 'device_code', 'refresh_token'], roles: ['reader'], lifetimes: { accessTokenSeconds: 600, idTokenSeconds: 600, refreshTokenSeconds: 3600 } });
    expect(config.clients![0]).not.toHaveProperty('secret');
    expect(config.clients![1]).toMatchObject({ secret: SECRET, authMethod: 'client_secret_post' });
  });
});

describe('clients: problems, each at its path', () => {
  it.each([
    ['a secret written into the file', { id: 'a', secret: 'written-into-the-file-123', redirect_uris: ['https://a.example.com/cb'] }, 'clients[0].secret: found a secret written in the file'],
    ['a confidential client without a secret', { id: 'a', redirect_uris: ['https://a.example.com/cb'] }, 'clients[0].secret: missing, expected the client secret'],
    ['a public client with a secret', { id: 'a', type: 'public', secret: '${SECRET}', redirect_uris: ['https://a.example.com/cb'] }, 'clients[0].secret: found a secret, expected none for type: public'],
    ['a short secret', { id: 'a', secret: '${SHORT}', redirect_uris: ['https://a.example.com/cb'] }, 'clients[0].secret: found a string of 5 characters, expected a secret of at least 16 characters'],
    ['a plain-http redirect URI off loopback', { id: 'a', secret: '${SECRET}', redirect_uris: ['http://grafana.example.com/cb'] }, 'clients[0].redirect_uris[0]: found "http://grafana.example.com/cb", expected an absolute https URL'],
    ['a redirect URI with a fragment', { id: 'a', secret: '${SECRET}', redirect_uris: ['https://a.example.com/cb#x'] }, 'clients[0].redirect_uris[0]: found "https://a.example.com/cb#x"'],
    ['no redirect URI for the code flow', { id: 'a', secret: '${SECRET}' }, 'clients[0].redirect_uris: found none, expected at least one redirect URI'],
    ['an unknown scope', { id: 'a', secret: '${SECRET}', redirect_uris: ['https://a.example.com/cb'], scopes: ['openid', 'admin'] }, 'clients[0].scopes[1]: found "admin", expected one of openid, email, profile, groups, roles, offline_access'],
    ['no openid scope', { id: 'a', secret: '${SECRET}', redirect_uris: ['https://a.example.com/cb'], scopes: ['email'] }, 'clients[0].scopes: found no openid'],
    ['an unknown grant type', { id: 'a', secret: '${SECRET}', redirect_uris: ['https://a.example.com/cb'], grant_types: ['implicit'] }, 'clients[0].grant_types[0]: found "implicit", expected one of authorization_code, refresh_token, device_code'],
    ['an unknown claim', { id: 'a', secret: '${SECRET}', redirect_uris: ['https://a.example.com/cb'], claims: ['phone'] }, 'clients[0].claims[0]: found "phone"'],
    ['an unknown role', { id: 'a', secret: '${SECRET}', redirect_uris: ['https://a.example.com/cb'], roles: ['deployr'] }, 'clients[0].roles[0]: unknown role "deployr"; did you mean "deployer"?'],
    ['a lifetime out of range', { id: 'a', secret: '${SECRET}', redirect_uris: ['https://a.example.com/cb'], lifetimes: { access_token_seconds: 5 } }, 'clients[0].lifetimes.access_token_seconds: found 5, expected an integer in 60..86400'],
    ['an unknown key', { id: 'a', secret: '${SECRET}', redirect_uris: ['https://a.example.com/cb'], redirect_uri: 'x' }, 'clients[0]: unknown key "redirect_uri"'],
    ['terminal_login on a confidential client', { id: 'a', secret: '${SECRET}', grant_types: ['device_code'], terminal_login: true }, 'clients[0].terminal_login: found terminal_login: true, expected it only on a type: public client with device_code in grant_types'],
    ['terminal_login without the device flow', { id: 'a', type: 'public', redirect_uris: ['http://localhost:8000'], terminal_login: true }, 'clients[0].terminal_login: found terminal_login: true, expected it only on a type: public client with device_code in grant_types'],
  ])('%s', (_name, client, problem) => {
    const problems = problemsOf(withClients([client]), { SECRET, SHORT: 'short' });
    expect(problems.some((p) => p.startsWith(problem)), problems.join('\n')).toBe(true);
  });

  it('duplicate client ids are named with the first', () => {
    const client = { id: 'same', secret: '${SECRET}', redirect_uris: ['https://a.example.com/cb'] };
    expect(problemsOf(withClients([client, client]))).toContain('clients[1].id: duplicate client id "same" (also clients[0].id), expected unique client ids');
  });

  it('every problem of a file at once', () => {
    const problems = problemsOf(withClients([{ id: 'a', type: 'public', secret: '${SECRET}' }, { id: 'b', secret: '${SECRET}', redirect_uris: ['https://b.example.com/cb'], roles: ['nope'] }]));
    expect(problems.length).toBeGreaterThanOrEqual(3);
  });
});

describe("the README's clients: examples", () => {
  it('load as they are written (roles defined, secrets from the environment)', async () => {
    const { readFileSync } = await import('node:fs');
    const { parseAllDocuments } = await import('yaml');
    const readme = readFileSync(join(import.meta.dirname, '..', '..', 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('### Sign in with stsgate'), readme.indexOf('### Commands'));
    const blocks = [...section.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!).filter((block) => block.includes('clients:'));
    expect(blocks.length).toBe(2);
    const roles = ['grafana-admin', 'grafana-editor', 'cluster-admin', 'developer', 'argocd-admin', 'argocd-readonly'].map((name) => ({ name }));
    for (const block of blocks) {
      const clients = (parseAllDocuments(block)[0]!.toJSON() as { clients: unknown }).clients;
      const config = parse({ ...withClients(clients), roles }, { GRAFANA_OIDC_SECRET: SECRET, ARGOCD_OIDC_SECRET: SECRET });
      // Every client the block lists loads (the first block also has the terminal's device client).
      expect(config.clients!.map((c) => c.id)).toEqual([...block.matchAll(/^ {2}- id: ([\w-]+)/gm)].map((m) => m[1]));
      expect(config.clients!.length).toBeGreaterThanOrEqual(2);
    }
  });
});
