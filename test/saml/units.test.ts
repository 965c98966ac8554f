/**
 * The SAML pieces on their own: the structural and signed-assertion checks (src/idp/saml-checks.ts), the
 * IdP metadata reader (src/idp/saml-metadata.ts), and the `use: saml` configuration with its problems
 * named by path. No signatures here: the attack table (attacks.test.ts) has xmlsec1 sign for real.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse as parseYaml, stringify } from 'yaml';
import { ConfigError, parseConfig } from '../../src/config/load.js';
import type { ProviderConfig } from '../../src/config/types.js';
import { inspectResponseDocument, readSignedAssertion, refuseDeclarations, SamlProblem, type SamlProblemKind } from '../../src/idp/saml-checks.js';
import { parseIdentityProviderMetadata } from '../../src/idp/saml-metadata.js';
import { ACCOUNT_ID } from '../support/common.js';
import { assertionXml, IDP_ENTITY_ID, idpMetadataXml, responseXml, SIGNATURE_TEMPLATE } from '../support/saml-signer.js';

const ACS = 'https://sts.example.com/saml/okta/acs';
const SP = 'https://sts.example.com/saml/okta/metadata';
const REQUEST = '_request-1';
const CERT = 'MIIBszCCAVmgAwIBAgIUQ'; // base64 is all the reader checks

function problemKind(run: () => unknown): SamlProblemKind | 'none' {
  try {
    run();
    return 'none';
  } catch (err) {
    if (err instanceof SamlProblem) return err.kind;
    throw err;
  }
}

/** A Response whose Response and Assertion each carry a (template) Signature, as an IdP's would be shaped. */
function shapedResponse(change: (xml: string) => string = (x) => x, fields: Partial<Parameters<typeof assertionXml>[0]> = {}): string {
  const all = { acsUrl: ACS, audience: SP, inResponseTo: REQUEST, nameId: 'alice@acme.com', ...fields };
  return change(responseXml(all, assertionXml(all, { signatureTemplate: true }), { signatureTemplate: true }));
}

