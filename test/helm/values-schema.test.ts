/** values.schema.json (draft-07, as Helm applies it): the shipped values pass, bad values are refused. */
import { Ajv, type ErrorObject } from 'ajv';
import { describe, expect, it } from 'vitest';
import { EXAMPLE_VALUES, CHART_DIR, loadYamlFile, readChartFile } from './chart.js';
import { join } from 'node:path';

const schema = JSON.parse(readChartFile('values.schema.json')) as Record<string, unknown>;
const ajv = new Ajv({ allErrors: true, strict: true, strictRequired: false, allowUnionTypes: true });
const validate = ajv.compile(schema);
const defaults = loadYamlFile(join(CHART_DIR, 'values.yaml'));

/** Helm merges user values over the defaults (maps deeply, lists replaced) before it checks the schema. */
function mergeValues(base: unknown, override: unknown): unknown {
  if (isObject(base) && isObject(override)) {
    const out: Record<string, unknown> = { ...base };
    for (const [key, value] of Object.entries(override)) out[key] = key in base ? mergeValues(base[key], value) : value;
    return out;
  }
  return override;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function errorsOf(values: unknown): ErrorObject[] {
  return validate(values) ? [] : [...(validate.errors ?? [])];
}

const describeErrors = (errors: ErrorObject[]) => errors.map((e) => `${e.instancePath || '/'} ${e.message}`).join('; ');

describe('values.schema.json', () => {
  it('is a draft-07 schema that refuses unknown top-level keys', () => {
    expect(schema.$schema).toBe('http://json-schema.org/draft-07/schema#');
    expect(schema.additionalProperties).toBe(false);
  });

  it('accepts values.yaml', () => {
    expect(describeErrors(errorsOf(defaults))).toBe('');
  });

  it('accepts the production example merged over the defaults', () => {
    const merged = mergeValues(defaults, loadYamlFile(EXAMPLE_VALUES));
    expect(describeErrors(errorsOf(merged))).toBe('');
  });

  it('accepts every extension value (labels, env, volumes, containers, configFrom, configCheck)', () => {
    const extended = {
      commonLabels: { team: 'identity', 'example.com/cost-centre': 'cc-42', empty: '' },
      podLabels: { 'sidecar.istio.io/inject': 'false' },
      envFrom: [{ configMapRef: { name: 'tuning' } }, { secretRef: { name: 'idp', optional: true }, prefix: 'IDP_' }],
      extraVolumes: [{ name: 'ca', configMap: { name: 'ca-bundle' } }],
      extraVolumeMounts: [{ name: 'ca', mountPath: '/etc/ssl/ca', readOnly: true, subPath: 'ca.crt' }],
      initContainers: [{ name: 'wait', image: 'busybox:1.36', command: ['true'] }],
      extraContainers: [{ name: 'shipper', image: 'fluent/fluent-bit:3.0' }],
      configFrom: { existingSecret: 'stsgate-gateway', existingKey: 'gateway.yaml' },
      configCheck: { initContainer: false, helmTest: false },
    };
    expect(describeErrors(errorsOf(mergeValues(defaults, extended)))).toBe('');
  });

  // One row per refused value: the override (merged over the defaults) and the path the error names.
  it.each<[string, Record<string, unknown>, string]>([
    ['negative replicas', { replicaCount: -1 }, '/replicaCount'],
    ['replicas as a string', { replicaCount: '3' }, '/replicaCount'],
    ['unknown top-level key (a typo)', { replicaCont: 3 }, '/'],
    ['unknown key in a chart-owned section', { redis: { urll: 'redis://r:6379' } }, '/redis'],
    ['image tag as a number', { image: { tag: 1.2 } }, '/image/tag'],
    ['malformed digest', { image: { digest: 'sha256:abc' } }, '/image/digest'],
    ['unknown pull policy', { image: { pullPolicy: 'Sometimes' } }, '/image/pullPolicy'],
    ['a password in redis.url', { redis: { url: 'redis://:hunter2@redis:6379/0' } }, '/redis/url'],
    ['a user and password in redis.url', { redis: { url: 'rediss://default:hunter2@redis:6380' } }, '/redis/url'],
    ['not a redis URL', { redis: { url: 'http://redis:6379' } }, '/redis/url'],
    ['Sentinel enabled with no Sentinels', { redis: { sentinel: { enabled: true } } }, '/redis/sentinel/sentinels'],
    ['Sentinel port out of range', { redis: { sentinel: { sentinels: [{ host: 's', port: 70000 }] } } }, '/redis/sentinel/sentinels/0/port'],
    ['trustedProxies as a hop count (the old form)', { trustedProxies: 1 }, '/trustedProxies'],
    ['trustedProxies naming a host', { trustedProxies: ['ingress.internal'] }, '/trustedProxies/0'],
    ['config.listen (owned by the chart)', { config: { listen: { port: 9090 } } }, '/config'],
    ['account_id as a number', { config: { account_id: 123456789012 } }, '/config/account_id'],
    ['account_id of 11 digits', { config: { account_id: '12345678901' } }, '/config/account_id'],
    ['public_url that is not a URL', { config: { public_url: 'sts.example.com' } }, '/config/public_url'],
    ['runAsNonRoot turned off (pod)', { podSecurityContext: { runAsNonRoot: false } }, '/podSecurityContext/runAsNonRoot'],
    ['root user', { securityContext: { runAsUser: 0 } }, '/securityContext/runAsUser'],
    ['writable root filesystem', { securityContext: { readOnlyRootFilesystem: false } }, '/securityContext/readOnlyRootFilesystem'],
    ['privilege escalation', { securityContext: { allowPrivilegeEscalation: true } }, '/securityContext/allowPrivilegeEscalation'],
    ['an added capability', { securityContext: { capabilities: { drop: ['ALL'], add: ['NET_ADMIN'] } } }, '/securityContext/capabilities/add'],
    ['capabilities not dropped', { securityContext: { capabilities: { drop: ['NET_RAW'] } } }, '/securityContext/capabilities/drop'],
    ['unconfined seccomp', { podSecurityContext: { seccompProfile: { type: 'Unconfined' } } }, '/podSecurityContext/seccompProfile/type'],
    ['secretEnv item without its key', { secretEnv: [{ name: 'X', existingSecret: 's' }] }, '/secretEnv/0'],
    ['secretEnv with an inline value', { secretEnv: [{ name: 'X', existingSecret: 's', existingSecretKey: 'k', value: 'hunter2' }] }, '/secretEnv/0'],
    ['secretEnv name that is no variable name', { secretEnv: [{ name: 'MY-VAR', existingSecret: 's', existingSecretKey: 'k' }] }, '/secretEnv/0/name'],
    ['existingSecret that is no Secret name', { signing: { existingSecret: 'Signing_Keys' } }, '/signing/existingSecret'],
    ['service port 0', { service: { port: 0 } }, '/service/port'],
    ['service type ExternalName', { service: { type: 'ExternalName' } }, '/service/type'],
    ['autoscaling as a string', { autoscaling: { enabled: 'true' } }, '/autoscaling/enabled'],
    ['PDB minAvailable as a word', { podDisruptionBudget: { minAvailable: 'two' } }, '/podDisruptionBudget/minAvailable'],
    ['CPU target above 100%', { autoscaling: { targetCPUUtilizationPercentage: 150 } }, '/autoscaling/targetCPUUtilizationPercentage'],
    ['scrape interval without a unit', { serviceMonitor: { interval: '30' } }, '/serviceMonitor/interval'],
    ['memory limit that is no quantity', { resources: { limits: { memory: 'lots' } } }, '/resources/limits/memory'],
    ['ingress path without a leading slash', { ingress: { hosts: [{ host: 'h', paths: [{ path: 'x', pathType: 'Prefix' }] }] } }, '/ingress/hosts/0/paths/0/path'],
    ['log level that does not exist', { logLevel: 'verbose' }, '/logLevel'],
    ['a commonLabels value with a space', { commonLabels: { team: 'identity team' } }, '/commonLabels/team'],
    ['a commonLabels value of 64 characters', { commonLabels: { team: 'a'.repeat(64) } }, '/commonLabels/team'],
    ['a commonLabels key that is no label key', { commonLabels: { 'team name': 'x' } }, '/commonLabels'],
    ['configFrom with an unknown key (a typo)', { configFrom: { existingConfigmap: 'x' } }, '/configFrom'],
    ['configFrom.existingSecret that is no Secret name', { configFrom: { existingSecret: 'Gateway_File' } }, '/configFrom/existingSecret'],
    ['configFrom.existingKey empty', { configFrom: { existingKey: '' } }, '/configFrom/existingKey'],
    ['configCheck.initContainer as a string', { configCheck: { initContainer: 'false' } }, '/configCheck/initContainer'],
    ['configCheck with an unknown key', { configCheck: { enabled: false } }, '/configCheck'],
    ['an envFrom item with no source', { envFrom: [{ prefix: 'X_' }] }, '/envFrom/0'],
    ['an envFrom item with two sources', { envFrom: [{ configMapRef: { name: 'a' }, secretRef: { name: 'b' } }] }, '/envFrom/0'],
    ['an envFrom secretRef without a name', { envFrom: [{ secretRef: { optional: true } }] }, '/envFrom/0/secretRef'],
    ['an extra volume without a name', { extraVolumes: [{ emptyDir: {} }] }, '/extraVolumes/0'],
    ['an extra volume name that is no DNS label', { extraVolumes: [{ name: 'CA_Bundle', emptyDir: {} }] }, '/extraVolumes/0/name'],
    ['a relative mount path', { extraVolumeMounts: [{ name: 'ca', mountPath: 'etc/ssl' }] }, '/extraVolumeMounts/0/mountPath'],
    ['a mount with a misspelt key', { extraVolumeMounts: [{ name: 'ca', mountPath: '/etc/ssl', readonly: true }] }, '/extraVolumeMounts/0'],
    ['an init container without an image', { initContainers: [{ name: 'wait' }] }, '/initContainers/0'],
    ['a sidecar without a name', { extraContainers: [{ image: 'busybox' }] }, '/extraContainers/0'],
  ])('refuses %s', (_name, override, path) => {
    const errors = errorsOf(mergeValues(defaults, override));
    expect(errors.length, 'expected the schema to refuse these values').toBeGreaterThan(0);
    expect(errors.map((e) => e.instancePath || '/')).toContain(path);
  });
});
