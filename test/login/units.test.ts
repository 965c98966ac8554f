/**
 * The pure parts of the browser login: provider definitions, claim building, return_to checking, the
 * `html` template's escaping and GitHub's Link header.
 */
import { describe, expect, it } from 'vitest';
import { expandTemplate, overridableEndpoints, providerDefinitions } from '../../src/config/provider-definitions.js';
import { buildClaims } from '../../src/idp/profile-claims.js';
import { nextLink } from '../../src/idp/provider-api.js';
import { checkReturnTo } from '../../src/idp/return-to.js';
import { hostOnlyCookieName } from '../../src/idp/browser-login.js';
import { html } from '../../src/http/pages.js';

describe('provider definitions', () => {
  const definitions = providerDefinitions();

  it('loads google, github, facebook and oidc, each naming a registered adapter, saml and ldap, which have none', () => {
    expect([...definitions.keys()]).toEqual(['facebook', 'github', 'google', 'ldap', 'oidc', 'saml']);
    expect(definitions.get('saml')).toMatchObject({ kind: 'saml', scopes: [], claims: { sub: 'name_id' } });
    expect(definitions.get('saml')!.adapter).toBeUndefined();
    expect(definitions.get('ldap')).toMatchObject({ kind: 'ldap', scopes: [] });
    expect(definitions.get('ldap')!.adapter).toBeUndefined();
    expect(definitions.get('google')).toMatchObject({ kind: 'oidc', adapter: 'oidc', issuer: 'https://accounts.google.com' });
    expect(definitions.get('github')).toMatchObject({ kind: 'oauth2', adapter: 'github' });
    expect(definitions.get('github')!.scopes).toContain('read:org');
    expect(definitions.get('facebook')!.constants.graph_api_version).toMatch(/^v\d+\.\d+$/);
  });

  it('fills endpoint templates from base URLs, with overrides and without double slashes', () => {
    const github = definitions.get('github')!;
    expect(expandTemplate(github.endpoints.teams!, { ...github.urls })).toBe('https://api.github.com/user/teams');
    expect(expandTemplate(github.endpoints.teams!, { ...github.urls, api_url: 'https://ghe.example.com/api/v3/' })).toBe('https://ghe.example.com/api/v3/user/teams');
    const facebook = definitions.get('facebook')!;
    expect(expandTemplate(facebook.endpoints.me!, { ...facebook.constants, ...facebook.urls })).toBe(`https://graph.facebook.com/${facebook.constants.graph_api_version}/me`);
  });

  it('lets any endpoint be overridden by name', () => {
    expect(overridableEndpoints(definitions.get('google')!)).toEqual(['authorization', 'token', 'userinfo', 'jwks']);
    expect(overridableEndpoints(definitions.get('github')!)).toEqual(['authorization', 'token', 'user', 'emails', 'orgs', 'teams']);
  });
});

describe('buildClaims', () => {
  it('follows the definition paths, drops absent values and makes a numeric sub a string', () => {
    const spec = providerDefinitions().get('github')!.claims;
    expect(buildClaims(spec, { user: { id: 42, login: 'x', name: null }, email: { verified: false }, orgs: ['a'], teams: [] })).toEqual({
      sub: '42',
      login: 'x',
      email_verified: false,
      orgs: ['a'],
      teams: [],
    });
  });

  it('with claims: all, merges userinfo under the ID token and drops protocol claims', () => {
    expect(buildClaims('all', { id_token: { sub: 's', email: 'signed@x', nonce: 'n', at_hash: 'h' }, userinfo: { sub: 's', email: 'other@x', groups: ['g'] } })).toEqual({
      sub: 's',
      email: 'signed@x',
      groups: ['g'],
    });
  });

  it('keeps a claim named __proto__ as data', () => {
    const claims = buildClaims('all', { id_token: JSON.parse('{"sub":"s","__proto__":{"admin":true}}') as Record<string, unknown> });
    expect(Object.hasOwn(claims, '__proto__')).toBe(true);
    expect(({} as Record<string, unknown>).admin).toBeUndefined();
  });
});

