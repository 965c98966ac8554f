/**
 * The SAML attack table, through a running gateway: every answer is built from templates and signed by an
 * independent implementation (`xmlsec1`), POSTed to the ACS the way an IdP's page would, and followed to
 * the callback. A correct answer signs in (and the rules grant a role from its groups); every attack is
 * refused with a page that says so, one `login_failed` audit line with its reason, and no session cookie.
 */
import { inflateRawSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ProviderConfig } from '../../src/config/types.js';
import { TestBrowser } from '../support/browser.js';
import { reservePublicUrl } from '../support/browser-login.js';
import { startTestGateway, standardRoles, type TestGateway } from '../support/gateway.js';
import { assertionXml, haveXmlsec, IDP_SSO_URL, newId, responseXml, SIGNATURE_TEMPLATE, XmlsecIdp, type ResponseFields } from '../support/saml-signer.js';

const PROVIDER = 'acme-saml';
/** The same IdP configured with `signed: response`: the Response signature alone covers the assertion. */
const RESPONSE_SIGNED = 'acme-saml-r';
/** The same IdP with `allow_idp_initiated: true`. */
const IDP_INITIATED = 'acme-saml-i';
const available = await haveXmlsec();
if (!available) console.warn('SKIP test/saml/attacks.test.ts: xmlsec1 or openssl is not installed (apt-get install -y xmlsec1 openssl)');

let idp: XmlsecIdp;
let gateway: TestGateway;
let publicUrl: string;
let acsUrl: string;
let spEntityId: string;

/** A started login: the AuthnRequest's ID and the RelayState, in this browser. */
async function startSamlLogin(browser: TestBrowser, provider = PROVIDER): Promise<{ requestId: string; relayState: string }> {
  const response = await browser.get(`${publicUrl}/login/${provider}`);
  expect(response.status).toBe(302);
  const location = new URL(response.headers.get('location')!);
  expect(`${location.origin}${location.pathname}`).toBe(IDP_SSO_URL);
  const request = inflateRawSync(Buffer.from(location.searchParams.get('SAMLRequest')!, 'base64')).toString('utf8');
  const requestId = /\bID="([^"]+)"/.exec(request)![1]!;
  expect(request).toContain(`AssertionConsumerServiceURL="${publicUrl}/saml/${provider}/acs"`);
  return { requestId, relayState: location.searchParams.get('RelayState')! };
}

/** Posts an answer to the ACS and follows it to the callback; the last response. */
async function deliver(browser: TestBrowser, xml: string, relayState: string | undefined, provider = PROVIDER): Promise<Response> {
  const form: Record<string, string> = { SAMLResponse: Buffer.from(xml, 'utf8').toString('base64') };
  if (relayState !== undefined) form.RelayState = relayState;
  const posted = await browser.request(`${publicUrl}/saml/${provider}/acs`, { form, headers: { origin: 'https://idp.test.example', 'sec-fetch-site': 'cross-site' } });
  const location = posted.headers.get('location');
  if (posted.status !== 303 || location === null || !location.startsWith('/callback/')) return posted;
  await posted.body?.cancel();
  return browser.get(new URL(location, publicUrl));
}

function fieldsFor(requestId: string, overrides: Partial<ResponseFields> = {}): ResponseFields {
  return { acsUrl, audience: spEntityId, inResponseTo: requestId, nameId: 'alice@acme.com', attributes: { email: ['alice@acme.com'], groups: ['staff', 'sts-admins'] }, ...overrides };
}

function auditLinesSince(count: number): Record<string, unknown>[] {
  return gateway.logs().slice(count).filter((l) => l.log === 'audit');
}

