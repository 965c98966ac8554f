/**
 * The chart's extension points, rendered by a real Helm (helm.ts): commonLabels / podLabels, extraEnv /
 * envFrom, extraVolumes / extraVolumeMounts, initContainers, extraContainers (dex's and oauth2-proxy's
 * conventions), the gateway file from an existing ConfigMap or Secret (configFrom), and `stsgate
 * check-config` as an init container and as a `helm test` pod, run here against the rendered file.
 */
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { Pod } from 'kubernetes-models/v1/Pod';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { checkConfigCommand } from '../../src/commands/check-config.js';
import { generateSigningJwk } from '../../src/credentials/signing-keys.js';

/** Where the chart mounts the signing keys Secret (the production example's signing.keys_file). */
const MOUNTED_KEYS_FILE = '/var/run/secrets/stsgate/signing/keys.json';
import { EXAMPLE_VALUES } from './chart.js';
import { lintChart, locateHelm, renderChart, renderError, renderNotes, type K8sObject, type RenderInput } from './helm.js';

const helm = locateHelm();
const NO_HELM = 'no Helm binary (HELM_BIN, helm on PATH, or `npx tsx scripts/fetch-helm.ts`): the chart rendering tests are SKIPPED';

/** As in render.test.ts: without Helm the suite is not declared (its body renders), one skipped entry says why. */
function skippedWithoutHelm(name: string, _suite: () => void): void {
  it.skip(`${name}: ${NO_HELM}`, () => {});
}

// Loose shapes of the rendered objects, for reading them in assertions.
interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { secretKeyRef?: { name: string; key: string } };
}
interface Container {
  name: string;
  image: string;
  imagePullPolicy?: string;
  args?: string[];
  env?: EnvVar[];
  envFrom?: unknown[];
  securityContext?: Record<string, unknown>;
  resources?: Record<string, unknown>;
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
}
interface Volume {
  name: string;
  configMap?: { name: string; items?: { key: string; path: string }[] };
  secret?: { secretName: string; defaultMode?: number; items?: { key: string; path: string }[] };
  [source: string]: unknown;
}
interface PodSpec {
  serviceAccountName: string;
  automountServiceAccountToken: boolean;
  restartPolicy?: string;
  securityContext: Record<string, unknown>;
  initContainers?: Container[];
  containers: Container[];
  volumes: Volume[];
}
interface DeploymentShape {
  metadata: { labels: Record<string, string> };
  spec: { selector: { matchLabels: Record<string, string> }; template: { metadata: { labels: Record<string, string>; annotations?: Record<string, string> }; spec: PodSpec } };
}
interface PodShape {
  metadata: { name: string; labels: Record<string, string>; annotations: Record<string, string> };
  spec: PodSpec;
}

const kinds = (objects: K8sObject[]) => objects.map((o) => o.kind).sort();

function only(objects: K8sObject[], kind: string): K8sObject {
  const found = objects.filter((o) => o.kind === kind);
  expect(found, `one ${kind}`).toHaveLength(1);
  return found[0]!;
}

const deploymentOf = (objects: K8sObject[]) => only(objects, 'Deployment') as unknown as DeploymentShape;
const podSpecOf = (objects: K8sObject[]) => deploymentOf(objects).spec.template.spec;
const gatewayOf = (objects: K8sObject[]) => podSpecOf(objects).containers.find((c) => c.name === 'stsgate')!;
const initCheckOf = (objects: K8sObject[]) => podSpecOf(objects).initContainers?.find((c) => c.name === 'check-config');
const testPodOf = (objects: K8sObject[]) => only(objects, 'Pod') as unknown as PodShape;
const gatewayYaml = (objects: K8sObject[]) => (only(objects, 'ConfigMap') as unknown as { data: Record<string, string> }).data['gateway.yaml']!;

/** The Deployment and the test Pod, validated against the Kubernetes OpenAPI schemas. */
function expectValidPods(objects: K8sObject[]): void {
  expect(() => new Deployment(only(objects, 'Deployment') as never).validate()).not.toThrow();
  const pods = objects.filter((o) => o.kind === 'Pod');
  for (const pod of pods) expect(() => new Pod(pod as never).validate()).not.toThrow();
}

