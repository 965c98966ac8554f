/**
 * A SAML IdP stand-in for tests whose signatures come from an independent implementation: `xmlsec1`
 * (libxmlsec1 on OpenSSL) signs Responses and Assertions built here from templates, with keys made by
 * `openssl`. The attack table builds its variants on top of a correctly signed Response.
 *
 *   const idp = await XmlsecIdp.create();
 *   const xml = await idp.signedResponse({ acsUrl, audience, inResponseTo, nameId: 'alice@acme.com' });
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const IDP_ENTITY_ID = 'https://idp.test.example/metadata';
export const IDP_SSO_URL = 'https://idp.test.example/sso';

/** Whether xmlsec1 and openssl are installed (.ci/run installs them). */
export async function haveXmlsec(): Promise<boolean> {
  try {
    await run('xmlsec1', ['--version']);
    await run('openssl', ['version']);
    return true;
  } catch {
    return false;
  }
}

/** An RSA key and self-signed certificate made by openssl. */
export interface TestKeyPair {
  keyFile: string;
  certFile: string;
  /** The certificate's base64 DER (what X509Certificate holds). */
  certBase64: string;
  keyPem: string;
  certPem: string;
}

export async function makeKeyPair(dir: string, name: string): Promise<TestKeyPair> {
  const keyFile = join(dir, `${name}.key`);
  const certFile = join(dir, `${name}.crt`);
  await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '2', '-subj', `/CN=${name}`]);
  const certPem = await readFile(certFile, 'utf8');
  return { keyFile, certFile, keyPem: await readFile(keyFile, 'utf8'), certPem, certBase64: certPem.replace(/-----[^-]+-----|\s/g, '') };
}

/** The parts of a Response a test varies. */
export interface ResponseFields {
  acsUrl: string;
  audience: string;
  inResponseTo?: string;
  nameId: string;
  issuer?: string;
  destination?: string;
  recipient?: string;
  /** Offsets from now, in seconds. */
  notBeforeSeconds?: number;
  notOnOrAfterSeconds?: number;
  attributes?: Record<string, string[]>;
  responseId?: string;
  assertionId?: string;
}

export const SIGNATURE_TEMPLATE = (reference: string) =>
  `<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo><ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/><ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"/><ds:Reference URI="#${reference}"><ds:Transforms><ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/><ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/></ds:Transforms><ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/><ds:DigestValue></ds:DigestValue></ds:Reference></ds:SignedInfo><ds:SignatureValue></ds:SignatureValue><ds:KeyInfo><ds:X509Data><ds:X509Certificate></ds:X509Certificate></ds:X509Data></ds:KeyInfo></ds:Signature>`;

