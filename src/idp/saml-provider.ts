/**
 * A configured `use: saml` provider: stsgate as a SAML 2.0 service provider (Web Browser SSO profile).
 * The AuthnRequest goes out by the HTTP-Redirect binding (optionally signed); the Response comes back by
 * HTTP-POST to `<public_url>/saml/<id>/acs`. The browser-login engine keeps the transaction as for OAuth:
 * the RelayState is its state, and the AuthnRequest's ID is derived from its nonce, so the Response's
 * InResponseTo is bound to a transaction that is taken from the store once.
 *
 * Verification is layered: `inspectResponseDocument` (structure, before any signature is looked at),
 * @node-saml/node-saml (signatures against the IdP's certificates, InResponseTo, times, audience), then
 * `readSignedAssertion` on the assertion bytes the signature covered, from which alone the identity is read.
 */
import type { ProviderConfig } from '../config/types.js';
import type { Identity } from '../domain/types.js';
import { buildClaims } from './profile-claims.js';
import type { ProviderDefinition } from '../config/provider-definitions.js';
import { LoginFailure, providerFailed, providerUnreachable } from './login-failure.js';
import { inspectResponseDocument, readSignedAssertion, SamlProblem, type SamlProblemKind, type SignedAssertion, type SignedParts } from './saml-checks.js';
import { SAML, type SamlLibrary, type SamlLibraryOptions } from './saml-library.js';
import { parseIdentityProviderMetadata, type IdentityProviderMetadata } from './saml-metadata.js';
import type { BrowserLoginProvider, LoginChecks } from './login-provider.js';

/** The IdP's metadata is re-read this often from its URL, so a rotated signing certificate is picked up. */
const METADATA_TTL_MS = 60 * 60 * 1000;
const METADATA_TIMEOUT_MS = 10_000;
const MAX_METADATA_BYTES = 1024 * 1024;

/** The settings of `saml:` as loaded. */
export type SamlSettings = NonNullable<ProviderConfig['saml']>;

/** The AuthnRequest ID of a login transaction: its nonce, made an xs:ID (an NCName cannot start with a digit). */
export function samlRequestId(nonce: string): string {
  return `_${nonce}`;
}

/** What the person reads for each kind of refused answer; the kind is the audit line's reason. */
const REFUSALS: Record<SamlProblemKind, { reason: LoginFailure['reason']; message: (idp: string) => string }> = {
  malformed: { reason: 'saml_malformed', message: (idp) => `The sign-in answer from ${idp} is not a SAML response this gateway accepts, so nobody was signed in. Start again.` },
  signature: { reason: 'saml_signature_invalid', message: (idp) => `The sign-in answer from ${idp} is not signed the way this gateway requires (or not by ${idp}), so nobody was signed in. Start again.` },
  status: { reason: 'provider_error', message: (idp) => `${idp} did not sign you in.` },
  destination: { reason: 'saml_destination', message: (idp) => `The sign-in answer from ${idp} was addressed to another service, so nobody was signed in. Start again.` },
  conditions: { reason: 'saml_conditions', message: (idp) => `The sign-in answer from ${idp} is not valid for this gateway now (expired, not yet valid, or meant for another service), so nobody was signed in. Start again.` },
  in_response_to: { reason: 'saml_in_response_to', message: (idp) => `The sign-in answer from ${idp} does not answer the sign-in started here (it was used already or belongs to another one), so nobody was signed in. Start again.` },
};

/** A SamlProblem as the LoginFailure the page and the audit line show. */
export function samlRefusal(problem: SamlProblem, displayName: string): LoginFailure {
  const refusal = REFUSALS[problem.kind];
  return new LoginFailure(refusal.reason, refusal.message(displayName), { debug: `saml: ${problem.message}`, cause: problem });
}

/** Sorts what @node-saml/node-saml threw into the kinds of refusal (its errors carry no codes, only messages). */
function libraryProblem(err: unknown): SamlProblem {
  const message = err instanceof Error ? err.message : String(err);
  if (/InResponseTo/i.test(message)) return new SamlProblem('in_response_to', message);
  if (/signature|certificate|cert/i.test(message)) return new SamlProblem('signature', message);
  if (/expired|not yet valid|audience|AudienceRestriction|subject confirmation|conditions/i.test(message)) return new SamlProblem('conditions', message);
  if (err instanceof Error && err.name === 'SamlStatusError') return new SamlProblem('status', message);
  return new SamlProblem('malformed', message);
}

export interface SamlProviderOptions {
  publicUrl: string;
  now?: () => number;
}

/** A verified unsolicited (IdP-initiated) answer: the identity, and what keeps it from being used twice. */
export interface UnsolicitedLogin {
  identity: Identity;
  assertionId: string;
  notOnOrAfterMs: number;
}

