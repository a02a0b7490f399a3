import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { SERVICE_PORTS } from '@fleetwatch/config';
import { loadGatewayConfig } from '../../apps/api-gateway/src/config';
import { loadCollectorConfig } from '../../apps/collector/src/config';

// SPEC §10: deploy/ holds Kubernetes manifests with replicas, probes, resources and a migration job. Kept honest
// against the code and the Dockerfile: every service of SPEC §11 on its port with /healthz and /readyz probes,
// resources, the site's config and Secret, an image built from its Dockerfile target; the migration Job runs what the
// Dockerfile's migrate target runs; the kustomization lists every manifest.

const root = join(__dirname, '../..');
const dir = join(root, 'deploy/kubernetes/fleetwatch');
const dockerfile = readFileSync(join(root, 'deploy/docker/Dockerfile'), 'utf8');

interface Manifest {
  kind: string;
  metadata: { name: string };
  spec: Record<string, unknown>;
}
interface Container {
  name: string;
  image: string;
  command?: string[];
  envFrom?: Array<{ configMapRef?: { name: string }; secretRef?: { name: string } }>;
  env?: Array<{ name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string } } }>;
  ports?: Array<{ name: string; containerPort: number }>;
  livenessProbe?: { httpGet: { path: string; port: string | number } };
  readinessProbe?: { httpGet: { path: string; port: string | number } };
  startupProbe?: { httpGet: { path: string; port: string | number } };
  resources?: { requests?: { cpu?: string; memory?: string }; limits?: { memory?: string } };
  securityContext?: { allowPrivilegeEscalation?: boolean; capabilities?: { drop?: string[] } };
}
interface PodSpec {
  containers: Container[];
  enableServiceLinks?: boolean;
  securityContext?: { runAsNonRoot?: boolean };
  terminationGracePeriodSeconds?: number;
}

function manifests(file: string): Manifest[] {
  return parseAllDocuments(readFileSync(join(dir, file), 'utf8')).map((d) => {
    if (d.errors.length) throw new Error(`${file}: ${d.errors[0].message}`);
    return d.toJS() as Manifest;
  });
}
const podOf = (m: Manifest) => (m.spec['template'] as { spec: PodSpec }).spec;

/**
 * The environment a container gets, as the kubelet makes it: envFrom's keys (from `configMap`), then `env` in order —
 * a downward-API field from `pod`, a `value` with each `$(NAME)` of a variable defined before it expanded (one not
 * defined yet is left as written, as Kubernetes does).
 */
function containerEnv(
  container: Container,
  pod: Record<string, string>,
  configMap: Record<string, string> = {},
): Record<string, string> {
  const env: Record<string, string> = { ...configMap };
  for (const e of container.env ?? []) {
    if (e.valueFrom?.fieldRef) {
      const field = pod[e.valueFrom.fieldRef.fieldPath];
      if (field === undefined) throw new Error(`${e.name}: no pod field ${e.valueFrom.fieldRef.fieldPath} given`);
      env[e.name] = field;
    } else env[e.name] = (e.value ?? '').replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (m, n: string) => env[n] ?? m);
  }
  return env;
}

