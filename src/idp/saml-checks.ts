/**
 * The checks stsgate makes on a SAML 2.0 Response on top of @node-saml/node-saml's (which verifies the
 * signatures against the IdP's certificates, InResponseTo, the Conditions' times and the audience). Pure:
 * text in, a verdict out. Two stages:
 *
 * - `inspectResponseDocument`, before any signature is verified: no DTD or entity declaration, no comment
 *   or processing instruction, exactly one Assertion (a direct child of the Response), no duplicate IDs,
 *   every Signature where it belongs and covering its parent by ID, only allow-listed algorithms, the
 *   signatures the configuration requires, Destination = the ACS URL.
 * - `readSignedAssertion`, on the assertion bytes the signature covered (node-saml's verified XML): the
 *   issuer, the bearer SubjectConfirmationData (Recipient = the ACS URL, InResponseTo, NotOnOrAfter), the
 *   Conditions, the audience, and only then the identity: NameID and attributes.
 */
import { attributeOf, DOMParser, type XmlDocument, type XmlElement } from './saml-library.js';

export const SAML_PROTOCOL_NS = 'urn:oasis:names:tc:SAML:2.0:protocol';
export const SAML_ASSERTION_NS = 'urn:oasis:names:tc:SAML:2.0:assertion';
export const XMLDSIG_NS = 'http://www.w3.org/2000/09/xmldsig#';
const SUCCESS = 'urn:oasis:names:tc:SAML:2.0:status:Success';
const BEARER = 'urn:oasis:names:tc:SAML:2.0:cm:bearer';

/**
 * The only canonicalization and transform algorithms a signature may name (SAML 2.0 core §5.4.3, §5.4.4:
 * enveloped-signature and exclusive c14n). The "WithComments" forms are refused: they are what makes a
 * comment inside a NameID part of what was signed, and no IdP needs them.
 */
export const ALLOWED_TRANSFORMS: readonly string[] = ['http://www.w3.org/2000/09/xmldsig#enveloped-signature', 'http://www.w3.org/2001/10/xml-exc-c14n#'];
export const ALLOWED_CANONICALIZATIONS: readonly string[] = ['http://www.w3.org/2001/10/xml-exc-c14n#'];
/** RSA with SHA-2 only: SHA-1 (xmldsig#rsa-sha1) is collision-prone (SHAttered, 2017). */
export const ALLOWED_SIGNATURE_METHODS: readonly string[] = [
  'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
  'http://www.w3.org/2001/04/xmldsig-more#rsa-sha384',
  'http://www.w3.org/2001/04/xmldsig-more#rsa-sha512',
];
export const ALLOWED_DIGEST_METHODS: readonly string[] = ['http://www.w3.org/2001/04/xmlenc#sha256', 'http://www.w3.org/2001/04/xmldsig-more#sha384', 'http://www.w3.org/2001/04/xmlenc#sha512'];

/** Which parts of a Response must carry a signature of their own (`saml.signed`). */
export type SignedParts = 'both' | 'response' | 'assertion';

/** Why a SAML answer was refused, as the audit line names it. */
export type SamlProblemKind = 'malformed' | 'signature' | 'status' | 'destination' | 'conditions' | 'in_response_to';

/** A refused SAML answer: the kind (audit), and a private detail (the process log). */
export class SamlProblem extends Error {
  readonly kind: SamlProblemKind;
  constructor(kind: SamlProblemKind, detail: string) {
    super(detail);
    this.name = 'SamlProblem';
    this.kind = kind;
  }
}

/**
 * Refuses a document type declaration (and with it any entity declaration) before the text reaches a
 * parser: SAML messages have none (SAML 2.0 bindings §3.4.4, §3.5.4: a DTD is not allowed), and a DTD is
 * what XXE and entity-expansion attacks need. Comments and processing instructions are refused too.
 */
export function refuseDeclarations(xml: string): void {
  if (/<!DOCTYPE/i.test(xml) || /<!ENTITY/i.test(xml)) throw new SamlProblem('malformed', 'document type declaration');
  if (xml.includes('<!--')) throw new SamlProblem('malformed', 'comment in the document');
  // Only the XML declaration may look like a processing instruction, and only at the very start.
  if (/<\?/.test(xml.replace(/^\uFEFF?<\?xml[^?]*\?>/, ''))) throw new SamlProblem('malformed', 'processing instruction in the document');
}

