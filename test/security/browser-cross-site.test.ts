/**
 * The start page's credentials (`GET /?role=`) for a request another site caused: a cross-site link or
 * redirect, a same-site page's image or script (no-cors), an old browser or a tool that says nothing
 * about where the request came from. Only the gateway's own page (Fetch Metadata `Sec-Fetch-Site:
 * same-origin`, a navigation) gets credentials; every other request gets the account page without them:
 * nothing issued, nothing stored, no cookie, and the subject's rate limit untouched (the gateway here
 * allows one issuance per subject per minute, and the same-origin request after all the refused ones
 * still gets its credential set).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestBrowser } from '../support/browser.js';
import { loginAs } from '../support/browser-login.js';
import { expectBrowserRefused, SESSION_COOKIE, startBrowserSecurityEnvironment, type BrowserSecurityEnvironment } from './browser-harness.js';

let g: BrowserSecurityEnvironment;
let browser: TestBrowser;
beforeAll(async () => {
  g = await startBrowserSecurityEnvironment({ gateway: { limits: { maxBodyBytes: 65_536, exchangePerSubjectPerMinute: 1 } } });
  browser = new TestBrowser();
  expect((await loginAs(browser, g.url, 'forged', g.env.forged, 'mallory')).status).toBe(303);
  expect(browser.cookie(g.url, SESSION_COOKIE)).toBeDefined();
});
afterAll(async () => {
  await g?.close();
});

/**
 * What the role picker's own form submission sends (Chromium, Firefox, Safari 16.4+). Node's fetch
 * replaces Sec-Fetch-Mode with `cors`, so the gateway decides by Sec-Fetch-Site and Origin alone.
 */
const SAME_ORIGIN_NAVIGATION = { 'sec-fetch-site': 'same-origin', 'sec-fetch-dest': 'document', 'sec-fetch-user': '?1' };

const rateLimitKeys = async () => (await g.redis.keys(`${g.prefix}rl:*`)).sort();

describe('GET /?role= from anywhere but the gateway\'s own page', () => {
  it.each<[string, Record<string, string>]>([
    ['a link on another site', { 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'document', 'sec-fetch-user': '?1' }],
    ['a redirect from another site', { 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'document' }],
    ['an image on another site', { 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'no-cors', 'sec-fetch-dest': 'image' }],
    ['a frame on another site', { 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'iframe' }],
    ['a link on a sibling subdomain (same-site)', { 'sec-fetch-site': 'same-site', 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'document' }],
    ['a script on a sibling subdomain (same-site, no-cors)', { 'sec-fetch-site': 'same-site', 'sec-fetch-mode': 'no-cors', 'sec-fetch-dest': 'script' }],
    ['the address bar, a bookmark or another application (none)', { 'sec-fetch-site': 'none', 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'document' }],
    ['a browser without Fetch Metadata, or a tool', {}],
    ['no Fetch Metadata and another Origin', { origin: 'https://evil.example' }],
    ['same-origin Fetch Metadata with another Origin', { ...SAME_ORIGIN_NAVIGATION, origin: 'https://evil.example' }],
  ])('%s: the account page without credentials, nothing issued or stored, no rate limit spent', async (_what, headers) => {
    const counters = await rateLimitKeys();
    const { text } = await expectBrowserRefused(g, 200, () => browser.get(`${g.url}/?role=reader`, headers));
    expect(text).toContain('<h1>Your account</h1>');
    expect(text).not.toContain('export AWS_ACCESS_KEY_ID');
    // The role asked for is chosen in the picker, and the page says why nothing is shown yet.
    expect(text).toMatch(/<input type="radio" name="role" id="role-\d+" value="reader" aria-describedby="role-\d+-about" checked required>/);
    expect(text).toContain('Press Show credentials');
    expect(await rateLimitKeys()).toEqual(counters);
  });

  it('a role the rules do not grant, cross-site: the account page, not the 403 (nothing is evaluated for a request another site caused)', async () => {
    const { text } = await expectBrowserRefused(g, 200, () => browser.get(`${g.url}/?role=admin`, { 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'navigate' }));
    expect(text).not.toMatch(/value="admin"/);
    // Said in words, from the roles the page already lists (the rules are not asked about admin).
    expect(text).toContain('This account is not allowed the role <strong>admin</strong>, so no credentials were made for it.');
  });
});

describe("the gateway's own page", () => {
  it('gets the credentials, after every refusal above: the allowance of one per minute was not spent', async () => {
    const issued = g.issuedCount();
    const response = await browser.get(`${g.url}/?role=reader`, { ...SAME_ORIGIN_NAVIGATION, origin: g.url });
    expect(response.status).toBe(200);
    const text = await response.text();
    expect(text).toContain('<h1>Credentials for reader</h1>');
    expect(text).toMatch(/export AWS_ACCESS_KEY_ID=ASIA[A-Z2-7]{16}\n/);
    expect(g.issuedCount()).toBe(issued + 1);
  });
});
