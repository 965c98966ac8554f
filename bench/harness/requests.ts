/** Requests the benchmark scripts send, shared by those that run one case on their own (bench:ab, bench:gc). */
import type { TestIssuer } from '../../test/support/test-issuer.js';
import { BENCH_ROLE_ARN } from '../servers/settings.js';
import type { RequestShape } from './load.js';

/** `npm run bench`'s cache-hit request: one GitHub-Actions-like token, the same subject and role every time. */
export async function cacheHitShape(issuer: TestIssuer): Promise<RequestShape> {
  const token = await issuer.mint({ repository: 'acme/app', ref: 'refs/heads/main', actor: 'octocat', sub: 'repo:acme/app:ref:refs/heads/main' }, { expiresIn: 3600 });
  const body = new URLSearchParams({ Action: 'AssumeRoleWithWebIdentity', Version: '2011-06-15', RoleArn: BENCH_ROLE_ARN, RoleSessionName: 'ci-deploy', WebIdentityToken: token }).toString();
  return { method: 'POST', path: '/', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body };
}