describe('refuseDeclarations and inspectResponseDocument', () => {
  it.each<[string, string, SamlProblemKind | 'none']>([
    ['a well-shaped response', shapedResponse(), 'none'],
    ['a DOCTYPE', `<!DOCTYPE x>${shapedResponse()}`, 'malformed'],
    ['a doctype in lower case', `<!doctype x>${shapedResponse()}`, 'malformed'],
    ['an ENTITY without a DOCTYPE', shapedResponse((x) => x.replace('<samlp:Status>', '<!ENTITY x "y"><samlp:Status>')), 'malformed'],
    ['a comment', shapedResponse((x) => x.replace('alice@acme.com', 'alice<!---->@acme.com')), 'malformed'],
    ['a processing instruction', shapedResponse((x) => x.replace('<samlp:Status>', '<?evil x?><samlp:Status>')), 'malformed'],
    ['not XML', '<samlp:Response', 'malformed'],
    ['a LogoutResponse', shapedResponse((x) => x.replaceAll('samlp:Response', 'samlp:LogoutResponse')), 'malformed'],
    ['two assertions', shapedResponse((x) => x.replace('</samlp:Response>', `${assertionXml({ acsUrl: ACS, audience: SP, nameId: 'x' })}</samlp:Response>`)), 'malformed'],
    ['an EncryptedAssertion', shapedResponse((x) => x.replace('</samlp:Response>', '<saml:EncryptedAssertion/></samlp:Response>')), 'malformed'],
    ['no assertion', shapedResponse((x) => x.replace(/<saml:Assertion[\s\S]*<\/saml:Assertion>/, '')), 'malformed'],
    ['a Signature under Status', shapedResponse((x) => x.replace('</samlp:Status>', `${SIGNATURE_TEMPLATE('x')}</samlp:Status>`)), 'malformed'],
    ['a Reference to another element', shapedResponse((x) => x.replace(/URI="#[^"]+"/, 'URI="#elsewhere"')), 'signature'],
    ['an empty Reference URI (the whole document)', shapedResponse((x) => x.replace(/URI="#[^"]+"/, 'URI=""')), 'signature'],
    ['exclusive c14n WithComments', shapedResponse((x) => x.replace('<ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>', '<ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#WithComments"/>')), 'signature'],
    ['rsa-sha1', shapedResponse((x) => x.replace('http://www.w3.org/2001/04/xmldsig-more#rsa-sha256', 'http://www.w3.org/2000/09/xmldsig#rsa-sha1')), 'signature'],
    ['a sha1 digest', shapedResponse((x) => x.replace('http://www.w3.org/2001/04/xmlenc#sha256', 'http://www.w3.org/2000/09/xmldsig#sha1')), 'signature'],
    ['an XSLT transform', shapedResponse((x) => x.replace('http://www.w3.org/2000/09/xmldsig#enveloped-signature', 'http://www.w3.org/TR/1999/REC-xslt-19991116')), 'signature'],
    ['no Response signature', shapedResponse((x) => x.replace(/(<samlp:Response[^>]*><saml:Issuer>[^<]*<\/saml:Issuer>)<ds:Signature[\s\S]*?<\/ds:Signature>/, '$1')), 'signature'],
    ['no Assertion signature', shapedResponse((x) => x.replace(/(<saml:Assertion[^>]*><saml:Issuer>[^<]*<\/saml:Issuer>)<ds:Signature[\s\S]*?<\/ds:Signature>/, '$1')), 'signature'],
    ['another Destination', shapedResponse(undefined, { destination: 'https://evil.example/acs' }), 'destination'],
    ['no Destination', shapedResponse((x) => x.replace(/ Destination="[^"]+"/, '')), 'destination'],
    ['a failed status', shapedResponse((x) => x.replace('status:Success', 'status:Responder')), 'status'],
  ])('%s', (_name, xml, expected) => {
    expect(problemKind(() => inspectResponseDocument(xml, { acsUrl: ACS, signed: 'both' }))).toBe(expected);
  });

  it('requires only the configured signatures: signed: response or signed: assertion', () => {
    const noAssertionSignature = shapedResponse((x) => x.replace(/(<saml:Assertion[^>]*><saml:Issuer>[^<]*<\/saml:Issuer>)<ds:Signature[\s\S]*?<\/ds:Signature>/, '$1'));
    expect(problemKind(() => inspectResponseDocument(noAssertionSignature, { acsUrl: ACS, signed: 'response' }))).toBe('none');
    expect(problemKind(() => inspectResponseDocument(noAssertionSignature, { acsUrl: ACS, signed: 'assertion' }))).toBe('signature');
  });

  it('reports the Response InResponseTo, or none for an IdP-initiated answer', () => {
    expect(inspectResponseDocument(shapedResponse(), { acsUrl: ACS, signed: 'both' }).inResponseTo).toBe(REQUEST);
    expect(inspectResponseDocument(shapedResponse(undefined, { inResponseTo: undefined }), { acsUrl: ACS, signed: 'both' }).inResponseTo).toBeUndefined();
  });

  it('refuses declarations before any parser sees them', () => {
    expect(() => refuseDeclarations('<?xml version="1.0"?><!DOCTYPE r SYSTEM "http://evil.example/x.dtd"><r/>')).toThrow(SamlProblem);
    expect(() => refuseDeclarations('<?xml version="1.0" encoding="UTF-8"?><r/>')).not.toThrow();
  });
});

describe('readSignedAssertion', () => {
  const now = Date.now();
  const expect_ = { acsUrl: ACS, idpEntityId: IDP_ENTITY_ID, spEntityId: SP, requestId: REQUEST, nowMs: now, clockSkewMs: 60_000 };
  const assertion = (fields: Partial<Parameters<typeof assertionXml>[0]> = {}) => assertionXml({ acsUrl: ACS, audience: SP, inResponseTo: REQUEST, nameId: 'alice@acme.com', attributes: { email: ['alice@acme.com'], groups: ['staff', 'sts-admins'] }, ...fields });

  it('reads NameID, its format and the attributes', () => {
    const read = readSignedAssertion(assertion(), expect_);
    expect(read).toMatchObject({ nameId: 'alice@acme.com', nameIdFormat: 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress', attributes: { email: ['alice@acme.com'], groups: ['staff', 'sts-admins'] } });
    expect(read.notOnOrAfterMs).toBeGreaterThan(now);
  });

  it.each<[string, string, Partial<typeof expect_>, SamlProblemKind]>([
    ['another issuer', assertion({ issuer: 'https://evil.example' }), {}, 'conditions'],
    ['another audience', assertion({ audience: 'https://other.example' }), {}, 'conditions'],
    ['another Recipient', assertion({ recipient: 'https://other.example/acs' }), {}, 'destination'],
    ['another AuthnRequest', assertion({ inResponseTo: '_other' }), {}, 'in_response_to'],
    ['an AuthnRequest named in an unsolicited answer', assertion(), { requestId: undefined }, 'in_response_to'],
    ['expired beyond the skew', assertion({ notBeforeSeconds: -600, notOnOrAfterSeconds: -61 }), {}, 'conditions'],
    ['not valid yet beyond the skew', assertion({ notBeforeSeconds: 61, notOnOrAfterSeconds: 600 }), {}, 'conditions'],
    ['a comment splitting the NameID', assertion({ nameId: 'admin@acme.com<!---->.evil' }), {}, 'malformed'],
    ['an element inside the NameID', assertion({ nameId: 'admin<x/>@acme.com' }), {}, 'malformed'],
  ])('refuses %s', (_name, xml, overrides, kind) => {
    expect(problemKind(() => readSignedAssertion(xml, { ...expect_, ...overrides }))).toBe(kind);
  });

  it('accepts times within the skew', () => {
    expect(problemKind(() => readSignedAssertion(assertion({ notBeforeSeconds: 30, notOnOrAfterSeconds: 600 }), expect_))).toBe('none');
    expect(problemKind(() => readSignedAssertion(assertion({ notBeforeSeconds: -600, notOnOrAfterSeconds: -30 }), expect_))).toBe('none');
  });
});

describe('parseIdentityProviderMetadata', () => {
  it('reads the entity id, the HTTP-Redirect SSO URL and every signing certificate', () => {
    const read = parseIdentityProviderMetadata(idpMetadataXml([CERT, `${CERT}AA`]));
    expect(read.entityId).toBe(IDP_ENTITY_ID);
    expect(read.ssoUrl).toBe('https://idp.test.example/sso');
    expect(read.certificates).toHaveLength(2);
    expect(read.certificates[0]).toMatch(/^-----BEGIN CERTIFICATE-----\nMIIB/);
  });

  it('skips encryption-only keys, and refuses metadata with no signing certificate, no redirect SSO, or a DOCTYPE', () => {
    const encryptionOnly = idpMetadataXml([CERT]).replace('use="signing"', 'use="encryption"');
    expect(() => parseIdentityProviderMetadata(encryptionOnly)).toThrow(/no signing certificate/);
    expect(() => parseIdentityProviderMetadata(idpMetadataXml([CERT]).replace('HTTP-Redirect', 'HTTP-POST'))).toThrow(/HTTP-Redirect/);
    expect(() => parseIdentityProviderMetadata(`<!DOCTYPE x>${idpMetadataXml([CERT]).replace(/^<\?xml[^>]*>\n/, '')}`)).toThrow(/not usable XML/);
  });

  it('picks one IdP out of an aggregate by its entity id', () => {
    const one = idpMetadataXml([CERT]).replace(/^<\?xml[^>]*>\n/, '');
    const other = one.replace(IDP_ENTITY_ID, 'https://other-idp.example');
    const aggregate = `<md:EntitiesDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata">${one}${other}</md:EntitiesDescriptor>`;
    expect(() => parseIdentityProviderMetadata(aggregate)).toThrow(/found 2/);
    expect(parseIdentityProviderMetadata(aggregate, 'https://other-idp.example').entityId).toBe('https://other-idp.example');
  });
});

describe('use: saml configuration', () => {
  const dir = mkdtempSync(join(tmpdir(), 'stsgate-saml-config-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const metadataFile = join(dir, 'okta-metadata.xml');
  writeFileSync(metadataFile, `${idpMetadataXml([CERT])}\n`);

  const parse = (provider: Record<string, unknown>) => parseConfig(stringify({ public_url: 'https://sts.example.com', account_id: ACCOUNT_ID, providers: [provider] }), {}, dir);
  const problemsOf = (provider: Record<string, unknown>): string[] => {
    try {
      parse(provider);
    } catch (err) {
      if (err instanceof ConfigError) return [...err.problems];
      throw err;
    }
    throw new Error('expected a ConfigError');
  };

  it('loads the defaults: both signatures, no IdP-initiated logins, 60 s of skew, groups as a list', () => {
    const provider = parse({ id: 'okta', use: 'saml', saml: { idp_metadata_file: metadataFile, attributes: { email: 'email', groups: 'groups' } } }).providers[0] as ProviderConfig;
    expect(provider.saml).toEqual({ idpMetadata: idpMetadataXml([CERT]), signed: 'both', attributes: { email: 'email', groups: 'groups' }, multiValued: ['groups'], allowIdpInitiated: false, clockSkewSeconds: 60 });
  });

  it.each<[string, Record<string, unknown>, string[]]>([
    ['no saml settings', { id: 'okta', use: 'saml' }, ['providers[0].saml: missing, expected the SAML settings of use: saml (idp_metadata_url or idp_metadata_file, attributes...)']],
    ['an OAuth client on a SAML provider', { id: 'okta', use: 'saml', client_id: 'x', saml: { idp_metadata_url: 'https://okta.example/metadata' } }, ['providers[0].client_id: found client_id, expected none for use: saml (SAML settings go under saml:)']],
    ['saml settings on an oidc provider', { id: 'okta', use: 'oidc', issuer: 'https://okta.example', client_id: 'x', client_secret: 'y', saml: { idp_metadata_url: 'https://okta.example/metadata' } }, ['providers[0].saml: found saml settings, expected none for use: oidc (they are for use: saml)']],
    ['no metadata', { id: 'okta', use: 'saml', saml: {} }, ['providers[0].saml: found no IdP metadata, expected exactly one of idp_metadata_url: URL or idp_metadata_file: PATH']],
    ['a plain-http metadata URL', { id: 'okta', use: 'saml', saml: { idp_metadata_url: 'http://okta.example/metadata' } }, ['providers[0].saml.idp_metadata_url: found "http://okta.example/metadata", expected an https:// URL (http:// only with dev.allow_insecure_http: true)']],
    ['an unknown signed value', { id: 'okta', use: 'saml', saml: { idp_metadata_url: 'https://okta.example/m', signed: 'neither' } }, ['providers[0].saml.signed: found "neither", expected one of both, response, assertion']],
    ['sub mapped from an attribute', { id: 'okta', use: 'saml', saml: { idp_metadata_url: 'https://okta.example/m', attributes: { sub: 'uid' } } }, ['providers[0].saml.attributes.sub: found "sub", expected a claim name (a letter or _, then letters, digits, _ . : -; not sub, which is always the NameID)']],
    ['too much skew', { id: 'okta', use: 'saml', saml: { idp_metadata_url: 'https://okta.example/m', clock_skew_seconds: 3600 } }, ['providers[0].saml.clock_skew_seconds: found 3600, expected an integer in 0..300']],
    ['a typo', { id: 'okta', use: 'saml', saml: { idp_metadata_url: 'https://okta.example/m', allow_idp_initiatd: true } }, ['providers[0].saml: unknown key "allow_idp_initiatd"; did you mean "allow_idp_initiated"?']],
    ['a request signing key that is not PEM', { id: 'okta', use: 'saml', saml: { idp_metadata_url: 'https://okta.example/m', request_signing: { private_key: 'nope', certificate: 'nope' } } }, ['providers[0].saml.request_signing.private_key: found a string of 4 characters, expected a PEM private key (or private_key_file: PATH)', 'providers[0].saml.request_signing.certificate: found "nope", expected a PEM certificate (or certificate_file: PATH)']],
  ])('names the problem with its path: %s', (_name, provider, expected) => {
    expect(problemsOf(provider)).toEqual(expected);
  });
});

describe("the README's SAML examples", () => {
  it('load as written (Okta, Entra ID), with the rules that follow them', () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    const blocks = [...readme.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!);
    const start = blocks.findIndex((b) => b.includes('use: saml'));
    expect(start).toBeGreaterThanOrEqual(0);
    // The Okta provider, the rule after it, and the Entra provider with its rule.
    const [okta, oktaRule, entra] = blocks.slice(start, start + 3).map((b) => parseYaml(b) as Record<string, unknown[]>);
    const config = parseConfig(
      stringify({
        public_url: 'https://sts.example.com',
        account_id: ACCOUNT_ID,
        roles: [{ name: 'admin' }, { name: 'deployer' }],
        providers: [...okta!.providers!, ...entra!.providers!],
        rules: [...oktaRule!.rules!, ...entra!.rules!],
      }),
      {},
      process.cwd(),
    );
    expect((config.providers as ProviderConfig[]).map((p) => [p.id, p.saml?.signed])).toEqual([['okta', 'both'], ['entra', 'assertion']]);
  });
});
