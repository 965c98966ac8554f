import type { ProviderAdapter } from '../adapter.js';
import { LoginFailure } from '../login-failure.js';

/** GitHub's REST API version header (docs: "API versions"); the definition may pin another as `api_version`. */
const DEFAULT_API_VERSION = '2022-11-28';

interface GitHubEmail {
  email?: unknown;
  primary?: unknown;
  verified?: unknown;
}

/**
 * GitHub: OAuth 2 without an ID token, so the identity comes from the REST API: `/user` (the numeric id
 * is the subject: a login can be renamed and then taken by someone else), `/user/emails` (only the
 * primary address, and only when GitHub has verified it), and every page of `/user/orgs` and
 * `/user/teams` (a rule on membership must see all of it, never a first page).
 */
export const githubAdapter = {
  async readProfile({ definition, tokens, endpoints, api }) {
    const headers = {
      authorization: `Bearer ${tokens.access_token}`,
      accept: 'application/vnd.github+json',
      'x-github-api-version': definition.constants.api_version ?? DEFAULT_API_VERSION,
    };
    const { json: user } = await api.getJson(endpoints.user!, headers);
    if (!isObject(user) || !Number.isSafeInteger(user.id)) {
      throw new LoginFailure('profile_invalid', 'GitHub did not say which account signed in.', { status: 502, code: 'IDPCommunicationError', debug: '/user has no numeric id' });
    }
    const [{ json: emails }, orgs, teams] = await Promise.all([
      api.getJson(endpoints.emails!, headers),
      api.getAllPages(withPageSize(endpoints.orgs!), headers),
      api.getAllPages(withPageSize(endpoints.teams!), headers),
    ]);
    const primary = Array.isArray(emails) ? (emails as GitHubEmail[]).find((e) => isObject(e) && e.primary === true) : undefined;
    const verified = primary !== undefined && primary.verified === true && typeof primary.email === 'string';
    return {
      user,
      email: verified ? { address: primary.email, verified: true } : { verified: false },
      orgs: orgs.flatMap((org) => (isObject(org) && typeof org.login === 'string' ? [org.login] : [])),
      teams: teams.flatMap((team) => {
        if (!isObject(team) || typeof team.slug !== 'string' || !isObject(team.organization) || typeof team.organization.login !== 'string') return [];
        return [`${team.organization.login}/${team.slug}`];
      }),
    };
  },

  /** GitHub answers a bad or used code with HTTP 200 and `{"error": ...}`; RFC 6749 §5.2 says 400, which openid-client reads as the OAuth error it is. */
  async adjustTokenResponse(response) {
    if (response.status !== 200) return response;
    const text = await response.text();
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      return new Response(text, { status: response.status, headers: response.headers });
    }
    const status = isObject(body) && typeof body.error === 'string' && body.access_token === undefined ? 400 : 200;
    return new Response(text, { status, headers: response.headers });
  },
} satisfies ProviderAdapter;

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** 100 per page, GitHub's maximum, so that few pages are needed. */
function withPageSize(url: string): string {
  const target = new URL(url);
  if (!target.searchParams.has('per_page')) target.searchParams.set('per_page', '100');
  return target.href;
}
