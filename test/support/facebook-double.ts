/**
 * A loopback double of Facebook Login (the manual flow) and the Graph API `/me`, pinned to the Graph
 * version in providers/facebook.yaml. `/me` insists on a correct `appsecret_proof` and returns only the
 * fields asked for. Token errors are Graph-style: HTTP 400 with `{"error": {"message", "type", "code"}}`.
 *
 *   const facebook = await FacebookDouble.start({ alice: { id: '10', name: 'Alice', email: 'a@x' } }, { appSecret });
 *   provider config: { use: 'facebook', urls: { base_url: facebook.url, graph_url: facebook.url } }
 */
import { createHmac } from 'node:crypto';
import { providerDefinitions } from '../../src/config/provider-definitions.js';
import { json, OAuthCodeDouble, type DoubleRequest, type DoubleResponse } from './oauth-double.js';

export interface FacebookUser {
  id: string;
  name: string;
  email?: string;
}

/** The Graph API version stsgate's definition uses (the double serves exactly that one). */
export const GRAPH_API_VERSION = providerDefinitions().get('facebook')!.constants.graph_api_version!;

export class FacebookDouble extends OAuthCodeDouble<FacebookUser> {
  protected readonly authorizePath = `/${GRAPH_API_VERSION}/dialog/oauth`;
  protected readonly tokenPath = `/${GRAPH_API_VERSION}/oauth/access_token`;
  readonly appSecret: string;
  /** `/me` requests refused for a missing or wrong appsecret_proof. */
  badProofs = 0;

  private constructor(users: Record<string, FacebookUser>, appSecret: string) {
    super(users);
    this.appSecret = appSecret;
  }

  /** Starts the double on a free loopback port. */
  static async start(users: Record<string, FacebookUser>, options: { appSecret: string }): Promise<FacebookDouble> {
    return new FacebookDouble(users, options.appSecret).listen();
  }

  protected tokenError(error: string, description: string): DoubleResponse {
    return json({ error: { message: `${error}: ${description}`, type: 'OAuthException', code: 100 } }, 400);
  }

  protected tokenResponse(accessToken: string): DoubleResponse {
    return json({ access_token: accessToken, token_type: 'bearer', expires_in: 5183944 });
  }

  protected route(request: DoubleRequest): DoubleResponse | undefined {
    if (request.url.pathname !== `/${GRAPH_API_VERSION}/me`) return undefined;
    const id = this.userOf(request);
    const user = id === undefined ? undefined : this.users.get(id);
    if (!user) return json({ error: { message: 'Invalid OAuth access token.', type: 'OAuthException', code: 190 } }, 400);
    const token = (request.headers.authorization ?? '').replace(/^Bearer /i, '');
    const proof = createHmac('sha256', this.appSecret).update(token).digest('hex');
    if (request.url.searchParams.get('appsecret_proof') !== proof) {
      this.badProofs++;
      return json({ error: { message: 'Invalid appsecret_proof provided in the API argument', type: 'GraphMethodException', code: 100 } }, 400);
    }
    const fields = (request.url.searchParams.get('fields') ?? 'id,name').split(',');
    const out: Record<string, unknown> = {};
    for (const field of fields) if (Object.hasOwn(user, field)) out[field] = user[field as keyof FacebookUser];
    return json(out);
  }
}
