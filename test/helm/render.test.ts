/**
 * The chart rendered by a real Helm (see helm.ts for where it comes from), for the default values, the
 * production example and the other modes; every rendered object validated as a Kubernetes object
 * (kubernetes-models' OpenAPI validators), and the gateway file in the ConfigMap validated by the
 * gateway's own configuration loader with the environment the Deployment would give it.
 */
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { Ingress } from 'kubernetes-models/networking.k8s.io/v1/Ingress';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Pod } from 'kubernetes-models/v1/Pod';
import { Service } from 'kubernetes-models/v1/Service';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import { ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { execForm, finalStage, readDockerfile } from '../deploy/dockerfile.js';
import { EXAMPLE_VALUES } from './chart.js';
import { lintChart, locateHelm, renderChart, renderError, renderNotes, type K8sObject, type RenderInput } from './helm.js';

const helm = locateHelm();
const NO_HELM = 'no Helm binary (HELM_BIN, helm on PATH, or `npx tsx scripts/fetch-helm.ts`): the chart rendering tests are SKIPPED';
if (!helm) console.warn(`test/helm/render.test.ts: ${NO_HELM}`);

/**
 * Stands in for `describe` without Helm. A skipped describe's body still runs when vitest collects it,
 * and these bodies render the chart, so the suite is not declared at all; one skipped entry says why.
 */
function skippedWithoutHelm(name: string, _suite: () => void): void {
  it.skip(`${name}: ${NO_HELM}`, () => {});
}

/** One validating model per kind the chart may render; anything else is a test failure. */
const MODELS: Record<string, new (data: never) => { validate(): void }> = {
  'v1/ConfigMap': ConfigMap,
  'v1/Pod': Pod,
  'v1/Service': Service,
  'v1/ServiceAccount': ServiceAccount,
  'apps/v1/Deployment': Deployment,
  'networking.k8s.io/v1/Ingress': Ingress,
  'networking.k8s.io/v1/NetworkPolicy': NetworkPolicy,
  'autoscaling/v2/HorizontalPodAutoscaler': HorizontalPodAutoscaler,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'monitoring.coreos.com/v1/ServiceMonitor': ServiceMonitor,
};

// Loose shapes of the rendered objects, for reading them in assertions.
interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { secretKeyRef?: { name: string; key: string; optional?: boolean } };
}
interface Container {
  name: string;
  image: string;
  args: string[];
  ports: { name: string; containerPort: number }[];
  env: EnvVar[];
  securityContext: Record<string, unknown> & { capabilities?: { drop?: string[]; add?: string[] }; seccompProfile?: { type: string } };
  startupProbe: { httpGet: { path: string; port: string } };
  livenessProbe: { httpGet: { path: string; port: string } };
  readinessProbe: { httpGet: { path: string; port: string } };
  resources: { requests?: Record<string, string>; limits?: Record<string, string> };
  volumeMounts: { name: string; mountPath: string; readOnly?: boolean }[];
}
interface PodSpec {
  serviceAccountName: string;
  automountServiceAccountToken: boolean;
  enableServiceLinks: boolean;
  securityContext: Record<string, unknown> & { seccompProfile?: { type: string } };
  containers: Container[];
  volumes: { name: string; configMap?: { name: string }; secret?: { secretName: string; items?: { key: string; path: string }[] }; emptyDir?: { sizeLimit?: string } }[];
  topologySpreadConstraints?: { topologyKey: string; labelSelector?: { matchLabels: Record<string, string> } }[];
}
interface DeploymentShape {
  spec: { replicas?: number; selector: { matchLabels: Record<string, string> }; template: { metadata: { labels: Record<string, string>; annotations: Record<string, string> }; spec: PodSpec } };
}

function find(objects: K8sObject[], kind: string): K8sObject {
  const found = objects.filter((o) => o.kind === kind);
  expect(found, `one ${kind}`).toHaveLength(1);
  return found[0]!;
}

