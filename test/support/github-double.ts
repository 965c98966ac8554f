/**
 * A loopback double of GitHub's OAuth app flow and the REST endpoints stsgate reads: `/user`,
 * `/user/emails`, `/user/orgs` and `/user/teams`, the last two paginated with `Link` headers (a small page
 * size, so that pagination is really exercised). Like GitHub, the token endpoint answers errors with
 * HTTP 200 and `{"error": ...}`.
 *
 *   const github = await GitHubDouble.start({ octocat: { id: 1, login: 'octocat', emails: [...], orgs: ['acme'] } });
 *   github.addClient({ clientId, clientSecret, redirectUri: `${publicUrl}/callback/github` });
 *   provider config: { use: 'github', urls: { base_url: github.url, api_url: github.apiUrl } }
 */
import { json, OAuthCodeDouble, type DoubleRequest, type DoubleResponse, type IssuedCode } from './oauth-double.js';

export interface GitHubUser {
  id: number;
  login: string;
  name?: string | null;
  /** The public profile email (may differ from the verified primary one). */
  email?: string | null;
  emails: { email: string; primary: boolean; verified: boolean }[];
  orgs: string[];
  /** `org/slug` */
  teams: string[];
}

export class GitHubDouble extends OAuthCodeDouble<GitHubUser> {
  protected readonly authorizePath = '/login/oauth/authorize';
  protected readonly tokenPath = '/login/oauth/access_token';
  /** Items per page of /user/orgs and /user/teams, whatever per_page asks. */
  pageSize: number;

  private constructor(users: Record<string, GitHubUser>, pageSize: number) {
    super(users);
    this.pageSize = pageSize;
  }

  /** Starts the double on a free loopback port. */
  static async start(users: Record<string, GitHubUser>, options: { pageSize?: number } = {}): Promise<GitHubDouble> {
    return new GitHubDouble(users, options.pageSize ?? 2).listen();
  }

  /** `api_url` for the provider config (GitHub Enterprise Server layout). */
  get apiUrl(): string {
    return `${this.url}/api/v3`;
  }

  protected tokenError(error: string, description: string): DoubleResponse {
    // GitHub's documented behaviour: HTTP 200 with an error body.
    return json({ error: error === 'invalid_grant' ? 'bad_verification_code' : error, error_description: description });
  }

  protected tokenResponse(accessToken: string, code: IssuedCode): DoubleResponse {
    return json({ access_token: accessToken, token_type: 'bearer', scope: code.scope.split(' ').join(',') });
  }

  protected route(request: DoubleRequest): DoubleResponse | undefined {
    const path = request.url.pathname;
    if (!path.startsWith('/api/v3/')) return undefined;
    const id = this.userOf(request);
    const user = id === undefined ? undefined : this.users.get(id);
    if (!user) return json({ message: 'Bad credentials' }, 401);
    switch (path) {
      case '/api/v3/user':
        return json({ id: user.id, login: user.login, name: user.name ?? null, email: user.email ?? null });
      case '/api/v3/user/emails':
        return json(user.emails.map((e) => ({ ...e, visibility: e.primary ? 'private' : null })));
      case '/api/v3/user/orgs':
        return this.#page(request, user.orgs.map((login, i) => ({ login, id: 1000 + i })));
      case '/api/v3/user/teams':
        return this.#page(
          request,
          user.teams.map((team, i) => {
            const [org, slug] = team.split('/');
            return { id: 2000 + i, slug, name: slug, organization: { login: org } };
          }),
        );
      default:
        return json({ message: 'Not Found' }, 404);
    }
  }

  /** One page and a Link header to the next, as GitHub paginates (RFC 8288). */
  #page(request: DoubleRequest, items: unknown[]): DoubleResponse {
    const page = Number(request.url.searchParams.get('page') ?? '1');
    const slice = items.slice((page - 1) * this.pageSize, page * this.pageSize);
    const headers: Record<string, string> = {};
    if (page * this.pageSize < items.length) {
      const next = new URL(request.url);
      next.searchParams.set('page', String(page + 1));
      headers.link = `<${next.href}>; rel="next", <${request.url.origin}${request.url.pathname}?page=1>; rel="first"`;
    }
    return json(slice, 200, headers);
  }
}