/** A configured SAML IdP, and stsgate's service provider for it. */
export class SamlLoginProvider implements BrowserLoginProvider {
  readonly protocol = 'saml' as const;
  readonly id: string;
  readonly displayName: string;
  readonly definition: ProviderDefinition;
  /** `<public_url>/saml/<id>/acs`: the AssertionConsumerService (HTTP-POST). */
  readonly acsUrl: string;
  /** `<public_url>/saml/<id>/metadata`: where stsgate's SP metadata is published. */
  readonly metadataUrl: string;
  /** The SP's entityID: `saml.entity_id`, by default the metadata URL. */
  readonly entityId: string;
  readonly settings: SamlSettings;
  readonly #now: () => number;
  #idp: { value: Promise<IdentityProviderMetadata>; expiresAt: number } | undefined;

  constructor(config: ProviderConfig, definition: ProviderDefinition, options: SamlProviderOptions) {
    if (config.saml === undefined) throw new Error(`providers: ${config.id}: use: saml needs saml: settings`);
    this.id = config.id;
    this.displayName = config.displayName ?? definition.display_name;
    this.definition = definition;
    this.settings = config.saml;
    const base = `${options.publicUrl}/saml/${encodeURIComponent(config.id)}`;
    this.acsUrl = `${base}/acs`;
    this.metadataUrl = `${base}/metadata`;
    this.entityId = config.saml.entityId ?? this.metadataUrl;
    this.#now = options.now ?? Date.now;
    // A metadata file is read (and refused when unusable) at start, not at the first login.
    if (config.saml.idpMetadata !== undefined) {
      const parsed = this.#parseMetadata(config.saml.idpMetadata);
      this.#idp = { value: Promise.resolve(parsed), expiresAt: Number.POSITIVE_INFINITY };
    }
  }

  /** The parameter of `/callback/<id>` that carries this protocol's answer (the parked response's handle). */
  get answerParameter(): string {
    return 'saml_response';
  }

  /** Whether an answer with no AuthnRequest behind it may sign someone in (`saml.allow_idp_initiated`). */
  get allowsIdpInitiated(): boolean {
    return this.settings.allowIdpInitiated;
  }

  /**
   * The AuthnRequest as an HTTP-Redirect binding URL (SAML 2.0 bindings §3.4): deflated, with the
   * transaction's state as RelayState and, when `request_signing` is set, SigAlg and Signature.
   */
  async authorizationUrl(checks: LoginChecks): Promise<URL> {
    const idp = await this.#idpOnce();
    const library = this.#library(idp, samlRequestId(checks.nonce));
    return new URL(await library.getAuthorizeUrlAsync(checks.state, undefined, {}));
  }

  /**
   * Completes an SP-initiated login from the parked HTTP-POST answer (`SAMLResponse`): the Response must
   * answer this transaction's AuthnRequest.
   */
  async complete(answer: URLSearchParams, checks: LoginChecks): Promise<Identity> {
    const { identity } = await this.#verify(answer.get('SAMLResponse') ?? '', samlRequestId(checks.nonce));
    return identity;
  }

  /** Verifies an IdP-initiated answer (no AuthnRequest, no InResponseTo); the caller keeps it from being replayed. */
  async completeUnsolicited(encodedResponse: string): Promise<UnsolicitedLogin> {
    const { identity, assertion } = await this.#verify(encodedResponse, undefined);
    return { identity, assertionId: assertion.id, notOnOrAfterMs: assertion.notOnOrAfterMs };
  }

  /** stsgate's SP metadata for this IdP (saml-metadata-2.0-os §2.4.4): entityID, ACS (HTTP-POST), signing certificate. */
  serviceProviderMetadata(): string {
    // The library wants an IdP certificate even to describe the SP; none is used here.
    const library = this.#library({ entityId: '', ssoUrl: 'https://unused.invalid/', certificates: ['unused'] }, '_metadata');
    const signing = this.settings.requestSigning;
    return library.generateServiceProviderMetadata(null, signing ? [signing.certificate] : null);
  }

  async #verify(encoded: string, requestId: string | undefined): Promise<{ identity: Identity; assertion: SignedAssertion }> {
    try {
      // SAML 2.0 bindings §3.5.4: the HTTP-POST binding's SAMLResponse is base64 of the XML.
      const compact = encoded.replace(/[\r\n]/g, '');
      if (compact === '' || !/^[A-Za-z0-9+/]+={0,2}$/.test(compact)) throw new SamlProblem('malformed', 'SAMLResponse is not base64');
      const xml = Buffer.from(compact, 'base64').toString('utf8');
      const inspected = inspectResponseDocument(xml, { acsUrl: this.acsUrl, signed: this.settings.signed as SignedParts });
      if (inspected.inResponseTo !== requestId) {
        throw new SamlProblem('in_response_to', requestId === undefined ? 'an answer naming an AuthnRequest arrived with no login transaction' : 'the Response InResponseTo is not this login\'s AuthnRequest');
      }
      const idp = await this.#idpOnce();
      let assertionXml: string | undefined;
      try {
        const result = await this.#library(idp, requestId).validatePostResponseAsync({ SAMLResponse: compact });
        assertionXml = result.profile?.getAssertionXml?.();
      } catch (err) {
        throw libraryProblem(err);
      }
      if (assertionXml === undefined) throw new SamlProblem('signature', 'no signed assertion in the response');
      const assertion = readSignedAssertion(assertionXml, {
        acsUrl: this.acsUrl,
        idpEntityId: idp.entityId,
        spEntityId: this.entityId,
        requestId,
        nowMs: this.#now(),
        clockSkewMs: this.settings.clockSkewSeconds * 1000,
      });
      return { identity: this.#identity(assertion), assertion };
    } catch (err) {
      if (err instanceof SamlProblem) throw samlRefusal(err, this.displayName);
      throw err;
    }
  }