const deploymentOf = (objects: K8sObject[]) => find(objects, 'Deployment') as unknown as DeploymentShape;
const containerOf = (objects: K8sObject[]) => deploymentOf(objects).spec.template.spec.containers[0]!;
const gatewayYaml = (objects: K8sObject[]) => (find(objects, 'ConfigMap') as unknown as { data: Record<string, string> }).data['gateway.yaml']!;
const checksumOf = (objects: K8sObject[]) => deploymentOf(objects).spec.template.metadata.annotations['checksum/config'];

/** What each secret would hold: values of the right shape, so the gateway's validation is meaningful. */
const FAKE_SECRET_VALUES: Record<string, string> = {
  REDIS_URL: 'rediss://:not-a-real-password@redis.example.internal:6380/0',
  STSGATE_ENCRYPTION_KEY: Buffer.alloc(32, 7).toString('base64'),
};

/** The environment the container gets, with every Secret reference replaced by a stand-in value. */
function containerEnvironment(container: Container): Record<string, string> {
  const env: Record<string, string> = {};
  for (const item of container.env) {
    if (item.value !== undefined) env[item.name] = item.value;
    else if (item.valueFrom?.secretKeyRef) env[item.name] = FAKE_SECRET_VALUES[item.name] ?? `stand-in-for-${item.valueFrom.secretKeyRef.name}/${item.valueFrom.secretKeyRef.key}`;
  }
  return env;
}

/** Every `${VAR}` placeholder in the gateway file (`${VAR:-default}` included). */
function placeholders(text: string): string[] {
  return [...text.matchAll(/(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-[^}]*)?\}/g)].map((m) => m[1]!);
}

function expectValidKubernetesObjects(objects: K8sObject[]): void {
  expect(objects.length).toBeGreaterThan(0);
  for (const object of objects) {
    const Model = MODELS[`${object.apiVersion}/${object.kind}`];
    expect(Model, `a model for ${object.apiVersion} ${object.kind}`).toBeDefined();
    expect(() => new Model!(object as never).validate(), `${object.kind} ${object.metadata.name}`).not.toThrow();
    expect(object.metadata.namespace, `${object.kind} namespace`).toBe('stsgate');
    expect(object.metadata.name).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
  }
}

/** The hardening the issue asks for, as rendered. */
function expectHardenedPod(objects: K8sObject[]): void {
  const pod = deploymentOf(objects).spec.template.spec;
  const container = containerOf(objects);
  expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
  expect(pod.securityContext.runAsUser).toBeGreaterThan(0);
  expect(container.securityContext).toMatchObject({ runAsNonRoot: true, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, seccompProfile: { type: 'RuntimeDefault' } });
  expect(container.securityContext.capabilities?.drop).toEqual(['ALL']);
  expect(container.securityContext.capabilities?.add).toBeUndefined();
  expect(container.securityContext.runAsUser).toBeGreaterThan(0);
  expect(pod.automountServiceAccountToken).toBe(false);
  expect(pod.enableServiceLinks).toBe(false);

  expect(container.startupProbe.httpGet).toEqual({ path: '/healthz', port: 'http' });
  expect(container.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'http' });
  expect(container.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'http' });
  expect(container.ports).toEqual([
    { name: 'http', containerPort: 8080, protocol: 'TCP' },
    { name: 'metrics', containerPort: 9090, protocol: 'TCP' },
  ]);
  expect(container.resources.requests).toMatchObject({ cpu: expect.any(String), memory: expect.any(String) });
  expect(container.resources.limits).toMatchObject({ memory: expect.any(String) });

  // The only writable path is the /tmp emptyDir; the configuration is mounted read-only.
  const tmp = container.volumeMounts.find((m) => m.mountPath === '/tmp');
  expect(pod.volumes.find((v) => v.name === tmp?.name)?.emptyDir).toBeDefined();
  for (const mount of container.volumeMounts.filter((m) => m.mountPath !== '/tmp')) expect(mount.readOnly, mount.mountPath).toBe(true);
  expect(container.volumeMounts).toContainEqual({ name: 'config', mountPath: '/etc/stsgate', readOnly: true });

  expect(checksumOf(objects)).toMatch(/^[a-f0-9]{64}$/);
  expect(pod.topologySpreadConstraints?.length).toBeGreaterThan(0);
  for (const constraint of pod.topologySpreadConstraints ?? []) {
    expect(constraint.labelSelector?.matchLabels).toEqual(deploymentOf(objects).spec.selector.matchLabels);
  }
}