beforeAll(async () => {
  if (!available) return;
  idp = await XmlsecIdp.create();
  const reserved = await reservePublicUrl();
  publicUrl = reserved.publicUrl;
  acsUrl = `${publicUrl}/saml/${PROVIDER}/acs`;
  spEntityId = `${publicUrl}/saml/${PROVIDER}/metadata`;
  // The IdP is rotating: its metadata lists the previous signing certificate and the current one.
  const provider: ProviderConfig = {
    id: PROVIDER,
    use: 'saml',
    clientId: '',
    clientSecret: '',
    urls: {},
    endpoints: {},
    displayName: 'Acme SSO',
    saml: { idpMetadata: idp.metadata(), signed: 'both', attributes: { email: 'email', groups: 'groups' }, multiValued: ['groups'], allowIdpInitiated: false, clockSkewSeconds: 60 },
  };
  gateway = await startTestGateway({
    issuers: [],
    port: reserved.port,
    roles: standardRoles(),
    rules: [{ name: 'sts-admins administer', match: { source: PROVIDER, conditions: [{ claim: 'groups', op: 'contains', value: 'sts-admins', ignoreCase: false }] }, roles: ['admin'] }, { name: 'sts-admins administer (i)', match: { source: IDP_INITIATED, conditions: [{ claim: 'groups', op: 'contains', value: 'sts-admins', ignoreCase: false }] }, roles: ['admin'] }, { name: 'sts-admins administer (r)', match: { source: RESPONSE_SIGNED, conditions: [{ claim: 'groups', op: 'contains', value: 'sts-admins', ignoreCase: false }] }, roles: ['admin'] }],
    config: {
      publicUrl,
      providers: [
        provider,
        { ...provider, id: RESPONSE_SIGNED, saml: { ...provider.saml!, signed: 'response', entityId: spEntityId } },
        { ...provider, id: IDP_INITIATED, saml: { ...provider.saml!, allowIdpInitiated: true, entityId: spEntityId } },
      ],
      browser: { sessionTtlSeconds: 3600, allowedReturnOrigins: [], cookieName: 'stsgate_session' } },
  });
});

afterAll(async () => {
  await gateway?.close();
});