/** Parses text already cleared by `refuseDeclarations`; any parser complaint refuses it. */
export function parseSamlXml(xml: string): XmlDocument {
  refuseDeclarations(xml);
  const fail = (message: unknown) => {
    throw new SamlProblem('malformed', `not well-formed XML: ${String(message).split('\n')[0]}`);
  };
  const doc = new DOMParser({ locator: {}, errorHandler: { warning: fail, error: fail, fatalError: fail } }).parseFromString(xml, 'text/xml');
  if (!doc?.documentElement) throw new SamlProblem('malformed', 'no document element');
  return doc as unknown as XmlDocument;
}

/** Every element below (and including) `root`, in document order. */
function elements(root: XmlElement): XmlElement[] {
  const out: XmlElement[] = [];
  const walk = (node: XmlElement) => {
    out.push(node);
    for (let child = node.firstChild; child !== null; child = child.nextSibling) if (child.nodeType === 1) walk(child as XmlElement);
  };
  walk(root);
  return out;
}

function childElements(parent: XmlElement, ns: string, name: string): XmlElement[] {
  const out: XmlElement[] = [];
  for (let child = parent.firstChild; child !== null; child = child.nextSibling) {
    if (child.nodeType === 1 && (child as XmlElement).namespaceURI === ns && (child as XmlElement).localName === name) out.push(child as XmlElement);
  }
  return out;
}

function onlyChild(parent: XmlElement, ns: string, name: string, what: string, kind: SamlProblemKind = 'malformed'): XmlElement {
  const found = childElements(parent, ns, name);
  if (found.length !== 1) throw new SamlProblem(kind, `expected exactly one ${what}, found ${found.length}`);
  return found[0]!;
}

/** The element's text, refused unless it is one text node (a comment or child element would split it). */
function soleText(element: XmlElement, what: string): string {
  let text = '';
  for (let child = element.firstChild; child !== null; child = child.nextSibling) {
    if (child.nodeType !== 3 && child.nodeType !== 4) throw new SamlProblem('malformed', `${what} holds something other than text`);
    text += child.nodeValue ?? '';
  }
  return text.trim();
}

/** The element's text when it holds only text, else undefined. */
function plainText(element: XmlElement): string | undefined {
  let text = '';
  for (let child = element.firstChild; child !== null; child = child.nextSibling) {
    if (child.nodeType !== 3 && child.nodeType !== 4) return undefined;
    text += child.nodeValue ?? '';
  }
  return text.trim();
}

function sessionIndexOf(assertion: XmlElement): string | undefined {
  const statement = childElements(assertion, SAML_ASSERTION_NS, 'AuthnStatement')[0];
  return statement === undefined ? undefined : attributeOf(statement, 'SessionIndex');
}

/** What the checks compare a Response with. */
export interface ResponseExpectations {
  /** `<public_url>/saml/<id>/acs`: the Response's Destination and the assertion's Recipient. */
  acsUrl: string;
  signed: SignedParts;
}

/** What the structural inspection learned; nothing in it is trusted for identity. */
export interface InspectedResponse {
  /** The Response's InResponseTo, or undefined (an IdP-initiated answer). */
  inResponseTo: string | undefined;
}

/**
 * The structural checks of a decoded Response, before signatures are verified: they close the signature
 * wrapping family (XSW1-8: a second assertion, a signed element moved under Extensions or Object, a
 * signature whose Reference points elsewhere, duplicate IDs) whatever the verifier does.
 */
