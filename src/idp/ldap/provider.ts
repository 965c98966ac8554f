/**
 * A `use: ldap` login provider: the person types a username and password into stsgate's own form
 * (`/login/<id>/password`), the directory checks them (search-then-bind, `directory.ts`), and the login
 * then ends like every other at `/callback/<id>`: the verified identity waits in the login transaction
 * under a one-time code, so the rules, the no-role refusal, browser sessions, terminal codes and the audit
 * line are the same code path as for an OAuth provider.
 */
import type { ProviderDefinition } from '../../config/provider-definitions.js';
import type { LdapProviderConfig } from '../../config/types.js';
import type { Identity } from '../../domain/types.js';
import { secretDigest } from '../../store/records.js';
import { equalSecretText } from '../../util/secret-text.js';
import { LoginFailure } from '../login-failure.js';
import type { BrowserLoginProvider, LoginChecks } from '../login-provider.js';
import { buildClaims } from '../profile-claims.js';
import { LdapDirectory } from './directory.js';

/** A directory login provider. */
export class LdapLoginProvider implements BrowserLoginProvider {
  readonly protocol = 'password' as const;
  /** The callback carries the one-time code the form's check handed out. */
  readonly answerParameter = 'code';
  readonly id: string;
  readonly displayName: string;
  readonly definition: ProviderDefinition;
  readonly #formUrl: string;
  readonly #directory: LdapDirectory;

  /** `formUrl`: where the sign-in form is served (`<public_url>/login/<id>/password`). */
  constructor(config: LdapProviderConfig, definition: ProviderDefinition, options: { formUrl: string; now?: () => Date }) {
    this.id = config.id;
    this.displayName = config.displayName ?? definition.display_name;
    this.definition = definition;
    this.#formUrl = options.formUrl;
    this.#directory = new LdapDirectory(config.ldap, this.displayName, options.now);
  }

  /** The sign-in form, for this login transaction: no other site is involved. */
  async authorizationUrl(checks: Pick<LoginChecks, 'state'>): Promise<URL> {
    const url = new URL(this.#formUrl);
    url.searchParams.set('state', checks.state);
    return url;
  }

  /** Checks a username and password against the directory; the identity its entry and groups make. */
  async checkPassword(username: string, password: string): Promise<Identity> {
    const profile = await this.#directory.authenticate(username, password);
    const claims = buildClaims(this.definition.claims, profile);
    if (typeof claims.sub !== 'string' || claims.sub === '') {
      throw new LoginFailure('profile_invalid', `${this.displayName} did not say which account signed in.`, { status: 502, code: 'IDPCommunicationError', debug: 'no sub claim' });
    }
    return { source: this.id, subject: claims.sub, claims };
  }

  /** The callback after the form: the identity the form's check left in the transaction, for its one-time code only. */
  async complete(answer: URLSearchParams, checks: LoginChecks): Promise<Identity> {
    const code = answer.get(this.answerParameter);
    const verified = checks.verified;
    if (verified === undefined || code === null || !equalSecretText(secretDigest(code), verified.codeHash)) {
      throw new LoginFailure('code_rejected', `This sign-in with ${this.displayName} was not finished on its form. Start again.`, { debug: verified === undefined ? 'no verified identity in the transaction' : 'code does not match' });
    }
    return verified.identity;
  }
}