describe('deploy/kubernetes/fleetwatch', () => {
  const services = Object.entries(SERVICE_PORTS);

  it.each(services)(
    '%s: a Deployment on its SPEC §11 port, probed, with resources, config and Secret',
    (name, { port }) => {
      const all = manifests(`${name}.yaml`);
      const deployment = all.find((m) => m.kind === 'Deployment');
      expect(deployment?.metadata.name).toBe(name);
      expect(Number((deployment as Manifest).spec['replicas'])).toBeGreaterThanOrEqual(1);
      const pod = podOf(deployment as Manifest);
      expect(pod.securityContext?.runAsNonRoot).toBe(true);
      // Kubernetes sets COLLECTOR_PORT=tcp://10.…:3002 in every pod for a Service named collector (service links);
      // the services read their *_PORT variables as port numbers and would refuse to boot.
      expect(pod.enableServiceLinks).toBe(false);
      // Longer than the services' own shutdown timeout (8 s by default), so in-flight work finishes (SPEC §10).
      expect(pod.terminationGracePeriodSeconds ?? 30).toBeGreaterThan(8);
      const [container] = pod.containers;
      expect(container.image).toMatch(new RegExp(`^fleetwatch/${name}:`));
      expect(dockerfile).toMatch(new RegExp(`^FROM runtime AS ${name}$`, 'm'));
      expect(dockerfile).toMatch(new RegExp(`AS ${name}\\nEXPOSE ${port}\\n`));
      expect(container.ports).toEqual([{ name: 'http', containerPort: port }]);
      expect(container.livenessProbe?.httpGet).toEqual({ path: '/healthz', port: 'http' });
      expect(container.readinessProbe?.httpGet).toEqual({ path: '/readyz', port: 'http' });
      expect(container.resources?.requests?.cpu).toBeTruthy();
      expect(container.resources?.requests?.memory).toBeTruthy();
      expect(container.resources?.limits?.memory).toBeTruthy();
      expect(container.envFrom).toEqual([
        { configMapRef: { name: 'fleetwatch-config' } },
        { secretRef: { name: 'fleetwatch' } },
      ]);
      expect(container.securityContext).toMatchObject({
        allowPrivilegeEscalation: false,
        capabilities: { drop: ['ALL'] },
      });

      const service = all.find((m) => m.kind === 'Service');
      expect(service?.metadata.name).toBe(name); // the name deploy/prometheus/prometheus.yml scrapes
      expect(service?.spec['ports']).toEqual([{ name: 'http', port, targetPort: 'http' }]);
    },
  );

  it("the gateway reads the other services' versions at their Services, on their ports", () => {
    const deployment = manifests('api-gateway.yaml').find((m) => m.kind === 'Deployment') as Manifest;
    const value = podOf(deployment).containers[0].env?.find((e) => e.name === 'FLEETWATCH_COMPONENT_URLS')?.value;
    const expected = Object.fromEntries(
      services.filter(([name]) => name !== 'api-gateway').map(([name, { port }]) => [name, `http://${name}:${port}`]),
    );
    expect(loadGatewayConfig({ FLEETWATCH_COMPONENT_URLS: value }).componentUrls).toEqual(expected);
    // Each is a Service of this directory, on that port.
    for (const [name, url] of Object.entries(expected)) {
      const service = manifests(`${name}.yaml`).find((m) => m.kind === 'Service') as Manifest;
      expect(`http://${service.metadata.name}:${(service.spec['ports'] as Array<{ port: number }>)[0].port}`).toBe(url);
    }
  });

  it('the kustomization lists every manifest of the directory (but the example Secret) and every image', () => {
    const [kustomization] = manifests('kustomization.yaml') as unknown as Array<{
      resources: string[];
      images: Array<{ name: string }>;
    }>;
    const files = readdirSync(dir).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml');
    expect([...kustomization.resources].sort()).toEqual(files.filter((f) => f !== 'secret.example.yaml').sort());
    expect(kustomization.images.map((i) => i.name).sort()).toEqual(services.map(([n]) => `fleetwatch/${n}`).sort());
  });

  it('the config holds the variables SPEC §11 names that are not secrets; the example Secret the others', () => {
    const [config] = manifests('config.yaml') as unknown as Array<{ data: Record<string, string> }>;
    expect(Object.keys(config.data)).toEqual(
      expect.arrayContaining(['FLEETWATCH_SITE', 'FLEETWATCH_ROLE', 'FLEETWATCH_LOCATION']),
    );
    const [secret] = manifests('secret.example.yaml') as unknown as Array<{ stringData: Record<string, string> }>;
    expect(Object.keys(secret.stringData)).toEqual(
      expect.arrayContaining(['DATABASE_URL', 'REDIS_URL', 'AMQP_URL', 'FLEETWATCH_ENCRYPTION_KEY']),
    );
  });

  describe("the collector's host id (host:{id})", () => {
    const deployment = () => manifests('collector.yaml').find((m) => m.kind === 'Deployment') as Manifest;
    const [config] = manifests('config.yaml') as unknown as Array<{ data: Record<string, string> }>;
    /**
     * The host id the collector pod `podName` on node `nodeName` takes (the container's env through its config), or a
     * copy of the file for another `location` (which changes FLEETWATCH_LOCATION's value: the file's header says so).
     */
    const hostIdOn = (nodeName: string, podName: string, location?: string) => {
      const [container] = podOf(deployment()).containers;
      const copy = {
        ...container,
        env: container.env?.map((e) => (e.name === 'FLEETWATCH_LOCATION' && location ? { ...e, value: location } : e)),
      };
      return loadCollectorConfig(
        containerEnv(copy, { 'spec.nodeName': nodeName, 'metadata.name': podName }, config.data),
      ).hostId;
    };

    it('is set, from the node it runs on: a restart or rollout on the same node keeps it, another node is another host', () => {
      // Unset, the collector names its host after the pod (hostname()): a new host at every rollout, the old one STALE.
      const first = hostIdOn('node-a', 'collector-5f7c9d8b6-x2k4q');
      expect(first).toBe('cluster-1/node-a');
      expect(hostIdOn('node-a', 'collector-7d4b8c9f5-p9zrm')).toBe(first);
      expect(hostIdOn('node-b', 'collector-7d4b8c9f5-p9zrm')).toBe('cluster-1/node-b');
      // The node from the downward API, never from the pod (its name changes with each ReplicaSet).
      const [container] = podOf(deployment()).containers;
      const node = container.env?.find((e) => e.valueFrom?.fieldRef?.fieldPath === 'spec.nodeName');
      expect(container.env?.find((e) => e.name === 'COLLECTOR_HOST_ID')?.value).toContain(`$(${node?.name})`);
    });

    it("two locations' collectors on one node never share it; one location never runs two collectors at once", () => {
      expect(hostIdOn('node-a', 'collector-eu-0', 'eu-west-1')).toBe('eu-west-1/node-a');
      expect(hostIdOn('node-a', 'collector-lab-0', 'lab-2')).toBe('lab-2/node-a');
      // One pod per location at a time (its spool is locked too): the old pod is gone before the new one starts.
      expect(deployment().spec['replicas']).toBe(1);
      expect(deployment().spec['strategy']).toEqual({ type: 'Recreate' });
    });
  });

  it('the migration Job runs what the Dockerfile migrate target runs, with DATABASE_URL from the Secret', () => {
    const [job] = parseAllDocuments(readFileSync(join(dir, 'migrate/job.yaml'), 'utf8')).map(
      (d) => d.toJS() as Manifest,
    );
    expect(job.kind).toBe('Job');
    expect(podOf(job).enableServiceLinks).toBe(false);
    const [container] = podOf(job).containers;
    const cmd = /FROM runtime AS migrate[\s\S]*?\nCMD (\[.*\])/.exec(dockerfile);
    expect(cmd).not.toBeNull();
    expect(container.command).toEqual(JSON.parse((cmd as RegExpExecArray)[1]));
    expect(container.image).toMatch(/^fleetwatch\/migrate:/);
    expect(container.env).toEqual([
      { name: 'DATABASE_URL', valueFrom: { secretKeyRef: { name: 'fleetwatch', key: 'DATABASE_URL' } } },
    ]);
  });
});