export function inspectResponseDocument(xml: string, expect: ResponseExpectations): InspectedResponse {
  const doc = parseSamlXml(xml);
  const response = doc.documentElement!;
  if (response.namespaceURI !== SAML_PROTOCOL_NS || response.localName !== 'Response') throw new SamlProblem('malformed', `the document is a ${response.localName}, not a samlp:Response`);
  const all = elements(response);
  const ids = new Set<string>();
  for (const element of all) {
    for (const name of ['ID', 'Id', 'id']) {
      const id = attributeOf(element, name);
      if (id === undefined || id === '') continue;
      if (ids.has(id)) throw new SamlProblem('malformed', `the ID ${JSON.stringify(id.slice(0, 64))} appears twice`);
      ids.add(id);
    }
  }
  const assertions = all.filter((e) => e.localName === 'Assertion' || e.localName === 'EncryptedAssertion');
  if (assertions.some((e) => e.localName === 'EncryptedAssertion')) throw new SamlProblem('malformed', 'encrypted assertions are not accepted (no decryption key is configured)');
  if (assertions.length !== 1) throw new SamlProblem('malformed', `expected exactly one Assertion, found ${assertions.length}`);
  const assertion = assertions[0]!;
  if (assertion.parentNode !== response || assertion.namespaceURI !== SAML_ASSERTION_NS) throw new SamlProblem('malformed', 'the Assertion is not a direct child of the Response');

  // Signatures: one at most on each of the Response and the Assertion, as their direct child, and nowhere else.
  const signatures = all.filter((e) => e.localName === 'Signature' && e.namespaceURI === XMLDSIG_NS);
  for (const signature of signatures) {
    const parent = signature.parentNode as XmlElement | null;
    if (parent !== response && parent !== assertion) throw new SamlProblem('malformed', `a Signature under ${parent?.localName ?? 'nothing'}, expected one under the Response or the Assertion only`);
    checkSignatureShape(signature, parent);
  }
  const responseSigned = childElements(response, XMLDSIG_NS, 'Signature').length;
  const assertionSigned = childElements(assertion, XMLDSIG_NS, 'Signature').length;
  if (responseSigned > 1 || assertionSigned > 1) throw new SamlProblem('malformed', 'more than one Signature on one element');
  if (expect.signed !== 'assertion' && responseSigned === 0) throw new SamlProblem('signature', 'the Response is not signed (signed: ' + expect.signed + ')');
  if (expect.signed !== 'response' && assertionSigned === 0) throw new SamlProblem('signature', 'the Assertion is not signed (signed: ' + expect.signed + ')');

  const status = onlyChild(response, SAML_PROTOCOL_NS, 'Status', 'Status');
  const code = attributeOf(onlyChild(status, SAML_PROTOCOL_NS, 'StatusCode', 'StatusCode'), 'Value');
  if (code !== SUCCESS) throw new SamlProblem('status', `status ${String(code).slice(0, 120)}`);
  // SAML 2.0 core §3.2.2: a signed response's Destination must be checked; stsgate requires one.
  const destination = attributeOf(response, 'Destination');
  if (destination !== expect.acsUrl) throw new SamlProblem('destination', `Destination ${JSON.stringify((destination ?? '(none)').slice(0, 200))}, expected ${expect.acsUrl}`);
  const inResponseTo = attributeOf(response, 'InResponseTo');
  return { inResponseTo: inResponseTo === '' ? undefined : inResponseTo };
}

/** One signature's SignedInfo: one Reference to its parent's ID, allow-listed algorithms only. */
function checkSignatureShape(signature: XmlElement, parent: XmlElement): void {
  const signedInfo = onlyChild(signature, XMLDSIG_NS, 'SignedInfo', 'SignedInfo in a Signature');
  const c14n = attributeOf(onlyChild(signedInfo, XMLDSIG_NS, 'CanonicalizationMethod', 'CanonicalizationMethod'), 'Algorithm') ?? '';
  if (!ALLOWED_CANONICALIZATIONS.includes(c14n)) throw new SamlProblem('signature', `canonicalization ${c14n.slice(0, 120)} is not allowed`);
  const method = attributeOf(onlyChild(signedInfo, XMLDSIG_NS, 'SignatureMethod', 'SignatureMethod'), 'Algorithm') ?? '';
  if (!ALLOWED_SIGNATURE_METHODS.includes(method)) throw new SamlProblem('signature', `signature method ${method.slice(0, 120)} is not allowed`);
  const reference = onlyChild(signedInfo, XMLDSIG_NS, 'Reference', 'Reference in a SignedInfo', 'signature');
  const id = attributeOf(parent, 'ID');
  if (!id || attributeOf(reference, 'URI') !== `#${id}`) throw new SamlProblem('signature', 'a Signature whose Reference is not its parent element');
  const transforms = childElements(reference, XMLDSIG_NS, 'Transforms').flatMap((t) => childElements(t, XMLDSIG_NS, 'Transform'));
  for (const transform of transforms) {
    const algorithm = attributeOf(transform, 'Algorithm') ?? '';
    if (!ALLOWED_TRANSFORMS.includes(algorithm)) throw new SamlProblem('signature', `transform ${algorithm.slice(0, 120)} is not allowed`);
    if (transform.firstChild !== null && elements(transform).length > 1) throw new SamlProblem('signature', 'a Transform with parameters (XPath, XSLT) is not allowed');
  }
  const digest = attributeOf(onlyChild(reference, XMLDSIG_NS, 'DigestMethod', 'DigestMethod'), 'Algorithm') ?? '';
  if (!ALLOWED_DIGEST_METHODS.includes(digest)) throw new SamlProblem('signature', `digest ${digest.slice(0, 120)} is not allowed`);
}