const iso = (offsetSeconds: number) => new Date(Date.now() + offsetSeconds * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
export const newId = () => `_${randomBytes(16).toString('hex')}`;

/** An unsigned Assertion; `signatureTemplate` puts a Signature template after its Issuer. */
export function assertionXml(fields: ResponseFields, options: { signatureTemplate?: boolean } = {}): string {
  const id = fields.assertionId ?? newId();
  const notOnOrAfter = iso(fields.notOnOrAfterSeconds ?? 300);
  const notBefore = iso(fields.notBeforeSeconds ?? -30);
  const inResponseTo = fields.inResponseTo !== undefined ? ` InResponseTo="${fields.inResponseTo}"` : '';
  const attributes = Object.entries(fields.attributes ?? {})
    .map(([name, values]) => `<saml:Attribute Name="${name}" NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:basic">${values.map((v) => `<saml:AttributeValue xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="xs:string">${v}</saml:AttributeValue>`).join('')}</saml:Attribute>`)
    .join('');
  return (
    `<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="${id}" Version="2.0" IssueInstant="${iso(0)}">` +
    `<saml:Issuer>${fields.issuer ?? IDP_ENTITY_ID}</saml:Issuer>` +
    (options.signatureTemplate ? SIGNATURE_TEMPLATE(id) : '') +
    `<saml:Subject><saml:NameID Format="urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress">${fields.nameId}</saml:NameID>` +
    `<saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer"><saml:SubjectConfirmationData NotOnOrAfter="${notOnOrAfter}" Recipient="${fields.recipient ?? fields.acsUrl}"${inResponseTo}/></saml:SubjectConfirmation></saml:Subject>` +
    `<saml:Conditions NotBefore="${notBefore}" NotOnOrAfter="${notOnOrAfter}"><saml:AudienceRestriction><saml:Audience>${fields.audience}</saml:Audience></saml:AudienceRestriction></saml:Conditions>` +
    `<saml:AuthnStatement AuthnInstant="${iso(0)}" SessionIndex="${newId()}"><saml:AuthnContext><saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement>` +
    (attributes ? `<saml:AttributeStatement>${attributes}</saml:AttributeStatement>` : '') +
    `</saml:Assertion>`
  );
}

/** A Response around `inner` (an assertion, signed or not); `signatureTemplate` puts a template after its Issuer. */
export function responseXml(fields: ResponseFields, inner: string, options: { signatureTemplate?: boolean } = {}): string {
  const id = fields.responseId ?? newId();
  const inResponseTo = fields.inResponseTo !== undefined ? ` InResponseTo="${fields.inResponseTo}"` : '';
  return (
    `<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="${id}" Version="2.0" IssueInstant="${iso(0)}" Destination="${fields.destination ?? fields.acsUrl}"${inResponseTo}>` +
    `<saml:Issuer>${fields.issuer ?? IDP_ENTITY_ID}</saml:Issuer>` +
    (options.signatureTemplate ? SIGNATURE_TEMPLATE(id) : '') +
    `<samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status>` +
    inner +
    `</samlp:Response>`
  );
}

/** The IdP's metadata with these signing certificates. */
export function idpMetadataXml(certificates: string[], entityId = IDP_ENTITY_ID, ssoUrl = IDP_SSO_URL): string {
  const keys = certificates.map((c) => `<md:KeyDescriptor use="signing"><ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:X509Data><ds:X509Certificate>${c}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>`).join('');
  return `<?xml version="1.0"?>\n<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="${entityId}"><md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">${keys}<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="${ssoUrl}"/></md:IDPSSODescriptor></md:EntityDescriptor>`;
}

/** Signs a document's first Signature template with xmlsec1 (IDs of Response and Assertion declared). */
export async function xmlsecSign(xml: string, key: TestKeyPair, dir: string): Promise<string> {
  const input = join(dir, `${randomBytes(6).toString('hex')}.xml`);
  await writeFile(input, xml);
  const { stdout } = await run('xmlsec1', [
    '--sign',
    '--privkey-pem', `${key.keyFile},${key.certFile}`,
    '--id-attr:ID', 'urn:oasis:names:tc:SAML:2.0:protocol:Response',
    '--id-attr:ID', 'urn:oasis:names:tc:SAML:2.0:assertion:Assertion',
    '--output', '-',
    input,
  ], { maxBuffer: 4 * 1024 * 1024 });
  // xmlsec1 writes an XML declaration; the document itself is what is sent.
  return stdout.replace(/^<\?xml[^?]*\?>\s*/, '');
}

/** An IdP whose signatures come from xmlsec1: its key, another key nobody trusts, and a scratch directory. */
export class XmlsecIdp {
  private constructor(
    readonly dir: string,
    readonly key: TestKeyPair,
    readonly otherKey: TestKeyPair,
    /** The key the IdP is rotating away from: still in its metadata, still accepted. */
    readonly previousKey: TestKeyPair,
  ) {}

  static async create(): Promise<XmlsecIdp> {
    const dir = await mkdtemp(join(tmpdir(), 'stsgate-saml-'));
    return new XmlsecIdp(dir, await makeKeyPair(dir, 'idp'), await makeKeyPair(dir, 'attacker'), await makeKeyPair(dir, 'idp-previous'));
  }

  /** The IdP's metadata, listing the previous signing certificate and the current one (a rotation under way). */
  metadata(): string {
    return idpMetadataXml([this.previousKey.certBase64, this.key.certBase64]);
  }

  /** A signed assertion (its own signature). */
  signedAssertion(fields: ResponseFields, key: TestKeyPair = this.key): Promise<string> {
    return xmlsecSign(assertionXml(fields, { signatureTemplate: true }), key, this.dir);
  }

  /** A Response with its assertion signed, then (by default) the Response signed too. */
  async signedResponse(fields: ResponseFields, options: { signResponse?: boolean; signAssertion?: boolean; key?: TestKeyPair } = {}): Promise<string> {
    const key = options.key ?? this.key;
    const assertion = options.signAssertion === false ? assertionXml(fields) : await this.signedAssertion(fields, key);
    if (options.signResponse === false) return responseXml(fields, assertion);
    return xmlsecSign(responseXml(fields, assertion, { signatureTemplate: true }), key, this.dir);
  }

  /** Signs a whole Response document built by the caller (its first Signature template). */
  sign(xml: string, key: TestKeyPair = this.key): Promise<string> {
    return xmlsecSign(xml, key, this.dir);
  }
}
