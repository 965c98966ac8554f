/** `/metrics` parses as Prometheus text, with the named series present and moving. */
import { AssumeRoleWithWebIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { issuerFor, redisStoreConfig, startTestGateway, type TestGateway } from '../support/gateway.js';
import { parsePrometheusText, sumOf, type Sample } from '../support/prometheus.js';
import { TestIssuer } from '../support/test-issuer.js';
import { ACCOUNT_ID } from '../support/common.js';

describe('/metrics', () => {
  let issuer: TestIssuer;
  let gateway: TestGateway;
  let sts: STSClient;

  beforeAll(async () => {
    issuer = await TestIssuer.start();
    gateway = await startTestGateway({ issuers: [issuerFor(issuer)], store: redisStoreConfig() });
    sts = new STSClient({ endpoint: gateway.url, region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' }, maxAttempts: 1 });
  });
  afterAll(async () => {
    await gateway?.close();
    await issuer?.close();
  });

  async function scrape(): Promise<Sample[]> {
    const res = await fetch(`${gateway.adminUrl}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    return parsePrometheusText(await res.text());
  }

  const assume = async (ref: string) =>
    sts.send(new AssumeRoleWithWebIdentityCommand({
      RoleArn: `arn:aws:iam::${ACCOUNT_ID}:role/deployer`,
      RoleSessionName: 'metrics',
      WebIdentityToken: await issuer.mint({ repository: 'acme/app', ref }),
    }));

  it('counts issuances, cache hits, denials by reason, latency, store operations and process metrics', async () => {
    const before = await scrape();
    await assume('refs/heads/main');
    await assume('refs/heads/main');
    await expect(assume('refs/heads/feature')).rejects.toThrow();
    const after = await scrape();

    const delta = (name: string, labels: Record<string, string> = {}) => sumOf(after, name, labels) - sumOf(before, name, labels);
    expect(delta('stsgate_credentials_issued_total', { source: 'ci', role: 'deployer', cached: 'false' })).toBe(1);
    expect(delta('stsgate_credentials_issued_total', { source: 'ci', role: 'deployer', cached: 'true' })).toBe(1);
    expect(delta('stsgate_credential_cache_total', { result: 'hit' })).toBe(1);
    expect(delta('stsgate_credential_cache_total', { result: 'miss' })).toBe(1);
    // The feature branch is not granted deployer: the label must not say which role it asked for.
    expect(delta('stsgate_denials_total', { source: 'ci', role: 'not_granted', reason: 'AccessDenied' })).toBe(1);
    expect(delta('stsgate_exchange_duration_seconds_count', { action: 'AssumeRoleWithWebIdentity' })).toBe(3);
    expect(delta('stsgate_store_operation_duration_seconds_count')).toBeGreaterThanOrEqual(3);
    expect(delta('stsgate_http_requests_total', { route: 'sts' })).toBe(3);
    expect(sumOf(after, 'stsgate_process_resident_memory_bytes')).toBeGreaterThan(0);
    // The first token made the gateway fetch the issuer's discovery document and JWKS.
    expect(sumOf(after, 'stsgate_jwks_fetches_total', { issuer: 'ci', kind: 'discovery', outcome: 'ok' })).toBe(1);
    expect(sumOf(after, 'stsgate_jwks_fetches_total', { issuer: 'ci', kind: 'jwks', outcome: 'ok' })).toBe(1);
    // No label value is something a client chose freely.
    for (const sample of after) for (const value of Object.values(sample.labels)) expect(value.length).toBeLessThan(64);
  });

  it('labels a request by its route group, from a fixed set, and by its status class', async () => {
    const before = await scrape();
    for (const path of ['/healthz', '/healthz/', '/.well-known/openid-configuration', '/xhealthz', '/unknown/healthz', '/v1', '/v1/nowhere']) await fetch(gateway.url + path);
    const after = await scrape();
    const delta = (labels: Record<string, string>) => sumOf(after, 'stsgate_http_requests_total', labels) - sumOf(before, 'stsgate_http_requests_total', labels);
    expect(delta({ route: 'healthz', status: '2xx' })).toBe(2);
    expect(delta({ route: '.well-known', status: '2xx' })).toBe(1);
    expect(delta({ route: 'other', status: '4xx' })).toBe(2);
    expect(delta({ route: 'v1', status: '4xx' })).toBe(2);
  });
});
