/**
 * Provider definitions: `providers/<name>.yaml`, one declarative file per identity provider (kind,
 * endpoints, default scopes, how claims are built), validated with zod when first read. A configured
 * provider names its definition with `use:` and may override any endpoint, base URL or issuer.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { z } from 'zod';

/** Where the definitions live: `providers/` at the package root (from `src/idp/` and `dist/idp/` alike). */
export const PROVIDERS_DIR = fileURLToPath(new URL('../../providers/', import.meta.url));

/** The adapters a definition may name; each is registered by one line in `idp/index.ts`. */
export const ADAPTER_NAMES = ['oidc', 'github', 'facebook'] as const;
export type AdapterName = (typeof ADAPTER_NAMES)[number];

/**
 * Endpoints an OpenID Connect provider publishes in discovery, by the names a configured provider may
 * override them with, and the discovery metadata field each one replaces.
 */
export const OIDC_ENDPOINTS = {
  authorization: 'authorization_endpoint',
  token: 'token_endpoint',
  userinfo: 'userinfo_endpoint',
  jwks: 'jwks_uri',
} as const;

const NAME = /^[a-z][a-z0-9_-]{0,31}$/;
const TEMPLATE_VARIABLE = /\{([a-z_][a-z0-9_]*)\}/g;

const definitionSchema = z
  .strictObject({
    name: z.string().regex(NAME),
    display_name: z.string().min(1).max(64),
    /**
     * `oidc`: discovery and a verified ID token; `oauth2`: endpoints given here, claims from an API;
     * `saml`: SAML 2.0 Web Browser SSO (idp/saml-provider.ts), the IdP from each configured provider's metadata;
     * `ldap`: a directory checks a username and password typed into stsgate's own form (idp/ldap/).
     */
    kind: z.enum(['oidc', 'oauth2', 'saml', 'ldap']),
    /** The code that reads the profile (oidc and oauth2 kinds); a saml kind has none (its protocol is not OAuth), the ldap kind has its own provider. */
    adapter: z.enum(ADAPTER_NAMES).optional(),
    /** The default issuer (oidc kind); none means every configured provider must name one. */
    issuer: z.url({ protocol: /^https$/ }).optional(),
    /** Values that endpoint templates use but no configured provider changes (an API version). */
    constants: z.record(z.string().regex(NAME), z.string().min(1)).default({}),
    /** Named base URLs that endpoint templates use; a configured provider may override each by name. */
    urls: z.record(z.string().regex(NAME), z.url({ protocol: /^https$/ })).default({}),
    /** Endpoint name -> URL template (`{base_url}/login/oauth/authorize`). */
    endpoints: z.record(z.string().regex(NAME), z.string().min(1)).default({}),
    scopes: z.array(z.string().min(1)).default([]),
    /** oidc kind: whether the userinfo response is merged into the claims. */
    userinfo: z.boolean().default(false),
    /** identity claim -> dot path into what the adapter read; or `all` (oidc: every claim). */
    claims: z.union([z.literal('all'), z.record(z.string().min(1), z.string().regex(/^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)*$/))]),
  })
  .superRefine((def, ctx) => {
    const variables = new Set([...Object.keys(def.constants), ...Object.keys(def.urls)]);
    for (const [name, template] of Object.entries(def.endpoints)) {
      for (const [, variable] of template.matchAll(TEMPLATE_VARIABLE)) {
        if (!variables.has(variable!)) ctx.addIssue({ code: 'custom', path: ['endpoints', name], message: `unknown variable {${variable}}` });
      }
    }
    if (def.kind === 'saml') {
      for (const key of ['adapter', 'issuer'] as const) if (def[key] !== undefined) ctx.addIssue({ code: 'custom', path: [key], message: `a saml definition has no ${key}` });
      if (def.scopes.length > 0 || Object.keys(def.endpoints).length > 0) ctx.addIssue({ code: 'custom', path: ['scopes'], message: 'a saml definition has no scopes or endpoints (the IdP metadata names them)' });
      if (def.claims === 'all') ctx.addIssue({ code: 'custom', path: ['claims'], message: 'claims: all is for oidc definitions; name each claim' });
    } else if (def.kind === 'ldap') {
      for (const key of ['adapter', 'issuer'] as const) if (def[key] !== undefined) ctx.addIssue({ code: 'custom', path: [key], message: `an ldap definition has no ${key}` });
      if (def.claims === 'all') ctx.addIssue({ code: 'custom', path: ['claims'], message: 'claims: all is for oidc definitions; name each claim' });
    } else {
      if (def.adapter === undefined) ctx.addIssue({ code: 'custom', path: ['adapter'], message: `an ${def.kind} definition needs an adapter` });
      if (def.scopes.length === 0) ctx.addIssue({ code: 'custom', path: ['scopes'], message: `an ${def.kind} definition needs at least one scope` });
    }
    if (def.kind === 'oauth2') {
      for (const required of ['authorization', 'token']) {
        if (!Object.hasOwn(def.endpoints, required)) ctx.addIssue({ code: 'custom', path: ['endpoints'], message: `an oauth2 definition needs a ${required} endpoint` });
      }
      if (def.issuer !== undefined) ctx.addIssue({ code: 'custom', path: ['issuer'], message: 'only oidc definitions have an issuer' });
      if (def.claims === 'all') ctx.addIssue({ code: 'custom', path: ['claims'], message: 'claims: all is for oidc definitions; name each claim' });
    }
    if (def.claims !== 'all' && !Object.hasOwn(def.claims, 'sub')) ctx.addIssue({ code: 'custom', path: ['claims'], message: 'a definition must say where sub comes from' });
  });

/** One validated provider definition. */
export type ProviderDefinition = z.output<typeof definitionSchema>;

let cached: ReadonlyMap<string, ProviderDefinition> | undefined;

/** Every definition in `providers/`, by name; read and validated once (a bad file is a build error, so this throws). */
export function providerDefinitions(dir: string = PROVIDERS_DIR): ReadonlyMap<string, ProviderDefinition> {
  if (dir === PROVIDERS_DIR && cached) return cached;
  const definitions = new Map<string, ProviderDefinition>();
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.yaml')).sort()) {
    const result = definitionSchema.safeParse(parse(readFileSync(`${dir}/${file}`, 'utf8')));
    if (!result.success) {
      throw new Error(`providers/${file}: ${result.error.issues.map((i) => `${i.path.join('.') || '(top level)'}: ${i.message}`).join('; ')}`);
    }
    if (`${result.data.name}.yaml` !== file) throw new Error(`providers/${file}: name ${JSON.stringify(result.data.name)} must match the file name`);
    definitions.set(result.data.name, result.data);
  }
  if (dir === PROVIDERS_DIR) cached = definitions;
  return definitions;
}

/** The endpoint names a configured provider of this definition may override. */
export function overridableEndpoints(def: ProviderDefinition): string[] {
  return [...new Set([...(def.kind === 'oidc' ? Object.keys(OIDC_ENDPOINTS) : []), ...Object.keys(def.endpoints)])];
}

/** Fills `{name}` in an endpoint template from the definition's constants and the (possibly overridden) URLs. */
export function expandTemplate(template: string, variables: Readonly<Record<string, string>>): string {
  return template.replace(TEMPLATE_VARIABLE, (_, name: string) => {
    const value = variables[name];
    if (value === undefined) throw new Error(`unknown template variable {${name}}`);
    // A base URL's trailing slash would double the path separator.
    return value.replace(/\/+$/, '');
  });
}
