/**
 * A refusal by the rules, as an administrator traces it from the log: the audit line names the rule that
 * came closest and its failing conditions in the words `stsgate explain` prints for the same identity,
 * and the account (email or login) the person was named by; `audit.include_account_label: false` leaves
 * the account out. The client's answer says none of it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileRules, formatExplanation } from '../../src/rules/index.js';
import { issuerFor, startTestGateway, type TestGateway } from '../support/gateway.js';
import { TestIssuer } from '../support/test-issuer.js';
import { MAIN, postOAuth, postSts } from '../security/harness.js';

let idp: TestIssuer;
let withLabel: TestGateway;
let withoutLabel: TestGateway;

beforeAll(async () => {
  idp = await TestIssuer.start();
  withLabel = await startTestGateway({ issuers: [issuerFor(idp)] });
  withoutLabel = await startTestGateway({ issuers: [issuerFor(idp)], config: { audit: { includeAccountLabel: false } } });
});
afterAll(async () => {
  await Promise.all([withLabel?.close(), withoutLabel?.close()]);
  await idp?.close();
});

const DEV = { ...MAIN, ref: 'refs/heads/dev', email: 'dev@acme.example', sub: 'repo:acme/app:ref:refs/heads/dev' };
const FAILING = ['FAIL ref equals "refs/heads/main": found string "refs/heads/dev"'];

/** The audit lines of refusals on `gateway` for `subject`. */
function denials(gateway: TestGateway, subject: string): Record<string, unknown>[] {
  return gateway.logs().filter((line) => line.log === 'audit' && line.event === 'denied' && line.subject === subject);
}

describe('the audit line of a refusal by the rules', () => {
  it('names the closest rule, its failing condition as explain prints it, and the account', async () => {
    const res = await postSts(withLabel.url, { WebIdentityToken: await idp.mint(DEV) });
    expect(res.status).toBe(403);
    const body = await res.text();
    expect(body).not.toMatch(/refs\/heads\/main|main branch|dev@acme/);
    const [line] = denials(withLabel, DEV.sub);
    expect(line).toMatchObject({
      level: 'info',
      action: 'AssumeRoleWithWebIdentity',
      code: 'AccessDenied',
      role: 'deployer',
      closestRule: 'main branch of acme/app may deploy',
      failing: FAILING,
      account: `dev@acme.example (ci:${DEV.sub})`,
    });
    // The same words `stsgate explain` prints for this identity.
    const printed = formatExplanation(compileRules(withLabel.config).explain({ source: 'ci', subject: DEV.sub, claims: DEV })).split('\n');
    expect(printed).toContain(`    ${FAILING[0]}`);
  });

  it('an RFC 8693 refusal carries the same', async () => {
    const sub = 'oauth-refused';
    const res = await postOAuth(withLabel.url, { subject_token: await idp.mint({ ...DEV, sub }) });
    expect(res.status).toBe(400);
    expect(denials(withLabel, sub)[0]).toMatchObject({ closestRule: 'main branch of acme/app may deploy', failing: FAILING, account: `dev@acme.example (ci:${sub})` });
  });

  it('audit.include_account_label: false leaves the account out, and only it', async () => {
    const res = await postSts(withoutLabel.url, { WebIdentityToken: await idp.mint(DEV) });
    expect(res.status).toBe(403);
    const [line] = denials(withoutLabel, DEV.sub);
    expect(line).toMatchObject({ closestRule: 'main branch of acme/app may deploy', failing: FAILING });
    expect(line).not.toHaveProperty('account');
    expect(JSON.stringify(withoutLabel.logs())).not.toContain('dev@acme.example');
  });

  it('a refusal that is not the rules\' (an unverifiable token) names no rule', async () => {
    const res = await postSts(withLabel.url, { WebIdentityToken: 'not-a-jwt' });
    expect(res.status).toBe(400);
    const line = withLabel.logs().filter((l) => l.event === 'denied' && l.code === 'InvalidIdentityToken').at(-1);
    expect(line).toBeDefined();
    expect(line).not.toHaveProperty('closestRule');
    expect(line).not.toHaveProperty('account');
  });
});