/** Secrets only by reference: every secret-looking variable comes from a Secret, the file holds placeholders. */
function expectSecretsByReference(objects: K8sObject[]): void {
  expect(objects.map((o) => o.kind)).not.toContain('Secret');
  const container = containerOf(objects);
  for (const item of container.env) {
    if (/SECRET|PASSWORD|ENCRYPTION|TOKEN|KEY/.test(item.name)) {
      expect(item.value, `${item.name} must come from a Secret`).toBeUndefined();
      expect(item.valueFrom?.secretKeyRef, item.name).toBeDefined();
    }
  }
  const visit = (node: unknown, path: string): void => {
    if (Array.isArray(node)) node.forEach((item, i) => visit(item, `${path}[${i}]`));
    else if (node && typeof node === 'object') for (const [k, v] of Object.entries(node)) visit(v, path ? `${path}.${k}` : k);
    else if (/(secret|password|encryption_key)$/.test(path)) expect(node, path).toMatch(/^\$\{[A-Z_][A-Z0-9_]*\}$/);
  };
  visit(parseYaml(gatewayYaml(objects)), '');
}

/** The gateway file validated by the gateway's own loader, in the environment the pod would have. */
function gatewayConfigOf(objects: K8sObject[]) {
  const text = gatewayYaml(objects);
  const env = containerEnvironment(containerOf(objects));
  for (const name of placeholders(text)) expect(Object.keys(env), `\${${name}} in gateway.yaml needs an env var`).toContain(name);
  return parseConfig(text, env, '/etc/stsgate', 'gateway.yaml (rendered)');
}

const SHARED = {
  'signing.existingSecret': 'stsgate-signing',
  'encryptionKey.existingSecret': 'stsgate-encryption',
};

