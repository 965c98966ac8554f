/**
 * SAML 2.0 metadata (saml-metadata-2.0-os): reading an IdP's EntityDescriptor (its entityID, its
 * HTTP-Redirect SingleSignOnService, every signing certificate: an IdP publishes two while it rotates).
 * Pure: text in, values out.
 */
import { parseSamlXml, XMLDSIG_NS } from './saml-checks.js';
import { attributeOf, type XmlElement } from './saml-library.js';

const MD_NS = 'urn:oasis:names:tc:SAML:2.0:metadata';
export const HTTP_REDIRECT_BINDING = 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect';
export const HTTP_POST_BINDING = 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST';

/** What stsgate needs from an IdP's metadata. */
export interface IdentityProviderMetadata {
  entityId: string;
  /** The SingleSignOnService location for the HTTP-Redirect binding: where AuthnRequests go. */
  ssoUrl: string;
  /** Every signing certificate, as PEM; a response signed by any one of them verifies. */
  certificates: string[];
}

function descendants(root: XmlElement, ns: string, name: string): XmlElement[] {
  return Array.from(root.getElementsByTagNameNS(ns, name));
}

/** A certificate's base64 (whitespace allowed) as PEM. */
export function certificatePem(base64: string): string {
  const body = base64.replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(body)) throw new Error('an X509Certificate that is not base64');
  return `-----BEGIN CERTIFICATE-----\n${body.match(/.{1,64}/g)!.join('\n')}\n-----END CERTIFICATE-----\n`;
}

/**
 * Reads an IdP's metadata: one EntityDescriptor (or the one of an EntitiesDescriptor whose entityID is
 * `entityId`) with an IDPSSODescriptor. KeyDescriptors with `use="signing"` or no `use` count as signing
 * keys (metadata §2.4.1.1). Throws an Error whose message says what is missing.
 */
export function parseIdentityProviderMetadata(xml: string, entityId?: string): IdentityProviderMetadata {
  let root: XmlElement;
  try {
    root = parseSamlXml(xml).documentElement!;
  } catch (err) {
    throw new Error(`the IdP metadata is not usable XML (${err instanceof Error ? err.message : String(err)})`);
  }
  const entities = root.namespaceURI === MD_NS && root.localName === 'EntityDescriptor' ? [root] : descendants(root, MD_NS, 'EntityDescriptor');
  const withIdp = entities.filter((e) => descendants(e, MD_NS, 'IDPSSODescriptor').length > 0 && (entityId === undefined || attributeOf(e, 'entityID') === entityId));
  if (withIdp.length !== 1) throw new Error(`expected one EntityDescriptor with an IDPSSODescriptor${entityId ? ` for ${entityId}` : ''}, found ${withIdp.length}`);
  const entity = withIdp[0]!;
  const idp = descendants(entity, MD_NS, 'IDPSSODescriptor')[0]!;
  const sso = descendants(idp, MD_NS, 'SingleSignOnService').find((s) => attributeOf(s, 'Binding') === HTTP_REDIRECT_BINDING);
  const ssoLocation = sso === undefined ? undefined : attributeOf(sso, 'Location');
  if (!ssoLocation) throw new Error('the IdP metadata has no SingleSignOnService for the HTTP-Redirect binding');
  const certificates = descendants(idp, MD_NS, 'KeyDescriptor')
    .filter((k) => ['signing', '', undefined].includes(attributeOf(k, 'use')))
    .flatMap((k) => descendants(k, XMLDSIG_NS, 'X509Certificate'))
    .map((c) => certificatePem(c.textContent ?? ''));
  if (certificates.length === 0) throw new Error('the IdP metadata has no signing certificate (KeyDescriptor use="signing" with an X509Certificate)');
  return { entityId: attributeOf(entity, 'entityID') ?? '', ssoUrl: ssoLocation, certificates: [...new Set(certificates)] };
}
