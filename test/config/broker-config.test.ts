/**
 * Broker blocks in the configuration (issue 13): each kind's schema (aws, gcp, azure), its defaults in the
 * runtime shape, and every problem named by its setting's path; a broker on any other kind is refused.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { ConfigError, parseConfig } from '../../src/config/load.js';
import { ACCOUNT_ID } from '../support/common.js';

const dir = mkdtempSync(join(tmpdir(), 'stsgate-broker-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const PROVIDER = 'projects/123456789/locations/global/workloadIdentityPools/ci-pool/providers/stsgate';
const TENANT = '8eaef023-2b34-4da1-9baa-8bc8c9d6a490';
const APP = '0f6a1a9e-4b7c-4f0e-9a51-2d2f3c4b5a61';
const PEM = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';

function parseTarget(target: Record<string, unknown>) {
  return parseConfig(stringify({ public_url: 'https://sts.example.com', account_id: ACCOUNT_ID, targets: [target] }), {}, dir).targets![0]!;
}

function problemsOf(target: Record<string, unknown>): string[] {
  try {
    parseTarget(target);
  } catch (err) {
    if (err instanceof ConfigError) return [...err.problems];
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('broker configuration', () => {
  it('a gcp broker: defaults, and the STS audience from the target\'s provider', () => {
    const target = parseTarget({ name: 'gcp', kind: 'gcp', gcp: { provider: PROVIDER }, broker: { service_account: 'deployer@acme-prod.iam.gserviceaccount.com' } });
    expect(target.broker).toEqual({
      cloud: 'gcp',
      audience: `//iam.googleapis.com/${PROVIDER}`,
      tokenUrl: 'https://sts.googleapis.com/v1/token',
      serviceAccount: 'deployer@acme-prod.iam.gserviceaccount.com',
      iamCredentialsUrl: 'https://iamcredentials.googleapis.com',
      scopes: ['https://www.googleapis.com/auth/cloud-platform'],
      lifetimeSeconds: 3600,
      timeoutSeconds: 10,
    });
  });

  it('a gcp access boundary in Google\'s shape', () => {
    const target = parseTarget({
      name: 'gcp',
      kind: 'gcp',
      gcp: { provider: PROVIDER },
      broker: { access_boundary: [{ available_resource: '//storage.googleapis.com/projects/_/buckets/b', available_permissions: ['inRole:roles/storage.objectViewer'], availability_condition: { expression: "resource.name.startsWith('projects/_/buckets/b/objects/x')" } }] },
    });
    expect(target.broker).toMatchObject({
      accessBoundary: { accessBoundary: { accessBoundaryRules: [{ availableResource: '//storage.googleapis.com/projects/_/buckets/b', availablePermissions: ['inRole:roles/storage.objectViewer'], availabilityCondition: { expression: "resource.name.startsWith('projects/_/buckets/b/objects/x')" } }] } },
    });
  });

  it('an azure broker: defaults, and its CA from ca_file', () => {
    const caFile = join(dir, 'ca.pem');
    writeFileSync(caFile, PEM);
    const target = parseTarget({ name: 'azure', kind: 'azure', broker: { tenant_id: TENANT, client_id: APP, ca_file: caFile } });
    expect(target.broker).toEqual({ cloud: 'azure', tenantId: TENANT, clientId: APP, authorityHost: 'https://login.microsoftonline.com', scopes: ['https://management.azure.com/.default'], ca: PEM.trimEnd(), timeoutSeconds: 10 });
  });

  it.each([
    ['a broker on a vault target', { name: 'v', kind: 'vault', audience: 'vault', broker: {} }, 'targets[0].broker: found a broker on a vault target, expected one only on aws, gcp and azure targets'],
    ['a gcp broker without a provider', { name: 'g', kind: 'gcp', audience: 'x', broker: {} }, 'targets[0].gcp.provider: missing, expected the workload identity pool provider the broker exchanges the token at'],
    ['a gcp service account that is not one', { name: 'g', kind: 'gcp', gcp: { provider: PROVIDER }, broker: { service_account: 'me@example.com' } }, 'targets[0].broker.service_account: found "me@example.com", expected a service account email such as deploy@my-project.iam.gserviceaccount.com'],
    ['a gcp scope that is not Google\'s', { name: 'g', kind: 'gcp', gcp: { provider: PROVIDER }, broker: { scopes: ['openid'] } }, 'targets[0].broker.scopes[0]: found "openid", expected a Google OAuth scope such as https://www.googleapis.com/auth/cloud-platform'],
    ['a gcp lifetime over 12 hours', { name: 'g', kind: 'gcp', gcp: { provider: PROVIDER }, broker: { lifetime_seconds: 50_000 } }, 'targets[0].broker.lifetime_seconds: found 50000, expected an integer in 60..43200'],
    ['a gcp boundary rule without inRole:', { name: 'g', kind: 'gcp', gcp: { provider: PROVIDER }, broker: { access_boundary: [{ available_resource: 'x', available_permissions: ['roles/viewer'] }] } }, 'targets[0].broker.access_boundary[0].available_permissions[0]: found "roles/viewer", expected inRole:roles/<role>'],
    ['a plain-http gcp token_url', { name: 'g', kind: 'gcp', gcp: { provider: PROVIDER }, broker: { token_url: 'http://sts.internal/v1/token' } }, 'targets[0].broker.token_url: found "http://sts.internal/v1/token", expected an https:// URL (http:// only with dev.allow_insecure_http: true)'],
    ['an azure client id that is not a GUID', { name: 'a', kind: 'azure', broker: { tenant_id: TENANT, client_id: 'app' } }, 'targets[0].broker.client_id: found "app", expected the application (client) id, a GUID'],
    ['an azure authority on http', { name: 'a', kind: 'azure', broker: { tenant_id: TENANT, client_id: APP, authority_host: 'http://login.example.com' } }, 'targets[0].broker.authority_host: found "http://login.example.com", expected an https:// origin such as https://login.microsoftonline.com (no path, query or credentials)'],
    ['an azure scope that is not .default', { name: 'a', kind: 'azure', broker: { tenant_id: TENANT, client_id: APP, scopes: ['User.Read'] } }, 'targets[0].broker.scopes[0]: found "User.Read", expected a resource\'s .default scope such as https://management.azure.com/.default'],
    ['an azure ca that is not PEM', { name: 'a', kind: 'azure', broker: { tenant_id: TENANT, client_id: APP, ca: 'not a cert' } }, "targets[0].broker.ca: found no PEM certificate, expected the CA certificates that sign the authority host's TLS certificate (ca_file: PATH)"],
    ['an aws key on an azure broker', { name: 'a', kind: 'azure', broker: { tenant_id: TENANT, client_id: APP, role_arn: 'arn:aws:iam::123456789012:role/x' } }, 'targets[0].broker: unknown key "role_arn"; allowed keys: tenant_id, client_id, authority_host, scopes, ca, timeout_seconds'],
    ['an aws broker without a role', { name: 'w', kind: 'aws', broker: { region: 'eu-west-1' } }, 'targets[0].broker.role_arn: missing, expected a role ARN such as arn:aws:iam::123456789012:role/deploy'],
  ])('%s is refused, naming the setting', (_name, target, problem) => {
    expect(problemsOf(target)).toContain(problem);
  });
});