(helm ? describe : skippedWithoutHelm)('the chart rendered by Helm', () => {
  const render = (input: RenderInput = {}) => renderChart(helm!, input);

  it.each<[string, RenderInput]>([
    ['default values', {}],
    ['the production example', { valuesFiles: [EXAMPLE_VALUES] }],
  ])('helm lint --strict passes with %s', (_name, input) => {
    const run = lintChart(helm!, input);
    expect(run.stderr + run.stdout).toContain('1 chart(s) linted, 0 chart(s) failed');
    expect(run.ok).toBe(true);
  });

  describe('default values', () => {
    const objects = render();

    it('renders a ConfigMap, Deployment, NetworkPolicy, Service, ServiceAccount and the helm test Pod, nothing optional', () => {
      expect(objects.map((o) => o.kind).sort()).toEqual(['ConfigMap', 'Deployment', 'NetworkPolicy', 'Pod', 'Service', 'ServiceAccount']);
    });

    it('renders valid Kubernetes objects', () => expectValidKubernetesObjects(objects));

    it('runs one hardened pod', () => {
      expect(deploymentOf(objects).spec.replicas).toBe(1);
      expectHardenedPod(objects);
    });

    it('takes no secret (there is none to take) and inlines none', () => {
      expect(containerOf(objects).env.map((e) => e.name)).toEqual(['NODE_ENV', 'STSGATE_LOG_LEVEL']);
      expectSecretsByReference(objects);
    });

    it('writes a gateway file the gateway accepts: in-memory store, listening on 0.0.0.0:8080, metrics and admin on 9090', () => {
      const config = gatewayConfigOf(objects);
      expect(config.store.kind).toBe('memory');
      expect(config.listen).toEqual({ host: '0.0.0.0', port: 8080, trustedProxies: [] });
      expect(config.admin).toEqual({ listen: { host: '0.0.0.0', port: 9090 }, metricsOnPublicPort: false });
      expect(config.signing.keysFile).toBeUndefined();
    });

    it('runs the image as built: the Dockerfile CMD, EXPOSE and USER', () => {
      const runtime = finalStage(readDockerfile());
      const cmd = runtime.find((i) => i.keyword === 'CMD');
      expect(containerOf(objects).args).toEqual(execForm(cmd!.args));
      expect(runtime.find((i) => i.keyword === 'EXPOSE')?.args).toBe(containerOf(objects).ports.map((p) => p.containerPort).join(' '));
      const [uid, gid] = runtime.find((i) => i.keyword === 'USER')!.args.split(':').map(Number);
      expect(deploymentOf(objects).spec.template.spec.securityContext).toMatchObject({ runAsUser: uid, runAsGroup: gid });
    });
  });

  describe('the production example', () => {
    const objects = render({ valuesFiles: [EXAMPLE_VALUES] });
    const container = containerOf(objects);
    const labels = deploymentOf(objects).spec.template.metadata.labels;
    const service = find(objects, 'Service') as unknown as { metadata: { name: string; labels: Record<string, string> }; spec: { selector: Record<string, string>; ports: { name: string }[] } };

    it('renders every optional object, each a valid Kubernetes object', () => {
      expect(objects.map((o) => o.kind).sort()).toEqual([
        'ConfigMap', 'Deployment', 'HorizontalPodAutoscaler', 'Ingress', 'NetworkPolicy', 'Pod', 'PodDisruptionBudget', 'Service', 'ServiceAccount', 'ServiceMonitor',
      ]);
      expectValidKubernetesObjects(objects);
    });

    it('trusts the proxies (the Ingress controller) in front of the pods, by address, for client addresses', () => {
      expect(gatewayConfigOf(objects).listen.trustedProxies).toEqual(['10.0.0.0/8']);
    });

    it('runs hardened pods, their number left to the autoscaler (min 3)', () => {
      expectHardenedPod(objects);
      expect(deploymentOf(objects).spec.replicas).toBeUndefined();
      const hpa = find(objects, 'HorizontalPodAutoscaler') as unknown as { spec: { minReplicas: number; maxReplicas: number; scaleTargetRef: { kind: string; name: string } } };
      expect(hpa.spec.minReplicas).toBe(3);
      expect(hpa.spec.scaleTargetRef).toMatchObject({ kind: 'Deployment', name: find(objects, 'Deployment').metadata.name });
    });

    it('takes every secret by reference from the existing Secrets', () => {
      expectSecretsByReference(objects);
      const refs = Object.fromEntries(container.env.filter((e) => e.valueFrom).map((e) => [e.name, e.valueFrom!.secretKeyRef]));
      expect(refs).toEqual({
        REDIS_URL: { name: 'stsgate-redis', key: 'redis-url' },
        STSGATE_ENCRYPTION_KEY: { name: 'stsgate-encryption', key: 'encryption-key' },
        GITHUB_CLIENT_SECRET: { name: 'stsgate-oauth', key: 'github-client-secret' },
      });
    });

    it('mounts the signing keys Secret where the gateway file points, as a directory (rotation reaches the pod)', () => {
      const config = gatewayConfigOf(objects);
      const pod = deploymentOf(objects).spec.template.spec;
      const volume = pod.volumes.find((v) => v.secret?.secretName === 'stsgate-signing');
      const mount = container.volumeMounts.find((m) => m.name === volume?.name);
      expect(mount?.readOnly).toBe(true);
      expect(config.signing.keysFile).toBe(`${mount!.mountPath}/${volume!.secret!.items![0]!.path}`);
      expect(mount).not.toHaveProperty('subPath');
    });

    it('writes a gateway file the gateway accepts: the Redis store, shared keys, the GitHub Actions issuer', () => {
      const config = gatewayConfigOf(objects);
      expect(config.store).toMatchObject({ kind: 'standalone', url: FAKE_SECRET_VALUES.REDIS_URL, prefix: 'stsgate:' });
      expect(config.encryptionKey?.length).toBe(32);
      expect(config.issuers.map((i) => i.issuer)).toEqual(['https://token.actions.githubusercontent.com']);
      expect(config.publicUrl).toBe('https://sts.example.com');
    });

    it('routes the Ingress (with TLS) to the Service port by name', () => {
      const ingress = find(objects, 'Ingress') as unknown as {
        spec: { ingressClassName: string; tls: { secretName: string; hosts: string[] }[]; rules: { host: string; http: { paths: { backend: { service: { name: string; port: { name: string } } } }[] } }[] };
      };
      expect(ingress.spec.tls).toEqual([{ secretName: 'stsgate-tls', hosts: ['sts.example.com'] }]);
      expect(ingress.spec.rules[0]!.host).toBe(new URL(gatewayConfigOf(objects).publicUrl).host);
      const backend = ingress.spec.rules[0]!.http.paths[0]!.backend.service;
      expect(backend.name).toBe(service.metadata.name);
      expect(service.spec.ports.map((p) => p.name)).toContain(backend.port.name);
      // Metrics and the admin API stay inside the cluster.
      for (const rule of ingress.spec.rules) for (const path of rule.http.paths) expect(path.backend.service.port).toEqual({ name: 'http' });
      expect(service.spec.selector).toEqual(deploymentOf(objects).spec.selector.matchLabels);
    });

    it('keeps two pods through voluntary disruptions', () => {
      const pdb = find(objects, 'PodDisruptionBudget') as unknown as { spec: { minAvailable: number; selector: { matchLabels: Record<string, string> } } };
      expect(pdb.spec.minAvailable).toBe(2);
      expect(labels).toMatchObject(pdb.spec.selector.matchLabels);
    });

    it('scrapes /metrics on the Service\'s metrics port (to the container\'s metrics port) by a ServiceMonitor that selects the Service', () => {
      const monitor = find(objects, 'ServiceMonitor') as unknown as { metadata: { labels: Record<string, string> }; spec: { selector: { matchLabels: Record<string, string> }; endpoints: { port: string; path: string }[] } };
      expect(monitor.spec.endpoints).toEqual([expect.objectContaining({ port: 'metrics', path: '/metrics' })]);
      expect(service.metadata.labels).toMatchObject(monitor.spec.selector.matchLabels);
      expect(service.spec.ports).toContainEqual({ name: 'metrics', port: 9090, targetPort: 'metrics', protocol: 'TCP' });
      expect(container.ports.map((p) => p.name)).toContain('metrics');
      expect(gatewayConfigOf(objects).admin?.listen).toEqual({ host: '0.0.0.0', port: 9090 });
      expect(monitor.metadata.labels.release).toBe('kube-prometheus-stack');
    });

    it('limits traffic: in to port http, to port metrics from the monitoring namespace only, out to DNS, Redis and HTTPS only', () => {
      const policy = find(objects, 'NetworkPolicy') as unknown as {
        spec: { podSelector: { matchLabels: Record<string, string> }; policyTypes: string[]; ingress: { ports: { port: string | number }[]; from?: unknown[] }[]; egress: { ports: { port: number; protocol: string }[] }[] };
      };
      expect(labels).toMatchObject(policy.spec.podSelector.matchLabels);
      expect(policy.spec.policyTypes).toEqual(['Ingress', 'Egress']);
      expect(policy.spec.ingress).toHaveLength(2);
      expect(policy.spec.ingress[0]!.ports).toEqual([{ port: 'http', protocol: 'TCP' }]);
      expect(policy.spec.ingress[0]!.from).toEqual([{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'ingress-nginx' } } }]);
      expect(policy.spec.ingress[1]!.ports).toEqual([{ port: 'metrics', protocol: 'TCP' }]);
      expect(policy.spec.ingress[1]!.from).toEqual([{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } }]);
      const egress = policy.spec.egress.flatMap((rule) => rule.ports.map((p) => `${p.port}/${p.protocol}`)).sort();
      expect(egress).toEqual(['443/TCP', '53/TCP', '53/UDP', '6380/TCP']);
    });
  });

  describe('Redis Sentinel', () => {
    const objects = render({
      setJson: {
        ...SHARED,
        'redis.existingSecret': 'stsgate-redis',
        'redis.existingSecretKey': 'redis-password',
        'redis.sentinel': { enabled: true, masterName: 'primary', sentinels: [{ host: 'sentinel-0.redis', port: 26379 }, { host: 'sentinel-1.redis', port: 26379 }], sentinelPasswordKey: 'sentinel-password', db: 2, tls: true },
        replicaCount: 3,
      },
    });

    it('renders valid objects with the passwords from the Secret', () => {
      expectValidKubernetesObjects(objects);
      expectSecretsByReference(objects);
      const refs = Object.fromEntries(containerOf(objects).env.filter((e) => e.valueFrom).map((e) => [e.name, e.valueFrom!.secretKeyRef]));
      expect(refs).toMatchObject({
        REDIS_PASSWORD: { name: 'stsgate-redis', key: 'redis-password' },
        REDIS_SENTINEL_PASSWORD: { name: 'stsgate-redis', key: 'sentinel-password' },
      });
      expect(refs).not.toHaveProperty('REDIS_URL');
    });

    it('writes a Sentinel store the gateway accepts', () => {
      const config = gatewayConfigOf(objects);
      expect(config.store).toMatchObject({
        kind: 'sentinel',
        name: 'primary',
        sentinels: [{ host: 'sentinel-0.redis', port: 26379 }, { host: 'sentinel-1.redis', port: 26379 }],
        password: 'stand-in-for-stsgate-redis/redis-password',
        sentinelPassword: 'stand-in-for-stsgate-redis/sentinel-password',
        db: 2,
        tls: true,
      });
      expect(deploymentOf(objects).spec.replicas).toBe(3);
    });
  });

  describe('a plain Redis URL (no password)', () => {
    const objects = render({ setJson: { ...SHARED, 'redis.url': 'redis://redis-master.redis:6379/0', replicaCount: 2 } });

    it('passes it as a plain variable, which the gateway accepts', () => {
      expect(containerOf(objects).env).toContainEqual({ name: 'REDIS_URL', value: 'redis://redis-master.redis:6379/0' });
      expect(gatewayConfigOf(objects).store).toMatchObject({ kind: 'standalone', url: 'redis://redis-master.redis:6379/0' });
    });
  });

  describe('checksum/config', () => {
    const base = checksumOf(render());

    it('is stable for the same values', () => expect(checksumOf(render())).toBe(base));

    it('changes when the gateway file changes, so the pods roll', () => {
      expect(checksumOf(render({ setJson: { 'config.public_url': 'https://sts2.example.com' } }))).not.toBe(base);
      expect(checksumOf(render({ setJson: SHARED }))).not.toBe(base);
    });

    it('stays when only the pod changes (no needless roll of the config)', () => {
      expect(checksumOf(render({ setJson: { logLevel: 'debug', terminationGracePeriodSeconds: 60 } }))).toBe(base);
    });
  });

  describe('other values', () => {
    it('pulls by digest when one is set', () => {
      const digest = `sha256:${'a'.repeat(64)}`;
      expect(containerOf(render({ setJson: { 'image.digest': digest, 'image.repository': 'registry.example.com/stsgate' } })).image).toBe(`registry.example.com/stsgate@${digest}`);
    });

    it('drains on SIGTERM within the pod\'s termination grace period', () => {
      const objects = render();
      const config = gatewayConfigOf(objects);
      expect(config.shutdown).toEqual({ delaySeconds: 5, graceSeconds: 10 });
      const pod = deploymentOf(objects).spec.template.spec as PodSpec & { terminationGracePeriodSeconds: number };
      expect(pod.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(config.shutdown!.delaySeconds + config.shutdown!.graceSeconds);
      expect(config.workers).toBe(1);
    });

    it('keeps a labelSelector given in a topology spread constraint', () => {
      const custom = { matchLabels: { team: 'identity' } };
      const pod = deploymentOf(render({ setJson: { topologySpreadConstraints: [{ maxSkew: 2, topologyKey: 'zone', whenUnsatisfiable: 'DoNotSchedule', labelSelector: custom }] } })).spec.template.spec;
      expect(pod.topologySpreadConstraints).toEqual([{ maxSkew: 2, topologyKey: 'zone', whenUnsatisfiable: 'DoNotSchedule', labelSelector: custom }]);
    });

    it('opens the metrics port to no one by default', () => {
      const policy = find(render(), 'NetworkPolicy') as unknown as { spec: { ingress: { ports: { port: string }[] }[] } };
      expect(policy.spec.ingress.flatMap((r) => r.ports.map((p) => p.port))).toEqual(['http']);
    });

    it('mounts the admin token Secret as a file the gateway reads as admin.token_file', () => {
      const objects = render({ setJson: { 'admin.existingSecret': 'stsgate-admin' } });
      expectSecretsByReference(objects);
      const pod = deploymentOf(objects).spec.template.spec;
      const container = containerOf(objects);
      const volume = pod.volumes.find((v) => v.secret?.secretName === 'stsgate-admin');
      const mount = container.volumeMounts.find((m) => m.name === volume?.name);
      expect(mount?.readOnly).toBe(true);
      expect(volume!.secret!.items).toEqual([{ key: 'admin-token', path: 'admin-token' }]);
      expect(container.env.map((e) => e.name)).not.toContain('ADMIN_TOKEN');
      // The gateway reads the file at start: here a stand-in for the mounted Secret.
      const dir = mkdtempSync(join(tmpdir(), 'stsgate-admin-'));
      try {
        writeFileSync(join(dir, 'admin-token'), `${'t'.repeat(44)}\n`);
        const text = gatewayYaml(objects);
        expect(text).toContain(`token_file: ${mount!.mountPath}/admin-token`);
        const config = parseConfig(text.replace(`${mount!.mountPath}/`, `${dir}/`), containerEnvironment(container), '/etc/stsgate');
        expect(config.admin?.token).toBe('t'.repeat(44));
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('renders no NetworkPolicy when disabled, and no Redis egress without Redis', () => {
      expect(render({ setJson: { 'networkPolicy.enabled': false } }).map((o) => o.kind)).not.toContain('NetworkPolicy');
      const policy = find(render(), 'NetworkPolicy') as unknown as { spec: { egress: { ports: { port: number }[] }[] } };
      expect(policy.spec.egress.flatMap((r) => r.ports.map((p) => p.port))).not.toContain(6379);
    });

    it('uses a maxUnavailable PDB when given one', () => {
      const pdb = find(render({ setJson: { 'podDisruptionBudget.enabled': true, 'podDisruptionBudget.maxUnavailable': '25%' } }), 'PodDisruptionBudget') as unknown as { spec: Record<string, unknown> };
      expect(pdb.spec.maxUnavailable).toBe('25%');
      expect(pdb.spec).not.toHaveProperty('minAvailable');
    });
  });

  describe('NOTES.txt', () => {
    it('warns about every development-only default', () => {
      const notes = renderNotes(helm!);
      expect(notes).toContain('port-forward service/stsgate 8080:80');
      expect(notes).toMatch(/WARNING: the in-memory store/);
      expect(notes).toMatch(/WARNING: no signing.existingSecret/);
      expect(notes).toMatch(/WARNING: no encryptionKey.existingSecret/);
      expect(notes).toMatch(/WARNING: config.public_url is still an example/);
    });

    it('warns about nothing for a production install but a mismatched host', () => {
      const notes = renderNotes(helm!, { valuesFiles: [EXAMPLE_VALUES], setJson: { 'config.public_url': 'https://sts.acme.dev', 'ingress.hosts': [{ host: 'sts.acme.dev', paths: [{ path: '/', pathType: 'Prefix' }] }] } });
      expect(notes).toContain('Public URL (the `iss` of every token): https://sts.acme.dev');
      expect(notes).toContain('Ingress hosts: sts.acme.dev');
      expect(notes).not.toContain('WARNING');
      const mismatched = renderNotes(helm!, { valuesFiles: [EXAMPLE_VALUES], setJson: { 'config.public_url': 'https://login.acme.dev' } });
      expect(mismatched).toMatch(/WARNING: the host of config.public_url \(login.acme.dev\) is not one of the Ingress hosts/);
    });
  });

  // One row per refused set of values: what Helm must say. Schema refusals and the chart's own `fail`s.
  it.each<[string, Record<string, unknown>, string]>([
    ['negative replicas', { replicaCount: -1 }, "values don't meet the specifications of the schema"],
    ['an unknown top-level key', { replicaCont: 3 }, "values don't meet the specifications of the schema"],
    ['replicas as a string', { replicaCount: 'three' }, "values don't meet the specifications of the schema"],
    ['a password in redis.url', { 'redis.url': 'redis://:hunter2@redis:6379' }, "values don't meet the specifications of the schema"],
    ['config.listen', { 'config.listen': { port: 9000 } }, "values don't meet the specifications of the schema"],
    ['config.admin.listen', { 'config.admin': { listen: { port: 9000 } } }, "values don't meet the specifications of the schema"],
    ['an admin token in the ConfigMap', { 'config.admin': { token: 'x'.repeat(44) } }, "values don't meet the specifications of the schema"],
    ['a ServiceMonitor the NetworkPolicy would block', { 'serviceMonitor.enabled': true }, 'needs networkPolicy.metricsFrom'],
    ['several pods on the in-memory store', { replicaCount: 3 }, 'need a shared store'],
    ['autoscaling on the in-memory store', { 'autoscaling.enabled': true }, 'need a shared store'],
    ['Redis without shared keys', { 'redis.url': 'redis://redis:6379' }, 'they must share keys'],
    ['Redis without a shared encryption key', { 'redis.url': 'redis://redis:6379', 'signing.existingSecret': 's' }, 'they must share keys'],
    ['a URL in two places', { ...SHARED, 'redis.url': 'redis://redis:6379', 'redis.existingSecret': 'r' }, 'redis.url and redis.existingSecret are both set'],
    ['Sentinel with a URL', { ...SHARED, 'redis.url': 'redis://redis:6379', 'redis.sentinel.enabled': true, 'redis.sentinel.sentinels': [{ host: 's', port: 26379 }] }, 'Sentinel mode takes'],
    ['config.store next to redis.*', { ...SHARED, 'redis.url': 'redis://redis:6379', 'config.store': { memory: {} } }, 'configure the store in one place'],
    ['keys_file next to signing.existingSecret', { ...SHARED, 'config.signing': { keys_file: '/x' } }, 'config.signing.keys_file is set by the chart'],
    ['encryption_key next to encryptionKey.existingSecret', { ...SHARED, 'config.credentials': { encryption_key: '${K}' } }, 'config.credentials.encryption_key is set by the chart'],
    ['a Sentinel password key without the Secret', { 'redis.sentinel.sentinelPasswordKey': 'p' }, 'redis.existingSecret, which is empty'],
    ['a termination grace period shorter than the drain', { terminationGracePeriodSeconds: 12 }, 'shorter than config.shutdown.delay_seconds + grace_seconds (15)'],
    ['a secretEnv name the chart sets', { secretEnv: [{ name: 'REDIS_URL', existingSecret: 's', existingSecretKey: 'k' }] }, 'REDIS_URL is set by the chart'],
  ])('refuses %s', (_name, setJson, message) => {
    expect(renderError(helm!, { setJson })).toContain(message);
  });
});
