import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ScaledObject } from '@kubernetes-models/keda/keda.sh/v1alpha1';
import { Deployment, type IDeployment } from 'kubernetes-models/apps/v1';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { ConfigMap, Namespace, Secret, Service } from 'kubernetes-models/v1';
import { expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { ApiConfig } from '../../apps/api/src/config.js';
import { WorkerConfig } from '../../apps/worker/src/config.js';

// The Kubernetes manifests in deploy/k8s, checked offline: there is no cluster here. Each object is
// validated against the JSON schema of its kind that the kubernetes-models packages ship (the
// Kubernetes 1.27 OpenAPI and KEDA's CRD), then the properties that make askq run well are asserted
// by name: those schemas, like the API server's, accept unknown fields, so a misspelt probe would
// otherwise pass unnoticed.

const root = join(import.meta.dirname, '../..');
const dir = join(root, 'deploy/k8s');

interface Manifest {
  apiVersion: string;
  kind: string;
  metadata?: { name?: string; namespace?: string };
}

const yamlFiles = readdirSync(dir)
  .filter((file) => /\.ya?ml$/.test(file))
  .sort();

function parseFile(file: string): unknown[] {
  const docs = parseAllDocuments(readFileSync(join(dir, file), 'utf8'));
  return Array.from(docs, (doc) => {
    if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors[0]!.message}`);
    return doc.toJS() as unknown;
  }).filter((value) => value !== null);
}

const kustomization = parseFile('kustomization.yaml')[0] as {
  namespace?: string;
  resources?: string[];
};
const manifests = yamlFiles
  .filter((file) => file !== 'kustomization.yaml')
  .flatMap((file) => parseFile(file).map((object) => ({ file, object: object as Manifest })));
const objects = manifests.map((m) => m.object);

// Every kind these manifests may use. Any other kind fails the test instead of going unchecked.
const MODELS = [
  Namespace,
  ConfigMap,
  Secret,
  Service,
  Deployment,
  HorizontalPodAutoscaler,
  PodDisruptionBudget,
  ScaledObject,
];

/** The schema's complaint about an object, or undefined when it is valid. */
function schemaError(object: Manifest): string | undefined {
  const model = MODELS.find((m) => m.apiVersion === object.apiVersion && m.kind === object.kind);
  if (!model) return `no schema for ${object.apiVersion} ${object.kind}`;
  try {
    new model(object as never).validate();
    return undefined;
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
}

function one<T extends Manifest>(guard: (value: unknown) => value is T, name: string): T {
  const found = objects.filter(guard).filter((o) => o.metadata?.name === name);
  expect(found, `${name}`).toHaveLength(1);
  return found[0]!;
}

const deployments = objects.filter(Deployment.is);

function container(deployment: IDeployment) {
  const containers = deployment.spec!.template.spec!.containers;
  expect(containers).toHaveLength(1);
  return containers[0]!;
}

/** What the process sees: the ConfigMap and Secret it loads, then its own `env`, which wins. */
function environment(deployment: IDeployment): Record<string, string> {
  const c = container(deployment);
  const env: Record<string, string> = {};
  for (const source of c.envFrom ?? []) {
    if (source.configMapRef) Object.assign(env, one(ConfigMap.is, source.configMapRef.name!).data);
    if (source.secretRef) Object.assign(env, one(Secret.is, source.secretRef.name!).stringData);
  }
  for (const variable of c.env ?? []) env[variable.name] = variable.value ?? '';
  return env;
}

/** True when every label of the selector is on the Deployment's pods. */
function selects(selector: Record<string, string> | undefined, deployment: IDeployment): boolean {
  const labels = deployment.spec!.template.metadata?.labels ?? {};
  return (
    selector !== undefined &&
    Object.keys(selector).length > 0 &&
    Object.entries(selector).every(([key, value]) => labels[key] === value)
  );
}

it('every manifest is valid against the schema of its kind', () => {
  const problems = manifests.flatMap(({ file, object }) => {
    const error = schemaError(object);
    return error ? [`${file}: ${object.kind} ${object.metadata?.name}: ${error}`] : [];
  });
  expect(problems).toEqual([]);
  expect(objects.map((o) => `${o.kind}/${o.metadata?.name}`).sort()).toEqual([
    'ConfigMap/askq-config',
    'Deployment/askq-api',
    'Deployment/askq-worker',
    'HorizontalPodAutoscaler/askq-api',
    'Namespace/askq',
    'PodDisruptionBudget/askq-api',
    'PodDisruptionBudget/askq-worker',
    'ScaledObject/askq-worker',
    'Secret/askq-secrets',
    'Service/askq-api',
  ]);
});

it('the schema check rejects broken manifests', () => {
  // A valid Deployment with a string replica count and a probe without its port.
  const api = structuredClone(one(Deployment.is, 'askq-api'));
  api.spec!.replicas = 'two' as unknown as number;
  container(api).readinessProbe!.httpGet = { path: '/readyz' } as never;
  const error = schemaError(api);
  expect(error).toMatch(/replicas must be integer/);
  expect(error).toMatch(/readinessProbe\/httpGet must have required property port/);

  // KEDA trigger metadata is a map of strings: an unquoted threshold is an error.
  const scaler = structuredClone(one(ScaledObject.is, 'askq-worker'));
  scaler.spec.triggers[0]!.metadata.threshold = 50 as unknown as string;
  expect(schemaError(scaler)).toMatch(/threshold must be string/);

  expect(schemaError({ apiVersion: 'apps/v1', kind: 'Deploymnet' })).toMatch(/no schema/);
});

it('kustomization.yaml lists every manifest, and every file it lists exists', () => {
  const resources = kustomization.resources ?? [];
  expect(resources.filter((file) => !existsSync(join(dir, file)))).toEqual([]);
  expect([...resources].sort()).toEqual(yamlFiles.filter((file) => file !== 'kustomization.yaml'));
  expect(kustomization.namespace).toBe('askq');
  // Also right when applied without kustomize.
  const namespaced = objects.filter((o) => o.kind !== 'Namespace');
  expect(namespaced.filter((o) => o.metadata?.namespace !== 'askq')).toEqual([]);
});

it('each Deployment runs its entry point and probes endpoints its process serves', () => {
  const expected: Record<string, { main: string; source: string; ready: string; live: string }> = {
    'askq-api': {
      main: 'apps/api/src/main.ts',
      source: 'apps/api/src/routes/health.ts',
      ready: '/readyz',
      live: '/healthz',
    },
    'askq-worker': {
      main: 'apps/worker/src/main.ts',
      source: 'apps/worker/src/metrics-server.ts',
      ready: '/readyz',
      live: '/healthz',
    },
  };
  expect(deployments.map((d) => d.metadata!.name).sort()).toEqual(Object.keys(expected));
  for (const deployment of deployments) {
    const want = expected[deployment.metadata!.name!]!;
    const c = container(deployment);
    expect(c.command).toEqual(['node', '--import', 'tsx', want.main]);
    expect(existsSync(join(root, want.main))).toBe(true);

    const served = readFileSync(join(root, want.source), 'utf8');
    const ports = (c.ports ?? []).flatMap((p) => [p.name, p.containerPort]);
    for (const [probe, path] of [
      [c.readinessProbe, want.ready],
      [c.livenessProbe, want.live],
    ] as const) {
      expect(probe?.httpGet?.path).toBe(path);
      expect(ports).toContain(probe!.httpGet!.port);
      expect(served).toContain(`'${path}'`);
    }

    // Requests for the schedulers and autoscalers, limits against a runaway process.
    for (const bound of [c.resources?.requests, c.resources?.limits]) {
      expect(Object.keys(bound ?? {}).sort()).toEqual(['cpu', 'memory']);
    }
    expect(deployment.spec!.template.spec!.securityContext?.runAsNonRoot).toBe(true);
    // An autoscaler owns the count: a replicas field would reset it on every apply.
    expect(deployment.spec!.replicas).toBeUndefined();
  }
});

it('grace periods outlast the graceful stops they wrap', () => {
  const api = one(Deployment.is, 'askq-api');
  const apiEnv = environment(api);
  const preStop = container(api).lifecycle?.preStop?.exec?.command ?? [];
  const pauseMs = preStop[0] === 'sleep' ? Number(preStop[1]) * 1000 : 0;
  expect(api.spec!.template.spec!.terminationGracePeriodSeconds! * 1000).toBeGreaterThan(
    pauseMs + Number(apiEnv.SHUTDOWN_TIMEOUT_MS),
  );

  // A worker finishes or hands back its running questions on SIGTERM: SIGKILL must not come
  // first, whether a question runs to JOB_TIMEOUT_MS or the drain to SHUTDOWN_TIMEOUT_MS.
  const worker = one(Deployment.is, 'askq-worker');
  const workerEnv = environment(worker);
  const workerGraceMs = worker.spec!.template.spec!.terminationGracePeriodSeconds! * 1000;
  expect(workerGraceMs).toBeGreaterThan(Number(workerEnv.JOB_TIMEOUT_MS));
  expect(workerGraceMs).toBeGreaterThan(Number(workerEnv.SHUTDOWN_TIMEOUT_MS));
});

it("each Deployment's environment is a valid configuration of its process", () => {
  const schemas = { 'askq-api': ApiConfig, 'askq-worker': WorkerConfig } as const;
  const known = new Set([...Object.keys(ApiConfig.shape), ...Object.keys(WorkerConfig.shape)]);
  for (const deployment of deployments) {
    const env = environment(deployment);
    const name = deployment.metadata!.name as keyof typeof schemas;
    // The same parser the process runs at start, so a bad value fails here, not in the cluster.
    expect(schemas[name].safeParse(env).error?.issues ?? []).toEqual([]);
    // A misspelt variable would be silently ignored by the process.
    expect(Object.keys(env).filter((key) => !known.has(key))).toEqual([]);
  }
  expect(Object.keys(one(Secret.is, 'askq-secrets').stringData ?? {}).sort()).toEqual([
    'ADMIN_API_KEY',
    'API_KEYS',
    'EMBEDDINGS_API_KEY',
    'LLM_API_KEY',
  ]);
  // Secrets stay out of the ConfigMap.
  const configMap = one(ConfigMap.is, 'askq-config');
  expect(
    Object.keys(configMap.data ?? {}).filter((key) => /KEY|SECRET|PASSWORD/.test(key)),
  ).toEqual([]);
});

it('the Service, autoscalers and disruption budgets select existing Deployments', () => {
  const api = one(Deployment.is, 'askq-api');
  const service = one(Service.is, 'askq-api');
  expect(selects(service.spec!.selector, api)).toBe(true);
  const apiPorts = (container(api).ports ?? []).map((p) => p.name);
  expect(service.spec!.ports!.map((p) => p.targetPort)).toEqual(['http']);
  expect(apiPorts).toContain('http');
  // Any replica serves any event stream (it is read from Redis): no stickiness needed.
  expect(service.spec!.sessionAffinity ?? 'None').toBe('None');

  for (const pdb of objects.filter(PodDisruptionBudget.is)) {
    const matched = deployments.filter((d) => selects(pdb.spec!.selector!.matchLabels, d));
    expect(matched.map((d) => d.metadata!.name)).toEqual([pdb.metadata!.name]);
    expect(pdb.spec!.minAvailable).toBe(1);
  }

  // One autoscaler per Deployment: the HPA for the API, KEDA (which makes its own HPA) for workers.
  const hpa = one(HorizontalPodAutoscaler.is, 'askq-api');
  const scaler = one(ScaledObject.is, 'askq-worker');
  const targets = [hpa.spec!.scaleTargetRef, scaler.spec.scaleTargetRef];
  expect(targets.map((t) => [t.kind, t.name])).toEqual([
    ['Deployment', 'askq-api'],
    ['Deployment', 'askq-worker'],
  ]);
  expect([hpa.spec!.minReplicas, hpa.spec!.maxReplicas]).toEqual([2, 10]);
  expect(hpa.spec!.metrics!.map((m) => m.resource?.name)).toEqual(['cpu']);
  // CPU utilization is measured against the request: without one the HPA cannot work.
  expect(container(api).resources?.requests?.cpu).toBeDefined();
});

it('KEDA scales the workers on waiting jobs, counting each queue once', () => {
  const scaler = one(ScaledObject.is, 'askq-worker');
  expect([scaler.spec.minReplicaCount, scaler.spec.maxReplicaCount]).toEqual([2, 20]);
  const [trigger, ...more] = scaler.spec.triggers;
  expect(more).toEqual([]);
  expect(trigger!.type).toBe('prometheus');
  const { query, threshold, serverAddress } = trigger!.metadata;
  expect(query).toMatch(/askq_queue_jobs\{[^}]*state="waiting"[^}]*\}/);
  // The API and every worker report the same queues: a plain sum would grow with the pod count.
  expect(query).toMatch(/max by \(queue\)/);
  expect(Number(threshold)).toBeGreaterThan(0);
  expect(() => new URL(serverAddress!)).not.toThrow();
  // The metric the query reads is the one askq exports.
  const metrics = readFileSync(join(root, 'packages/shared/src/metrics.ts'), 'utf8');
  expect(metrics).toContain("name: 'askq_queue_jobs'");
});
