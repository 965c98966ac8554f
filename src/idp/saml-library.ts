/**
 * The SAML libraries, loaded here with the few types stsgate uses. Their own declarations pull in the DOM
 * lib (`/// <reference lib="dom" />` in @xmldom/xmldom and xpath), which would retype fetch and friends
 * for the whole program, so they are required at run time and described by these interfaces instead.
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/** The DOM subset of @xmldom/xmldom the checks walk. */
export interface XmlNode {
  readonly nodeType: number;
  readonly nodeValue: string | null;
  readonly textContent: string | null;
  readonly firstChild: XmlNode | null;
  readonly nextSibling: XmlNode | null;
  readonly parentNode: XmlNode | null;
}
export interface XmlElement extends XmlNode {
  readonly localName: string;
  readonly namespaceURI: string | null;
  /** '' when the attribute is absent (xmldom follows DOM Level 1 here): read attributes with `attributeOf`. */
  getAttribute(name: string): string;
  hasAttribute(name: string): boolean;
  getElementsByTagNameNS(namespace: string, localName: string): ArrayLike<XmlElement>;
}
/** An attribute's value, or undefined when the element has none (never xmldom's '' for absent). */
export function attributeOf(element: XmlElement, name: string): string | undefined {
  return element.hasAttribute(name) ? element.getAttribute(name) : undefined;
}

export interface XmlDocument {
  readonly documentElement: XmlElement | null;
}

interface DomParserOptions {
  locator?: object;
  errorHandler?: { warning?: (message: string) => void; error?: (message: string) => void; fatalError?: (message: string) => void };
}
type DomParserClass = new (options?: DomParserOptions) => { parseFromString(text: string, type: string): XmlDocument };
let xmldom: { DOMParser: DomParserClass } | undefined;
/** @xmldom/xmldom's DOMParser, loaded at its first use: a gateway without SAML providers never loads it. */
export const DOMParser = function (options?: DomParserOptions) {
  xmldom ??= require('@xmldom/xmldom') as { DOMParser: DomParserClass };
  return new xmldom.DOMParser(options);
} as unknown as DomParserClass;

/** A response's profile, as @node-saml/node-saml returns it (only what stsgate reads). */
export interface SamlLibraryProfile {
  /** The assertion XML taken from the bytes a verified signature covered. */
  getAssertionXml?(): string;
}

/** The @node-saml/node-saml options stsgate sets (types.d.ts `SamlConfig`). */
export interface SamlLibraryOptions {
  callbackUrl: string;
  entryPoint: string;
  issuer: string;
  idpCert: string[];
  idpIssuer: string;
  audience: string;
  wantAssertionsSigned: boolean;
  wantAuthnResponseSigned: boolean;
  acceptedClockSkewMs: number;
  maxAssertionAgeMs: number;
  validateInResponseTo: 'never' | 'ifPresent' | 'always';
  requestIdExpirationPeriodMs: number;
  cacheProvider: {
    saveAsync(key: string, value: string): Promise<{ value: string; createdAt: number } | null>;
    getAsync(key: string): Promise<string | null>;
    removeAsync(key: string | null): Promise<string | null>;
  };
  generateUniqueId: () => string;
  identifierFormat: string | null;
  disableRequestedAuthnContext: boolean;
  authnRequestBinding: 'HTTP-Redirect';
  signatureAlgorithm: 'sha256';
  digestAlgorithm: 'sha256';
  privateKey?: string;
  publicCert?: string;
}

export interface SamlLibrary {
  getAuthorizeUrlAsync(relayState: string, host: string | undefined, options: Record<string, never>): Promise<string>;
  validatePostResponseAsync(container: Record<string, string>): Promise<{ profile: SamlLibraryProfile | null; loggedOut: boolean }>;
  generateServiceProviderMetadata(decryptionCert: string | null, publicCerts?: string | string[] | null): string;
}

type SamlClass = new (options: SamlLibraryOptions) => SamlLibrary;
let nodeSaml: { SAML: SamlClass } | undefined;
/** node-saml's SAML, loaded at its first use (about 15 MB): a gateway without SAML providers never loads it. */
export const SAML = function (options: SamlLibraryOptions) {
  nodeSaml ??= require('@node-saml/node-saml') as { SAML: SamlClass };
  return new nodeSaml.SAML(options);
} as unknown as SamlClass;
