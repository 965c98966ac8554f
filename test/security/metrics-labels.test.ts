/**
 * Metric labels name a role only when the rules granted it to the identity asking. Otherwise a scrape
 * would tell a role that exists from one that does not (the AccessDenied answers are the same on
 * purpose), and any caller could fill a label with names of their choosing. Each row is sent in both
 * protocols and ends with the usual hostile-input check (exact error, nothing issued or stored).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { issuerFor } from '../support/gateway.js';
import { scrapeMetrics, type Sample } from '../support/prometheus.js';
import { TestIssuer } from '../support/test-issuer.js';
import { expectRefused, MAIN, oauthFor, postOAuth, postSts, startSecurityGateway, withinOneWindow, type Expected, type SecurityGateway } from './harness.js';
import { ACCOUNT_ID } from '../support/common.js';

/** Requests per subject and minute: enough for the warm-up, few enough to reach quickly. */
const SUBJECT_LIMIT = 3;

let idp: TestIssuer;
let g: SecurityGateway;
beforeAll(async () => {
  idp = await TestIssuer.start();
  g = await startSecurityGateway({ issuers: [issuerFor(idp)], config: { limits: { maxBodyBytes: 65536, exchangePerSubjectPerMinute: SUBJECT_LIMIT, exchangePerAddressPerMinute: 0 } } });
  // The first token makes the gateway fetch the issuer's keys: done here, so no probe below counts it.
  const res = await postSts(g.url, { WebIdentityToken: await idp.mint({ ...MAIN, sub: freshSubject() }) });
  expect(res.status).toBe(200);
});
afterAll(async () => {
  await g?.close();
  await idp?.close();
});

function freshSubject(): string {
  return `repo:acme/app:ref:refs/heads/main:${Math.random().toString(36).slice(2)}`;
}

const scrape = (): Promise<Sample[]> => scrapeMetrics(g.gateway.adminUrl);

/**
 * What a scrape says about requests: every counter and histogram count by its labels. Durations (sums,
 * buckets) and the process's own metrics move with timing, not with requests, and are left out.
 */
function requestCounts(samples: Sample[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const s of samples) {
    if (!s.name.startsWith('stsgate_') || s.name.endsWith('_sum') || s.name.endsWith('_bucket')) continue;
    if (/^stsgate_(process|nodejs)_/.test(s.name)) continue;
    counts.set(`${s.name}${JSON.stringify(Object.entries(s.labels).sort())}`, s.value);
  }
  return counts;
}

function delta(before: Map<string, number>, after: Map<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [key, value] of after) if (value !== (before.get(key) ?? 0)) out[key] = value - (before.get(key) ?? 0);
  return out;
}

type Protocol = 'aws' | 'oauth';

/** One exchange for `role` (a name; the AWS form sends its ARN) by the subject `sub`. */
async function exchange(protocol: Protocol, role: string, sub: string, extra: { durationSeconds?: number } = {}): Promise<Response> {
  const token = await idp.mint({ ...MAIN, sub });
  if (protocol === 'aws') {
    return postSts(g.url, {
      WebIdentityToken: token,
      RoleArn: `arn:aws:iam::${ACCOUNT_ID}:role/${role}`,
      ...(extra.durationSeconds === undefined ? {} : { DurationSeconds: String(extra.durationSeconds) }),
    });
  }
  return postOAuth(g.url, { subject_token: token, audience: role, ...(extra.durationSeconds === undefined ? {} : { duration_seconds: String(extra.durationSeconds) }) });
}

/** Spends a subject's whole allowance on successful exchanges, so that its next request is throttled. */
async function exhaust(sub: string): Promise<void> {
  await withinOneWindow();
  for (let i = 0; i < SUBJECT_LIMIT; i++) expect((await exchange('aws', 'reader', sub)).status).toBe(200);
}

interface Row {
  name: string;
  role: string;
  throttled?: boolean;
  durationSeconds?: number;
  /** The AWS code of the refusal. */
  code: string;
  /** The `role` label the denial must carry. */
  label: string;
}

const rows: Row[] = [
  { name: 'a role that exists but is not granted', role: 'admin', code: 'AccessDenied', label: 'not_granted' },
  { name: 'a role that does not exist', role: 'ghost', code: 'AccessDenied', label: 'not_granted' },
  { name: 'a role name with label-breaking text', role: 'x",role="deployer', code: 'AccessDenied', label: 'not_granted' },
  { name: 'a throttled request for a role that exists but is not granted', role: 'admin', throttled: true, code: 'Throttling', label: 'not_granted' },
  { name: 'a throttled request for a role that does not exist', role: 'ghost', throttled: true, code: 'Throttling', label: 'not_granted' },
  { name: 'a throttled request for a granted role', role: 'deployer', throttled: true, code: 'Throttling', label: 'deployer' },
  { name: 'a granted role for longer than it allows', role: 'deployer', durationSeconds: 7_201, code: 'ValidationError', label: 'deployer' },
];

describe.each(['aws', 'oauth'] as const)('metrics labels: %s', (protocol) => {
  it.each(rows.map((row) => [row.name, row] as const))('%s', async (_name, row) => {
    const sub = freshSubject();
    if (row.throttled) await exhaust(sub);
    const before = requestCounts(await scrape());
    const expected: Expected = protocol === 'aws' ? [row.code === 'AccessDenied' ? 403 : 400, row.code] : oauthFor(row.code);
    await expectRefused(g, protocol, expected, () => exchange(protocol, row.role, sub, row.durationSeconds === undefined ? {} : { durationSeconds: row.durationSeconds }));
    const after = requestCounts(await scrape());

    const denials = Object.entries(delta(before, after)).filter(([key]) => key.startsWith('stsgate_denials_total'));
    expect(denials).toHaveLength(1);
    expect(JSON.parse(denials[0]![0].slice('stsgate_denials_total'.length))).toContainEqual(['role', row.label]);
    expect(JSON.parse(denials[0]![0].slice('stsgate_denials_total'.length))).toContainEqual(['reason', row.code]);
  });

  it('a scrape cannot tell a role that exists from one that does not', async () => {
    const probe = async (role: string) => {
      const before = requestCounts(await scrape());
      const res = await exchange(protocol, role, freshSubject());
      expect(res.status).toBe(protocol === 'aws' ? 403 : 400);
      return delta(before, requestCounts(await scrape()));
    };
    const existing = await probe('admin');
    const missing = await probe('ghost');
    expect(Object.keys(existing).length).toBeGreaterThan(0);
    expect(existing).toEqual(missing);
  });
});

it('no label anywhere in the scrape holds a role the identity was not granted', async () => {
  const labels = (await scrape()).flatMap((s) => Object.values(s.labels));
  expect(labels).toContain('not_granted');
  for (const refused of ['admin', 'ghost', 'x",role="deployer', 'x']) expect(labels).not.toContain(refused);
});