/** What the signed assertion is compared with. */
export interface AssertionExpectations {
  acsUrl: string;
  /** The IdP's entityID: the assertion's Issuer. */
  idpEntityId: string;
  /** The SP's entityID: an Audience of the AudienceRestriction. */
  spEntityId: string;
  /** The AuthnRequest's ID for an SP-initiated login; undefined for an IdP-initiated one (then none may be named). */
  requestId: string | undefined;
  nowMs: number;
  clockSkewMs: number;
}

/** The identity a signed assertion carries. */
export interface SignedAssertion {
  /** The assertion's ID (the replay key of an IdP-initiated login). */
  id: string;
  nameId: string;
  nameIdFormat: string | undefined;
  sessionIndex: string | undefined;
  /** Attribute Name -> its values (text), in document order. */
  attributes: Record<string, string[]>;
  /** When the assertion stops being usable (the earliest NotOnOrAfter), epoch milliseconds. */
  notOnOrAfterMs: number;
}

function instant(value: string | undefined, what: string): number | undefined {
  if (value === undefined) return undefined;
  const ms = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/.test(value) ? Date.parse(value) : Number.NaN;
  if (Number.isNaN(ms)) throw new SamlProblem('malformed', `${what} ${JSON.stringify(value.slice(0, 40))} is not an xs:dateTime in UTC`);
  return ms;
}

/**
 * Reads the identity out of the assertion bytes a verified signature covered, after checking them:
 * Issuer, a bearer SubjectConfirmation whose data names the ACS URL as Recipient, this login's AuthnRequest
 * (or none) and a NotOnOrAfter still ahead; Conditions in time; the audience; one NameID of plain text.
 */