/** The environment a container gets, with every Secret reference replaced by a stand-in of the right shape. */
function environmentOf(container: Container): Record<string, string> {
  const env: Record<string, string> = {};
  for (const item of container.env ?? []) {
    if (item.value !== undefined) env[item.name] = item.value;
    else if (item.name === 'REDIS_URL') env[item.name] = 'rediss://:stand-in@redis.example.internal:6380/0';
    else if (item.name === 'STSGATE_ENCRYPTION_KEY') env[item.name] = Buffer.alloc(32, 7).toString('base64');
    else if (item.valueFrom?.secretKeyRef) env[item.name] = `stand-in-for-${item.valueFrom.secretKeyRef.name}`;
  }
  return env;
}

const SHARED = { 'signing.existingSecret': 'stsgate-signing', 'encryptionKey.existingSecret': 'stsgate-encryption' };
const CA_VOLUME = { name: 'corporate-ca', configMap: { name: 'corporate-ca-bundle' } };
const CA_MOUNT = { name: 'corporate-ca', mountPath: '/etc/ssl/corporate', readOnly: true };
const WAIT_FOR_REDIS = { name: 'wait-for-redis', image: 'busybox:1.36', command: ['sh', '-c', 'until nc -z redis 6379; do sleep 1; done'] };
const SIDECAR = { name: 'log-shipper', image: 'fluent/fluent-bit:3.0', resources: { limits: { memory: '64Mi' } } };
const ENV_FROM = [{ configMapRef: { name: 'stsgate-tuning' } }, { secretRef: { name: 'stsgate-provider-secrets', optional: true }, prefix: 'IDP_' }];

/** Every extension value at once. */
const EXTENDED: Record<string, unknown> = {
  commonLabels: { team: 'identity', 'example.com/cost-centre': 'cc-42' },
  podLabels: { 'sidecar.istio.io/inject': 'false' },
  extraEnv: [{ name: 'NODE_EXTRA_CA_CERTS', value: '/etc/ssl/corporate/ca.crt' }],
  envFrom: ENV_FROM,
  extraVolumes: [CA_VOLUME],
  extraVolumeMounts: [CA_MOUNT],
  initContainers: [WAIT_FOR_REDIS],
  extraContainers: [SIDECAR],
};