describe.skipIf(!available)('SAML through the gateway, signed by xmlsec1', () => {
  it('publishes SP metadata naming the entity id and the ACS URL (HTTP-POST)', async () => {
    const response = await fetch(`${publicUrl}/saml/${PROVIDER}/metadata`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toContain('application/samlmetadata+xml');
    const body = await response.text();
    expect(body).toContain(`entityID="${spEntityId}"`);
    expect(body).toContain(`Location="${acsUrl}"`);
    expect(body).toContain('urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST');
  });

  it('signs in with a correct answer; the rules grant admin from the groups attribute', async () => {
    const browser = new TestBrowser();
    const { requestId, relayState } = await startSamlLogin(browser);
    const xml = await idp.signedResponse(fieldsFor(requestId));
    const before = gateway.logs().length;
    const response = await deliver(browser, xml, relayState);
    expect(response.status, await response.clone().text()).toBe(303);
    expect(response.headers.get('location')).toBe('/');
    expect(browser.cookie(publicUrl, 'stsgate_session')).toBeDefined();
    expect(auditLinesSince(before)).toEqual([expect.objectContaining({ event: 'login', provider: PROVIDER, subject: 'alice@acme.com' })]);
    const credentials = await browser.get(`${publicUrl}/v1/credentials?role=admin`);
    expect(credentials.status).toBe(200);
    expect(((await credentials.json()) as { AccessKeyId: string }).AccessKeyId).toMatch(/^ASIA/);
  });

  /** Each row: how the answer is built from a started login's request ID; the audit reason expected. */
  const attacks: [string, (requestId: string) => Promise<string>, string][] = [
    ['XSW: a second, unsigned assertion after the signed one', async (id) => {
      const signed = await idp.signedResponse(fieldsFor(id));
      return signed.replace('</samlp:Response>', `${assertionXml(fieldsFor(id, { nameId: 'admin@acme.com' }))}</samlp:Response>`);
    }, 'saml_malformed'],
    ['XSW: an unsigned assertion before the signed one', async (id) => {
      const signed = await idp.signedResponse(fieldsFor(id));
      return signed.replace('<samlp:Status>', `${assertionXml(fieldsFor(id, { nameId: 'admin@acme.com' }))}<samlp:Status>`);
    }, 'saml_malformed'],
    ['XSW: the signed assertion moved under Extensions, an unsigned one in its place', async (id) => {
      const assertion = await idp.signedAssertion(fieldsFor(id));
      const evil = assertionXml(fieldsFor(id, { nameId: 'admin@acme.com' }));
      return responseXml(fieldsFor(id), evil).replace('<samlp:Status>', `<samlp:Extensions>${assertion}</samlp:Extensions><samlp:Status>`);
    }, 'saml_malformed'],
    ['XSW: the signed assertion wrapped inside the evil assertion (its Signature Object)', async (id) => {
      const assertion = await idp.signedAssertion(fieldsFor(id));
      const evilId = newId();
      const evil = assertionXml(fieldsFor(id, { nameId: 'admin@acme.com', assertionId: evilId })).replace('</saml:Issuer>', `</saml:Issuer><ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:Object>${assertion}</ds:Object></ds:Signature>`);
      return responseXml(fieldsFor(id), evil);
    }, 'saml_malformed'],
    ['XSW: the evil assertion carries the signed one\'s ID (duplicate IDs)', async (id) => {
      const assertion = await idp.signedAssertion(fieldsFor(id));
      const signedId = /ID="([^"]+)"/.exec(assertion)![1]!;
      const evil = assertionXml(fieldsFor(id, { nameId: 'admin@acme.com', assertionId: signedId }));
      return responseXml(fieldsFor(id), evil).replace('<samlp:Status>', `<samlp:Extensions>${assertion}</samlp:Extensions><samlp:Status>`);
    }, 'saml_malformed'],
    ['XSW: the signed Response moved into an evil Response\'s Extensions', async (id) => {
      const signed = await idp.signedResponse(fieldsFor(id));
      const evil = responseXml(fieldsFor(id), assertionXml(fieldsFor(id, { nameId: 'admin@acme.com' })));
      return evil.replace('<samlp:Status>', `<samlp:Extensions>${signed}</samlp:Extensions><samlp:Status>`);
    }, 'saml_malformed'],
    ['a signed Response with an unsigned assertion injected in place of the signed one', async (id) => {
      // The Response signature no longer matches once the assertion is swapped.
      const signed = await idp.signedResponse(fieldsFor(id));
      const evil = assertionXml(fieldsFor(id, { nameId: 'admin@acme.com' }));
      return signed.replace(/<saml:Assertion[\s\S]*<\/saml:Assertion>/, evil);
    }, 'saml_signature_invalid'],
    ['a Response signed over an unsigned assertion (the assertion must be signed too)', async (id) => {
      return idp.signedResponse(fieldsFor(id, { nameId: 'admin@acme.com' }), { signAssertion: false });
    }, 'saml_signature_invalid'],
    ['a signed assertion in an unsigned Response (the Response must be signed too)', async (id) => {
      return idp.signedResponse(fieldsFor(id), { signResponse: false });
    }, 'saml_signature_invalid'],
    ['a comment inside NameID (admin<!---->@evil)', async (id) => {
      return idp.signedResponse(fieldsFor(id, { nameId: 'admin@acme.com<!---->.evil.example' }));
    }, 'saml_malformed'],
    ['an answer for another service provider (audience)', async (id) => {
      return idp.signedResponse(fieldsFor(id, { audience: 'https://other-sp.example/metadata' }));
    }, 'saml_conditions'],
    ['an expired answer', async (id) => {
      return idp.signedResponse(fieldsFor(id, { notBeforeSeconds: -3600, notOnOrAfterSeconds: -600 }));
    }, 'saml_conditions'],
    ['an answer not valid yet', async (id) => {
      return idp.signedResponse(fieldsFor(id, { notBeforeSeconds: 900, notOnOrAfterSeconds: 1800 }));
    }, 'saml_conditions'],
    ['an answer signed by another certificate', async (id) => {
      return idp.signedResponse(fieldsFor(id), { key: idp.otherKey });
    }, 'saml_signature_invalid'],
    ['an answer for another ACS (Destination)', async (id) => {
      return idp.signedResponse(fieldsFor(id, { destination: 'https://other-sp.example/acs' }));
    }, 'saml_destination'],
    ['an answer whose Recipient is another ACS', async (id) => {
      return idp.signedResponse(fieldsFor(id, { recipient: 'https://other-sp.example/acs' }));
    }, 'saml_destination'],
    ['an answer from another issuer', async (id) => {
      return idp.signedResponse(fieldsFor(id, { issuer: 'https://evil-idp.example/metadata' }));
    }, 'saml_conditions'],
    ['an answer to another AuthnRequest (InResponseTo)', async () => {
      return idp.signedResponse(fieldsFor(newId()));
    }, 'saml_in_response_to'],
    ['XXE: an external entity in a DOCTYPE', async (id) => {
      const signed = await idp.signedResponse(fieldsFor(id));
      return `<?xml version="1.0"?><!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>${signed.replace('alice@acme.com', '&xxe;')}`;
    }, 'saml_malformed'],
    ['a DOCTYPE with entity expansion (billion laughs)', async (id) => {
      const signed = await idp.signedResponse(fieldsFor(id));
      return `<!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>${signed}`;
    }, 'saml_malformed'],
    ['a signature with a transform outside the allow-list (XPath)', async (id) => {
      const assertion = assertionXml(fieldsFor(id)).replace('</saml:Issuer>', `</saml:Issuer>${SIGNATURE_TEMPLATE('PLACEHOLDER')}`);
      const assertionId = /ID="([^"]+)"/.exec(assertion)![1]!;
      const template = assertion.replace('#PLACEHOLDER', `#${assertionId}`).replace('<ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>', '<ds:Transform Algorithm="http://www.w3.org/TR/1999/REC-xpath-19991116"><ds:XPath>not(ancestor-or-self::saml:NameID)</ds:XPath></ds:Transform>');
      const signedAssertion = await idp.sign(template);
      return idp.sign(responseXml(fieldsFor(id), signedAssertion, { signatureTemplate: true }));
    }, 'saml_signature_invalid'],
  ];

  it.each(attacks)('refuses %s: a page, an audit line, no session', async (_name, build, reason) => {
    const browser = new TestBrowser();
    const { requestId, relayState } = await startSamlLogin(browser);
    const xml = await build(requestId);
    const before = gateway.logs().length;
    const response = await deliver(browser, xml, relayState);
    const page = await response.text();
    expect(response.status, page.slice(0, 300)).toBeGreaterThanOrEqual(400);
    expect(response.status).toBeLessThan(500);
    expect(response.headers.get('content-type')).toContain('text/html');
    expect(page).toMatch(/nobody was signed in|not signed the way|did not sign you in/);
    expect(browser.cookie(publicUrl, 'stsgate_session')).toBeUndefined();
    expect(response.headers.getSetCookie().some((c) => c.startsWith('stsgate_session=') && !/max-age=0/i.test(c))).toBe(false);
    const audit = auditLinesSince(before);
    expect(audit).toEqual([expect.objectContaining({ event: 'login_failed', provider: PROVIDER, reason })]);
    expect(audit[0]).not.toHaveProperty('subject');
  });

  it('refuses a replayed answer: the second delivery of the same response and RelayState', async () => {
    const browser = new TestBrowser();
    const { requestId, relayState } = await startSamlLogin(browser);
    const xml = await idp.signedResponse(fieldsFor(requestId));
    expect((await deliver(browser, xml, relayState)).status).toBe(303);
    const attacker = new TestBrowser();
    for (const [who, client] of [['the same browser', browser], ['another browser', attacker]] as const) {
      const before = gateway.logs().length;
      const replay = await deliver(client, xml, relayState);
      expect(replay.status, who).toBe(400);
      expect(await replay.text()).toContain('does not belong to a sign-in in progress');
      expect(auditLinesSince(before)).toEqual([expect.objectContaining({ event: 'login_failed', reason: 'state_unknown' })]);
    }
  });

  it('refuses a replayed answer under a new login\'s RelayState (InResponseTo is bound to the transaction)', async () => {
    const browser = new TestBrowser();
    const first = await startSamlLogin(browser);
    const xml = await idp.signedResponse(fieldsFor(first.requestId));
    expect((await deliver(browser, xml, first.relayState)).status).toBe(303);
    const attacker = new TestBrowser();
    const second = await startSamlLogin(attacker);
    const before = gateway.logs().length;
    const replay = await deliver(attacker, xml, second.relayState);
    expect(replay.status).toBe(400);
    expect(attacker.cookie(publicUrl, 'stsgate_session')).toBeUndefined();
    expect(auditLinesSince(before)).toEqual([expect.objectContaining({ event: 'login_failed', reason: 'saml_in_response_to' })]);
  });

  describe('with signed: response (only the Response signature is required)', () => {
    // The second provider shares the first's entity id, so one answer shape serves both; its ACS is its own.
    const responseFields = (id: string, overrides: Partial<ResponseFields> = {}) => fieldsFor(id, { acsUrl: `${publicUrl}/saml/${RESPONSE_SIGNED}/acs`, ...overrides });

    it('signs in with a signed Response around an unsigned assertion', async () => {
      const browser = new TestBrowser();
      const { requestId, relayState } = await startSamlLogin(browser, RESPONSE_SIGNED);
      const response = await deliver(browser, await idp.signedResponse(responseFields(requestId), { signAssertion: false }), relayState, RESPONSE_SIGNED);
      expect(response.status).toBe(303);
      expect(browser.cookie(publicUrl, 'stsgate_session')).toBeDefined();
    });

    it.each<[string, (id: string) => Promise<string>, string]>([
      ['a signed Response with its assertion swapped for an injected one', async (id) => {
        const signed = await idp.signedResponse(responseFields(id), { signAssertion: false });
        return signed.replace(/<saml:Assertion[\s\S]*<\/saml:Assertion>/, assertionXml(responseFields(id, { nameId: 'admin@acme.com' })));
      }, 'saml_signature_invalid'],
      ['a signed Response with a second, injected assertion', async (id) => {
        const signed = await idp.signedResponse(responseFields(id), { signAssertion: false });
        return signed.replace('</samlp:Response>', `${assertionXml(responseFields(id, { nameId: 'admin@acme.com' }))}</samlp:Response>`);
      }, 'saml_malformed'],
      ['an unsigned Response around a signed assertion', async (id) => idp.signedResponse(responseFields(id), { signResponse: false }), 'saml_signature_invalid'],
    ])('refuses %s', async (_name, build, reason) => {
      const browser = new TestBrowser();
      const { requestId, relayState } = await startSamlLogin(browser, RESPONSE_SIGNED);
      const before = gateway.logs().length;
      const response = await deliver(browser, await build(requestId), relayState, RESPONSE_SIGNED);
      expect(response.status).toBe(400);
      expect(browser.cookie(publicUrl, 'stsgate_session')).toBeUndefined();
      expect(auditLinesSince(before)).toEqual([expect.objectContaining({ event: 'login_failed', provider: RESPONSE_SIGNED, reason })]);
    });
  });

  it('refuses an IdP-initiated answer while allow_idp_initiated is off', async () => {
    const browser = new TestBrowser();
    const fields = fieldsFor('unused');
    delete fields.inResponseTo;
    const xml = await idp.signedResponse(fields);
    const before = gateway.logs().length;
    const response = await deliver(browser, xml, undefined);
    expect(response.status).toBe(400);
    expect(await response.text()).toContain('accepts only sign-ins it started');
    expect(browser.cookie(publicUrl, 'stsgate_session')).toBeUndefined();
    expect(auditLinesSince(before)).toEqual([expect.objectContaining({ event: 'login_failed', reason: 'saml_unsolicited' })]);
  });

  it('with allow_idp_initiated: signs in with an unsolicited answer once, and refuses it the second time', async () => {
    const fields = fieldsFor('unused', { acsUrl: `${publicUrl}/saml/${IDP_INITIATED}/acs` });
    delete fields.inResponseTo;
    const xml = await idp.signedResponse(fields);
    const browser = new TestBrowser();
    const first = await deliver(browser, xml, undefined, IDP_INITIATED);
    expect(first.status).toBe(303);
    expect(first.headers.get('location')).toBe('/');
    expect(browser.cookie(publicUrl, 'stsgate_session')).toBeDefined();
    const attacker = new TestBrowser();
    const before = gateway.logs().length;
    const replay = await deliver(attacker, xml, undefined, IDP_INITIATED);
    expect(replay.status).toBe(400);
    expect(await replay.text()).toContain('was used already');
    expect(attacker.cookie(publicUrl, 'stsgate_session')).toBeUndefined();
    expect(auditLinesSince(before)).toEqual([expect.objectContaining({ event: 'login_failed', provider: IDP_INITIATED, reason: 'saml_unsolicited' })]);
  });

  it('with allow_idp_initiated: still refuses an unsolicited answer that names an AuthnRequest', async () => {
    const xml = await idp.signedResponse(fieldsFor(newId(), { acsUrl: `${publicUrl}/saml/${IDP_INITIATED}/acs` }));
    const browser = new TestBrowser();
    const response = await deliver(browser, xml, undefined, IDP_INITIATED);
    expect(response.status).toBe(400);
    expect(browser.cookie(publicUrl, 'stsgate_session')).toBeUndefined();
  });

  it('refuses an answer delivered in another browser than the one that started the login', async () => {
    const victim = new TestBrowser();
    const { requestId, relayState } = await startSamlLogin(victim);
    const xml = await idp.signedResponse(fieldsFor(requestId));
    const attacker = new TestBrowser();
    const response = await deliver(attacker, xml, relayState);
    expect(response.status).toBe(400);
    expect(attacker.cookie(publicUrl, 'stsgate_session')).toBeUndefined();
  });

  it('accepts an answer signed with the previous certificate while the metadata lists both (rotation)', async () => {
    const browser = new TestBrowser();
    const { requestId, relayState } = await startSamlLogin(browser);
    const response = await deliver(browser, await idp.signedResponse(fieldsFor(requestId), { key: idp.previousKey }), relayState);
    expect(response.status).toBe(303);
    expect(browser.cookie(publicUrl, 'stsgate_session')).toBeDefined();
  });
});