describe('checkReturnTo', () => {
  const publicUrl = 'https://sts.example.com';
  const allowed = ['https://app.example.com'];
  it.each([
    ['/', '/'],
    ['/?role=x#top', '/?role=x#top'],
    ['https://sts.example.com/page', '/page'],
    ['https://app.example.com/done', 'https://app.example.com/done'],
  ])('accepts %s as %s', (raw, expected) => {
    expect(checkReturnTo(raw, publicUrl, allowed)).toBe(expected);
  });

  // Dot segments (RFC 3986 §5.2.4; WHATWG URL reads `%2e` as `.` too) are refused, never normalized:
  // `/.//evil.example` normalizes to `//evil.example`, a network-path reference to another host.
  it.each([
    '/.//evil.example/x',
    '/..//evil.example/x',
    '/a/..//evil.example/x',
    '/a/b/../..//evil.example/x',
    '/%2e//evil.example/x',
    '/%2E//evil.example/x',
    '/.%2e//evil.example/x',
    '/%2e.//evil.example/x',
    '/%2E%2e//evil.example/x',
    '/a/%2e%2E//evil.example/x',
    '/./',
    '/a/..',
    '/a/.',
    '/a/%2e',
    '/a/../b',
    '/a/./b',
    'https://sts.example.com/.//evil.example/x',
    'https://sts.example.com/..//evil.example/x',
    'https://sts.example.com/%2e//evil.example/x',
    'https://sts.example.com/a/.%2E//evil.example/x',
    'https://app.example.com/.//evil.example/x',
    'https://app.example.com/a/../b',
  ])('refuses the dot segments in %j', (raw) => {
    expect(checkReturnTo(raw, publicUrl, allowed)).toBeUndefined();
  });

  // What is returned is checked again: an own-origin URL whose path starts with `//` would come back
  // as the path `//evil.example`, another host to the browser.
  it.each(['https://sts.example.com//evil.example/x', 'https://sts.example.com///evil.example', 'HTTPS://STS.EXAMPLE.COM//evil.example'])('refuses %j, whose path alone would name another host', (raw) => {
    expect(checkReturnTo(raw, publicUrl, allowed)).toBeUndefined();
  });

  it.each(['/a.b/c', '/.well-known/x', '/..a/b', '/a/b..', '/%2ea', '/?next=/../x', '/#/../x'])('accepts %j: dots that are not a whole path segment', (raw) => {
    expect(checkReturnTo(raw, publicUrl, allowed)).toBe(raw);
  });

  it.each(['//evil.example', '/\\evil.example', '\\/evil.example', '/%2f%2fevil.example', '/%5c', '/x%252f', 'https://evil.example', 'https://sts.example.com.evil.example/', 'http://sts.example.com/', 'https://user@sts.example.com/', '/a\u2028b', '/a b', 'javascript:alert(1)', 'x', ''])('refuses %j', (raw) => {
    expect(checkReturnTo(raw, publicUrl, allowed)).toBeUndefined();
  });
});

describe('hostOnlyCookieName', () => {
  it.each([
    ['https://sts.example.com', 'stsgate_session', '__Host-stsgate_session'],
    ['https://sts.example.com:8443', 'sid', '__Host-sid'],
    ['https://sts.example.com', '__Host-stsgate', '__Host-stsgate'],
    ['https://sts.example.com', '__Secure-stsgate', '__Host-stsgate'],
    ['http://127.0.0.1:8080', 'stsgate_session', 'stsgate_session'],
  ])('under %s, %s is set as %s', (publicUrl, configured, expected) => {
    expect(hostOnlyCookieName(publicUrl, configured)).toBe(expected);
  });
});

describe('html', () => {
  it('escapes every interpolated value, inserts Html as is, and joins arrays', () => {
    const name = `<img src=x onerror="alert('1')">&`;
    expect(html`<p title="${name}">${name}</p>`.markup).toBe('<p title="&lt;img src=x onerror=&quot;alert(&#39;1&#39;)&quot;&gt;&amp;">&lt;img src=x onerror=&quot;alert(&#39;1&#39;)&quot;&gt;&amp;</p>');
    expect(html`<ul>${['a', '<b>'].map((x) => html`<li>${x}</li>`)}</ul>`.markup).toBe('<ul><li>a</li><li>&lt;b&gt;</li></ul>');
    expect(html`${undefined}${null}${false}${0}`.markup).toBe('0');
  });
});

describe('nextLink (RFC 8288)', () => {
  it.each([
    ['<https://api.github.com/user/orgs?page=2>; rel="next", <https://api.github.com/user/orgs?page=5>; rel="last"', 'https://api.github.com/user/orgs?page=2'],
    ['<https://x/1>; rel="prev", <https://x/3>; rel="next"', 'https://x/3'],
    ['<https://x/3>; rel="last"', undefined],
    ['<https://x/3>; rel="nextish"', undefined],
    [null, undefined],
  ])('%s', (header, expected) => {
    expect(nextLink(header)).toBe(expected);
  });
});