  /** The identity: `sub` is the NameID; the configured attributes become claims (a list for `multi_valued` ones). */
  #identity(assertion: SignedAssertion): Identity {
    const claims = buildClaims(this.definition.claims, { name_id: assertion.nameId, name_id_format: assertion.nameIdFormat });
    for (const [claim, attribute] of Object.entries(this.settings.attributes)) {
      const values = Object.hasOwn(assertion.attributes, attribute) ? assertion.attributes[attribute]! : [];
      const list = this.settings.multiValued.includes(claim);
      if (values.length === 0 && !list) continue;
      Object.defineProperty(claims, claim, { value: list || values.length > 1 ? values : values[0], enumerable: true, writable: true, configurable: true });
    }
    return { source: this.id, subject: assertion.nameId, claims };
  }

  /** A library instance for one operation: its AuthnRequest ID, and InResponseTo accepted only when it is that ID. */
  #library(idp: IdentityProviderMetadata, requestId: string | undefined): SamlLibrary {
    const signed = this.settings.signed;
    const signing = this.settings.requestSigning;
    const options: SamlLibraryOptions = {
      callbackUrl: this.acsUrl,
      entryPoint: idp.ssoUrl,
      issuer: this.entityId,
      idpCert: idp.certificates,
      idpIssuer: idp.entityId,
      audience: this.entityId,
      wantAssertionsSigned: signed !== 'response',
      wantAuthnResponseSigned: signed !== 'assertion',
      acceptedClockSkewMs: this.settings.clockSkewSeconds * 1000,
      maxAssertionAgeMs: 0,
      validateInResponseTo: requestId === undefined ? 'never' : 'always',
      // The login transaction (already taken from the store, once) is the record of the request.
      requestIdExpirationPeriodMs: 10 * 60 * 1000,
      cacheProvider: {
        saveAsync: async () => null,
        getAsync: async (key) => (requestId !== undefined && key === requestId ? new Date(this.#now()).toISOString() : null),
        removeAsync: async () => null,
      },
      generateUniqueId: () => requestId ?? '_unsolicited',
      // The IdP picks the NameID format and the authentication method its policy requires (MFA, passkeys).
      identifierFormat: null,
      disableRequestedAuthnContext: true,
      authnRequestBinding: 'HTTP-Redirect',
      signatureAlgorithm: 'sha256',
      digestAlgorithm: 'sha256',
      ...(signing ? { privateKey: signing.privateKey, publicCert: signing.certificate } : {}),
    };
    return new SAML(options);
  }

  #parseMetadata(xml: string): IdentityProviderMetadata {
    try {
      return parseIdentityProviderMetadata(xml, this.settings.idpEntityId);
    } catch (err) {
      throw new Error(`providers: ${this.id}: saml: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  /** The IdP's metadata: from the file once, or from the URL at most once per METADATA_TTL_MS (a failed fetch is not kept). */
  #idpOnce(): Promise<IdentityProviderMetadata> {
    const now = this.#now();
    if (this.#idp === undefined || this.#idp.expiresAt <= now) {
      const value = this.#fetchMetadata();
      this.#idp = { value, expiresAt: now + METADATA_TTL_MS };
      value.catch(() => {
        if (this.#idp?.value === value) this.#idp = undefined;
      });
    }
    return this.#idp.value;
  }

  async #fetchMetadata(): Promise<IdentityProviderMetadata> {
    const url = this.settings.idpMetadataUrl!;
    let text: string;
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(METADATA_TIMEOUT_MS), redirect: 'error', headers: { accept: 'application/samlmetadata+xml, application/xml, text/xml' } });
      if (!response.ok) throw providerFailed(this.displayName, `saml metadata: HTTP ${response.status}`);
      text = await response.text();
    } catch (err) {
      if (err instanceof LoginFailure) throw err;
      throw providerUnreachable(this.displayName, `saml metadata: ${err instanceof Error ? err.message : String(err)}`, err);
    }
    if (text.length > MAX_METADATA_BYTES) throw providerFailed(this.displayName, 'saml metadata: larger than 1 MiB');
    try {
      return this.#parseMetadata(text);
    } catch (err) {
      throw providerFailed(this.displayName, err instanceof Error ? err.message : String(err), err);
    }
  }
}
