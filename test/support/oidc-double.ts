/**
 * A loopback OpenID Connect provider double that can be told to misbehave: discovery, JWKS, an
 * authorization endpoint (one button per user) and a token endpoint whose ID token can carry a wrong
 * `iss`, `aud` or `nonce`, be expired, or be signed with a key the JWKS does not hold. For the happy path
 * prefer OidcTestProvider (a real implementation); this one exists to forge what a real one never sends.
 *
 *   const idp = await OidcDouble.start({ mallory: { sub: 'm-1', email: 'm@x' } });
 *   idp.addClient({ clientId, clientSecret, redirectUri });
 *   idp.misbehave({ claims: { aud: 'someone-else' } });     // next ID tokens; idp.misbehave({}) heals
 */
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import { json, OAuthCodeDouble, type DoubleRequest, type DoubleResponse, type IssuedCode } from './oauth-double.js';

export interface OidcDoubleUser {
  sub: string;
  [claim: string]: unknown;
}

/** How the next ID tokens go wrong. */
export interface OidcMisbehaviour {
  /** Claims merged over the correct ones (`iss`, `aud`, `nonce`, `exp`, ...). */
  claims?: Record<string, unknown>;
  /** Sign with a key the JWKS does not publish (under the published kid, unless `kid`). */
  foreignKey?: boolean;
  /** The kid in the header (a new one makes the client fetch the JWKS again, as after a key rotation). */
  kid?: string;
}

export class OidcDouble extends OAuthCodeDouble<OidcDoubleUser> {
  protected readonly authorizePath = '/authorize';
  protected readonly tokenPath = '/token';
  #misbehaviour: OidcMisbehaviour = {};
  #key!: { privateKey: CryptoKey; publicJwk: Record<string, unknown> };
  #foreign!: CryptoKey;

  private constructor(users: Record<string, OidcDoubleUser>) {
    super(users);
  }

  /** Starts the double on a free loopback port. */
  static async start(users: Record<string, OidcDoubleUser>): Promise<OidcDouble> {
    const double = new OidcDouble(users);
    const { privateKey, publicKey } = await generateKeyPair('RS256');
    double.#key = { privateKey, publicJwk: { ...(await exportJWK(publicKey)), kid: 'double-1', alg: 'RS256', use: 'sig' } };
    double.#foreign = (await generateKeyPair('RS256')).privateKey;
    return double.listen();
  }

  /** The issuer (its base URL). */
  get issuer(): string {
    return this.url;
  }

  /** Sets how the next ID tokens go wrong (`{}`: correct again). */
  misbehave(how: OidcMisbehaviour): void {
    this.#misbehaviour = how;
  }

  protected tokenError(error: string, description: string): DoubleResponse {
    return json({ error, error_description: description }, error === 'invalid_client' ? 401 : 400);
  }

  protected async tokenResponse(accessToken: string, code: IssuedCode): Promise<DoubleResponse> {
    const user = this.users.get(code.user)!;
    const now = Math.floor(Date.now() / 1000);
    const claims = { ...user, iss: this.issuer, aud: code.clientId, iat: now, exp: now + 300, ...(code.nonce !== undefined ? { nonce: code.nonce } : {}), ...this.#misbehaviour.claims };
    const idToken = await new SignJWT(claims)
      .setProtectedHeader({ alg: 'RS256', kid: this.#misbehaviour.kid ?? 'double-1', typ: 'JWT' })
      .sign(this.#misbehaviour.foreignKey ? this.#foreign : this.#key.privateKey);
    return json({ access_token: accessToken, token_type: 'Bearer', expires_in: 300, id_token: idToken });
  }

  protected route(request: DoubleRequest): DoubleResponse | undefined {
    switch (request.url.pathname) {
      case '/.well-known/openid-configuration':
        return json({
          issuer: this.issuer,
          authorization_endpoint: `${this.url}/authorize`,
          token_endpoint: `${this.url}/token`,
          jwks_uri: `${this.url}/jwks`,
          response_types_supported: ['code'],
          subject_types_supported: ['public'],
          id_token_signing_alg_values_supported: ['RS256'],
          token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
          code_challenge_methods_supported: ['S256'],
        });
      case '/jwks':
        return json({ keys: [this.#key.publicJwk] });
      default:
        return undefined;
    }
  }
}