export function readSignedAssertion(assertionXml: string, expect: AssertionExpectations): SignedAssertion {
  const assertion = parseSamlXml(assertionXml).documentElement!;
  if (assertion.namespaceURI !== SAML_ASSERTION_NS || assertion.localName !== 'Assertion') throw new SamlProblem('malformed', 'the signed part is not an Assertion');
  const id = attributeOf(assertion, 'ID') ?? '';
  const issuer = soleText(onlyChild(assertion, SAML_ASSERTION_NS, 'Issuer', 'Issuer in the Assertion'), 'Issuer');
  if (issuer !== expect.idpEntityId) throw new SamlProblem('conditions', `Issuer ${JSON.stringify(issuer.slice(0, 200))}, expected ${expect.idpEntityId}`);
  const early = (ms: number | undefined) => ms !== undefined && expect.nowMs + expect.clockSkewMs < ms;
  const late = (ms: number | undefined) => ms !== undefined && expect.nowMs - expect.clockSkewMs >= ms;

  // SAML 2.0 profiles §4.1.4.2: a bearer SubjectConfirmation with Recipient, NotOnOrAfter and (SP-initiated) InResponseTo.
  const subject = onlyChild(assertion, SAML_ASSERTION_NS, 'Subject', 'Subject');
  const nameIdElement = onlyChild(subject, SAML_ASSERTION_NS, 'NameID', 'NameID');
  const nameId = soleText(nameIdElement, 'NameID');
  if (nameId === '') throw new SamlProblem('malformed', 'empty NameID');
  const confirmations = childElements(subject, SAML_ASSERTION_NS, 'SubjectConfirmation').filter((c) => attributeOf(c, 'Method') === BEARER);
  if (confirmations.length !== 1) throw new SamlProblem('conditions', `expected one bearer SubjectConfirmation, found ${confirmations.length}`);
  const data = onlyChild(confirmations[0]!, SAML_ASSERTION_NS, 'SubjectConfirmationData', 'SubjectConfirmationData', 'conditions');
  const recipient = attributeOf(data, 'Recipient');
  if (recipient !== expect.acsUrl) throw new SamlProblem('destination', `Recipient ${JSON.stringify((recipient ?? '(none)').slice(0, 200))}, expected ${expect.acsUrl}`);
  const confirmedRequest = attributeOf(data, 'InResponseTo') ?? undefined;
  if (confirmedRequest !== expect.requestId) {
    throw new SamlProblem('in_response_to', expect.requestId === undefined ? 'an unsolicited answer names an AuthnRequest' : 'SubjectConfirmationData InResponseTo is not this login\'s AuthnRequest');
  }
  const confirmationEnd = instant(attributeOf(data, 'NotOnOrAfter'), 'SubjectConfirmationData NotOnOrAfter');
  if (confirmationEnd === undefined) throw new SamlProblem('conditions', 'SubjectConfirmationData has no NotOnOrAfter');
  if (late(confirmationEnd)) throw new SamlProblem('conditions', 'the assertion has expired (SubjectConfirmationData NotOnOrAfter)');
  if (early(instant(attributeOf(data, 'NotBefore'), 'SubjectConfirmationData NotBefore'))) throw new SamlProblem('conditions', 'the assertion is not valid yet (SubjectConfirmationData NotBefore)');

  const conditions = onlyChild(assertion, SAML_ASSERTION_NS, 'Conditions', 'Conditions', 'conditions');
  const conditionsEnd = instant(attributeOf(conditions, 'NotOnOrAfter'), 'Conditions NotOnOrAfter');
  if (late(conditionsEnd)) throw new SamlProblem('conditions', 'the assertion has expired (Conditions NotOnOrAfter)');
  if (early(instant(attributeOf(conditions, 'NotBefore'), 'Conditions NotBefore'))) throw new SamlProblem('conditions', 'the assertion is not valid yet (Conditions NotBefore)');
  // SAML 2.0 core §2.5.1.4: every AudienceRestriction must name this SP.
  const restrictions = childElements(conditions, SAML_ASSERTION_NS, 'AudienceRestriction');
  if (restrictions.length === 0) throw new SamlProblem('conditions', 'no AudienceRestriction');
  for (const restriction of restrictions) {
    const audiences = childElements(restriction, SAML_ASSERTION_NS, 'Audience').map((a) => soleText(a, 'Audience'));
    if (!audiences.includes(expect.spEntityId)) throw new SamlProblem('conditions', `audience ${JSON.stringify(audiences.join(' ').slice(0, 200))}, expected ${expect.spEntityId}`);
  }

  const attributes: Record<string, string[]> = {};
  for (const statement of childElements(assertion, SAML_ASSERTION_NS, 'AttributeStatement')) {
    for (const attribute of childElements(statement, SAML_ASSERTION_NS, 'Attribute')) {
      const name = attributeOf(attribute, 'Name');
      if (!name) continue;
      // A value that is not plain text (a NameID, an XML fragment) is not a claim value; it is left out.
      const values = childElements(attribute, SAML_ASSERTION_NS, 'AttributeValue').flatMap((v) => {
        const text = plainText(v);
        return text === undefined ? [] : [text];
      });
      Object.defineProperty(attributes, name, { value: [...(Object.hasOwn(attributes, name) ? attributes[name]! : []), ...values], enumerable: true, writable: true, configurable: true });
    }
  }
  const format = attributeOf(nameIdElement, 'Format');
  const sessionIndex = sessionIndexOf(assertion);
  return {
    id,
    nameId,
    nameIdFormat: format === '' ? undefined : format,
    sessionIndex: sessionIndex === '' ? undefined : sessionIndex,
    attributes,
    notOnOrAfterMs: Math.min(confirmationEnd, conditionsEnd ?? confirmationEnd),
  };
}