(helm ? describe : skippedWithoutHelm)('the chart\'s extension points, rendered by Helm', () => {
  const render = (input: RenderInput = {}) => renderChart(helm!, input);

  it.each<[string, RenderInput]>([
    ['every extension value', { setJson: EXTENDED }],
    ['every extension value with the production example', { valuesFiles: [EXAMPLE_VALUES], setJson: EXTENDED }],
    ['the gateway file from an existing ConfigMap', { setJson: { 'configFrom.existingConfigMap': 'stsgate-gateway' } }],
    ['the gateway file from an existing Secret, checks off', { setJson: { 'configFrom.existingSecret': 'stsgate-gateway', 'configCheck.initContainer': false, 'configCheck.helmTest': false } }],
  ])('helm lint --strict passes with %s', (_name, input) => {
    const run = lintChart(helm!, input);
    expect(run.stderr + run.stdout).toContain('1 chart(s) linted, 0 chart(s) failed');
    expect(run.ok).toBe(true);
  });

  describe('commonLabels and podLabels', () => {
    const objects = render({ valuesFiles: [EXAMPLE_VALUES], setJson: { commonLabels: EXTENDED.commonLabels, podLabels: EXTENDED.podLabels } });
    const common = { team: 'identity', 'example.com/cost-centre': 'cc-42' };

    it('puts commonLabels on every object, the pod template and the helm test pod included', () => {
      expect(kinds(objects)).toEqual(['ConfigMap', 'Deployment', 'HorizontalPodAutoscaler', 'Ingress', 'NetworkPolicy', 'Pod', 'PodDisruptionBudget', 'Service', 'ServiceAccount', 'ServiceMonitor']);
      for (const object of objects) expect(object.metadata.labels, `${object.kind} labels`).toMatchObject(common);
      expect(deploymentOf(objects).spec.template.metadata.labels).toMatchObject(common);
    });

    it('puts podLabels on the gateway pods only', () => {
      expect(deploymentOf(objects).spec.template.metadata.labels['sidecar.istio.io/inject']).toBe('false');
      for (const object of objects) expect(object.metadata.labels, `${object.kind} labels`).not.toHaveProperty('sidecar.istio.io/inject');
    });

    it('keeps them out of every selector', () => {
      const selector = { 'app.kubernetes.io/name': 'stsgate', 'app.kubernetes.io/instance': 'rel' };
      expect(deploymentOf(objects).spec.selector.matchLabels).toEqual(selector);
      expect((only(objects, 'Service') as unknown as { spec: { selector: unknown } }).spec.selector).toEqual(selector);
      expect((only(objects, 'NetworkPolicy') as unknown as { spec: { podSelector: { matchLabels: unknown } } }).spec.podSelector.matchLabels).toEqual(selector);
      expect((only(objects, 'PodDisruptionBudget') as unknown as { spec: { selector: { matchLabels: unknown } } }).spec.selector.matchLabels).toEqual(selector);
      expect((only(objects, 'ServiceMonitor') as unknown as { spec: { selector: { matchLabels: unknown } } }).spec.selector.matchLabels).toEqual(selector);
    });
  });

  describe('extraEnv, envFrom, extraVolumes, extraVolumeMounts, initContainers, extraContainers', () => {
    const objects = render({ valuesFiles: [EXAMPLE_VALUES], setJson: EXTENDED });
    const pod = podSpecOf(objects);
    const gateway = gatewayOf(objects);

    it('renders a valid Deployment and test Pod', () => expectValidPods(objects));

    it('adds extraEnv after the chart\'s variables, and envFrom as given', () => {
      expect(gateway.env!.map((e) => e.name)).toEqual(['NODE_ENV', 'STSGATE_LOG_LEVEL', 'REDIS_URL', 'STSGATE_ENCRYPTION_KEY', 'GITHUB_CLIENT_SECRET', 'NODE_EXTRA_CA_CERTS']);
      expect(gateway.env!.at(-1)).toEqual({ name: 'NODE_EXTRA_CA_CERTS', value: '/etc/ssl/corporate/ca.crt' });
      expect(gateway.envFrom).toEqual(ENV_FROM);
    });

    it('adds the volume to the pod and its mount to the gateway container, after the chart\'s own', () => {
      expect(pod.volumes.map((v) => v.name)).toEqual(['config', 'signing-keys', 'tmp', 'corporate-ca']);
      expect(pod.volumes.at(-1)).toEqual(CA_VOLUME);
      expect(gateway.volumeMounts!.map((m) => m.name)).toEqual(['config', 'signing-keys', 'tmp', 'corporate-ca']);
      expect(gateway.volumeMounts!.at(-1)).toEqual(CA_MOUNT);
    });

    it('runs the initContainers first, then check-config', () => {
      expect(pod.initContainers!.map((c) => c.name)).toEqual(['wait-for-redis', 'check-config']);
      expect(pod.initContainers![0]).toEqual(WAIT_FOR_REDIS);
    });

    it('adds the extraContainers after the gateway container', () => {
      expect(pod.containers.map((c) => c.name)).toEqual(['stsgate', 'log-shipper']);
      expect(pod.containers[1]).toEqual(SIDECAR);
    });

    it('gives check-config (init container and test pod) the gateway\'s image, environment, mounts and security context', () => {
      for (const check of [initCheckOf(objects)!, testPodOf(objects).spec.containers[0]!]) {
        expect(check.name).toBe('check-config');
        expect(check.image).toBe(gateway.image);
        expect(check.imagePullPolicy).toBe(gateway.imagePullPolicy);
        expect(check.args).toEqual(['check-config', '--config', '/etc/stsgate/gateway.yaml']);
        expect(check.env).toEqual(gateway.env);
        expect(check.envFrom).toEqual(ENV_FROM);
        expect(check.volumeMounts).toEqual(gateway.volumeMounts);
        expect(check.securityContext).toEqual(gateway.securityContext);
        expect(check.resources).toEqual(gateway.resources);
      }
      expect(testPodOf(objects).spec.volumes).toEqual(pod.volumes);
    });
  });

  describe('check-config', () => {
    afterEach(() => vi.unstubAllEnvs());

    /** Runs the command the init container runs, on the rendered file, in the init container's environment. */
    async function runInitCheck(objects: K8sObject[]): Promise<{ code: number; output: string[] }> {
      const check = initCheckOf(objects)!;
      const configPath = check.args![2]!;
      expect(check.volumeMounts).toContainEqual({ name: 'config', mountPath: '/etc/stsgate', readOnly: true });
      expect(configPath).toBe('/etc/stsgate/gateway.yaml');
      for (const [name, value] of Object.entries(environmentOf(check))) vi.stubEnv(name, value);
      const dir = mkdtempSync(join(tmpdir(), 'stsgate-check-'));
      try {
        const file = join(dir, 'gateway.yaml');
        // The signing keys Secret the pod mounts is stood in for by a keys file of the same shape here.
        const keysFile = join(dir, 'keys.json');
        writeFileSync(keysFile, JSON.stringify({ keys: [await generateSigningJwk('ES256')] }), { mode: 0o600 });
        writeFileSync(file, gatewayYaml(objects).replaceAll(MOUNTED_KEYS_FILE, keysFile));
        const output: string[] = [];
        const code = await checkConfigCommand(file, (line) => output.push(line));
        return { code, output };
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }

    it('is on by default: the last init container, and a helm test pod', () => {
      const objects = render();
      expect(podSpecOf(objects).initContainers!.map((c) => c.name)).toEqual(['check-config']);
      const pod = testPodOf(objects);
      expect(pod.metadata.name).toBe('rel-stsgate-check-config');
      expect(pod.metadata.annotations).toEqual({ 'helm.sh/hook': 'test', 'helm.sh/hook-delete-policy': 'before-hook-creation' });
      expect(pod.spec.restartPolicy).toBe('Never');
      expect(pod.spec.serviceAccountName).toBe(podSpecOf(objects).serviceAccountName);
      expect(pod.spec.automountServiceAccountToken).toBe(false);
      expect(pod.spec.securityContext).toEqual(podSpecOf(objects).securityContext);
      expect(pod.spec.containers).toEqual([initCheckOf(objects)]);
      expect(pod.spec.volumes).toEqual(podSpecOf(objects).volumes);
      expectValidPods(objects);
    });

    it('keeps the test pod out of the Service: it lacks the selector\'s app.kubernetes.io/name', () => {
      const objects = render();
      const labels = testPodOf(objects).metadata.labels;
      expect(labels['app.kubernetes.io/component']).toBe('helm-test');
      expect(labels['app.kubernetes.io/instance']).toBe('rel');
      expect(labels).not.toHaveProperty('app.kubernetes.io/name');
    });

    it('can be turned off, each part on its own', () => {
      const noInit = render({ setJson: { 'configCheck.initContainer': false } });
      expect(podSpecOf(noInit)).not.toHaveProperty('initContainers');
      expect(kinds(noInit)).toContain('Pod');
      const noTest = render({ setJson: { 'configCheck.helmTest': false } });
      expect(kinds(noTest)).not.toContain('Pod');
      expect(initCheckOf(noTest)).toBeDefined();
      const userInitOnly = render({ setJson: { 'configCheck.initContainer': false, initContainers: [WAIT_FOR_REDIS] } });
      expect(podSpecOf(userInitOnly).initContainers).toEqual([WAIT_FOR_REDIS]);
    });

    it.each<[string, RenderInput, string]>([
      ['the default values', {}, 'no tests: cases to run'],
      ['the production example (its tests: cases run and pass)', { valuesFiles: [EXAMPLE_VALUES] }, 'tests: 2 passed, 0 failed'],
    ])('passes on %s, in the init container\'s environment', async (_name, input, last) => {
      const { code, output } = await runInitCheck(render(input));
      expect(output, output.join('\n')).toContainEqual(expect.stringMatching(/gateway\.yaml: valid \(/));
      expect(output.at(-1)).toBe(last);
      expect(code).toBe(0);
    });

    it('fails on a typo in the gateway file, naming it', async () => {
      const { code, output } = await runInitCheck(render({ setJson: { 'config.role': [] } }));
      expect(output).toContain('  (top level): unknown key "role"; did you mean "roles"?');
      expect(code).toBe(1);
    });

    it('fails on a ${VAR} placeholder that no variable of the pod fills', async () => {
      const { code, output } = await runInitCheck(render({ setJson: { 'config.providers': [{ id: 'github', use: 'github', client_id: 'Iv1.x', client_secret: '${GITHUB_CLIENT_SECRET}' }] } }));
      expect(output.join('\n')).toContain('GITHUB_CLIENT_SECRET');
      expect(code).toBe(1);
    });
  });

  describe('configFrom', () => {
    it('mounts an existing ConfigMap instead of rendering one', () => {
      const objects = render({ setJson: { 'configFrom.existingConfigMap': 'stsgate-gateway', 'configFrom.existingKey': 'stsgate.yaml' } });
      expect(kinds(objects)).toEqual(['Deployment', 'NetworkPolicy', 'Pod', 'Service', 'ServiceAccount']);
      const volume = { name: 'config', configMap: { name: 'stsgate-gateway', items: [{ key: 'stsgate.yaml', path: 'gateway.yaml' }] } };
      expect(podSpecOf(objects).volumes[0]).toEqual(volume);
      expect(testPodOf(objects).spec.volumes[0]).toEqual(volume);
      expect(gatewayOf(objects).volumeMounts![0]).toEqual({ name: 'config', mountPath: '/etc/stsgate', readOnly: true });
      expect(initCheckOf(objects)!.volumeMounts![0]).toEqual({ name: 'config', mountPath: '/etc/stsgate', readOnly: true });
      expect(gatewayOf(objects).args).toEqual(['serve', '--config', '/etc/stsgate/gateway.yaml']);
      // No checksum of a file the chart never reads.
      expect(deploymentOf(objects).spec.template.metadata).not.toHaveProperty('annotations');
      expectValidPods(objects);
    });

    it('mounts an existing Secret (0440) instead of rendering a ConfigMap', () => {
      const objects = render({ setJson: { 'configFrom.existingSecret': 'stsgate-gateway', podAnnotations: { team: 'identity' } } });
      expect(kinds(objects)).not.toContain('ConfigMap');
      expect(podSpecOf(objects).volumes[0]).toEqual({ name: 'config', secret: { secretName: 'stsgate-gateway', defaultMode: 0o440, items: [{ key: 'gateway.yaml', path: 'gateway.yaml' }] } });
      expect(deploymentOf(objects).spec.template.metadata.annotations).toEqual({ team: 'identity' });
    });

    it('leaves the file-reading checks to check-config: several pods render, and Redis egress stays open', () => {
      const objects = render({ setJson: { 'configFrom.existingConfigMap': 'stsgate-gateway', replicaCount: 3 } });
      expect((deploymentOf(objects).spec as unknown as { replicas: number }).replicas).toBe(3);
      const policy = only(objects, 'NetworkPolicy') as unknown as { spec: { egress: { ports: { port: number }[] }[] } };
      expect(policy.spec.egress.flatMap((rule) => rule.ports.map((p) => p.port))).toEqual([53, 53, 6379, 26379, 443]);
    });

    it('names the file in NOTES.txt instead of config.public_url, with no warning about config', () => {
      const notes = renderNotes(helm!, { setJson: { 'configFrom.existingSecret': 'stsgate-gateway' } });
      expect(notes).toContain('Gateway file: key gateway.yaml of Secret stsgate-gateway (yours; `config` is not used).');
      expect(notes).not.toContain('Public URL');
      expect(notes).not.toContain('WARNING');
      expect(notes).toContain('helm test stsgate --namespace stsgate --logs');
    });
  });

  // One row per refused set of values: what Helm must say.
  it.each<[string, Record<string, unknown>, string]>([
    ['a ConfigMap and a Secret for the gateway file', { 'configFrom.existingConfigMap': 'a', 'configFrom.existingSecret': 'b' }, 'configFrom.existingConfigMap and configFrom.existingSecret are both set'],
    ['a commonLabel the chart sets', { commonLabels: { 'app.kubernetes.io/name': 'other' } }, 'commonLabels.app.kubernetes.io/name is a label the chart sets'],
    ['a podLabel the chart sets', { podLabels: { 'app.kubernetes.io/instance': 'other' } }, 'podLabels.app.kubernetes.io/instance is a label the chart (or commonLabels) already sets'],
    ['a podLabel commonLabels sets', { commonLabels: { team: 'a' }, podLabels: { team: 'b' } }, 'podLabels.team is a label the chart (or commonLabels) already sets'],
    ['an extra volume named like the chart\'s', { extraVolumes: [{ name: 'config', emptyDir: {} }] }, 'extraVolumes: config is the name of a volume the chart mounts'],
    ['an init container named check-config', { initContainers: [{ name: 'check-config', image: 'busybox' }] }, 'check-config is the name of a container the chart runs'],
    ['a sidecar named stsgate', { extraContainers: [{ name: 'stsgate', image: 'busybox' }] }, 'stsgate is the name of a container the chart runs'],
    ['a relative mount path', { extraVolumeMounts: [{ name: 'x', mountPath: 'etc/x' }] }, "values don't meet the specifications of the schema"],
    ['an envFrom item with no source', { envFrom: [{ prefix: 'X_' }] }, "values don't meet the specifications of the schema"],
  ])('refuses %s', (_name, setJson, message) => {
    expect(renderError(helm!, { setJson })).toContain(message);
  });
});
