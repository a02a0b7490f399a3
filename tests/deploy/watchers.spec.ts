import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';

// No Docker engine or cluster here: these tests keep the watchers' deploy files honest by
// reading them against the code (stages and entry points exist, every variable set is one
// the watcher reads, RBAC grants list/watch on pods and nothing more).
const root = join(__dirname, '../..');
const read = (p: string) => readFileSync(join(root, p), 'utf8');
const dockerfile = read('deploy/docker/Dockerfile');
const compose = parse(read('docker-compose.yml'), { merge: true }) as {
  services: Record<
    string,
    { build?: { target?: string }; environment?: Record<string, unknown>; profiles?: string[]; volumes?: string[] }
  >;
};
const k8sDir = 'deploy/kubernetes/k8s-watcher';
const docs = (file: string) =>
  parseAllDocuments(read(`${k8sDir}/${file}`)).map((d) => d.toJS() as Record<string, unknown> & { kind: string });
const codeOf = (app: string) =>
  ['config.ts', 'main.ts'].map((f) => read(`apps/${app}/src/${f}`)).join('\n') +
  read('libs/pusher/src/pusher-config.ts');

describe.each([
  ['docker-watcher', 3005],
  ['k8s-watcher', 3006],
])('%s image', (app, port) => {
  it('has a Dockerfile stage that runs its built entry point and exposes its port', () => {
    expect(dockerfile).toMatch(
      // Stage lines before EXPOSE (a state directory made for the watcher) are allowed; the next stage is not.
      new RegExp(
        `FROM runtime AS ${app}\\n(?:(?!FROM )[^\\n]*\\n)*EXPOSE ${port}[\\s\\S]*?CMD \\[.*"dist/apps/${app}/src/main.js"\\]`,
      ),
    );
    expect(statSync(join(root, 'apps', app, 'src/main.ts')).isFile()).toBe(true);
  });
});

describe('docker-watcher compose service', () => {
  const svc = compose.services['docker-watcher'];

  it('is opt-in, built from its stage, with the engine socket', () => {
    expect(svc?.build?.target).toBe('docker-watcher');
    expect(svc?.profiles).toEqual(['watchers']);
    expect(svc?.volumes).toContain('/var/run/docker.sock:/var/run/docker.sock:ro');
  });

  it('sets only variables the watcher reads, and reaches the site through status-ingest alone', () => {
    const code = codeOf('docker-watcher');
    for (const name of Object.keys(svc?.environment ?? {}))
      expect({ name, read: code.includes(name) }).toEqual({ name, read: true });
    expect(svc?.environment?.['FLEETWATCH_INGEST_URL']).toBe('http://status-ingest:3001');
    for (const name of ['DATABASE_URL', 'AMQP_URL', 'REDIS_URL']) expect(svc?.environment).not.toHaveProperty(name);
  });
});

describe('k8s-watcher manifests', () => {
  const rules = (file: string) =>
    docs(file)
      .filter((d) => d.kind === 'Role' || d.kind === 'ClusterRole')
      .flatMap((d) => d['rules'] as { apiGroups: string[]; resources: string[]; verbs: string[] }[]);

  it.each(['rbac-namespaced.yaml', 'rbac-cluster.yaml'])(
    '%s grants list and watch on pods, nothing else (no get)',
    (file) => {
      expect(rules(file)).toEqual([{ apiGroups: [''], resources: ['pods'], verbs: ['list', 'watch'] }]);
      const binding = docs(file).find((d) => d.kind.endsWith('Binding')) as unknown as {
        subjects: { kind: string; name: string }[];
      };
      expect(binding.subjects).toEqual([
        expect.objectContaining({ kind: 'ServiceAccount', name: 'fleetwatch-k8s-watcher' }),
      ]);
    },
  );

  it('the Deployment runs as the service account, non-root, read-only, with only variables the watcher reads', () => {
    const [dep] = docs('deployment.yaml') as unknown as {
      spec: {
        template: {
          spec: {
            serviceAccountName: string;
            enableServiceLinks: boolean;
            securityContext: { runAsNonRoot: boolean };
            containers: {
              env: { name: string }[];
              livenessProbe: { httpGet: { path: string } };
              securityContext: { readOnlyRootFilesystem: boolean; allowPrivilegeEscalation: boolean };
            }[];
          };
        };
      };
    }[];
    if (!dep) throw new Error('deployment.yaml holds no Deployment');
    const pod = dep.spec.template.spec;
    expect(pod.serviceAccountName).toBe((docs('serviceaccount.yaml')[0]?.['metadata'] as { name: string }).name);
    expect(pod.securityContext.runAsNonRoot).toBe(true);
    // No {SERVICE}_PORT=tcp://… from the namespace's Services (K8S_WATCHER_PORT is a port number).
    expect(pod.enableServiceLinks).toBe(false);
    const [c] = pod.containers;
    if (!c) throw new Error('the Deployment has no container');
    expect(c.securityContext).toMatchObject({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false });
    expect(c.livenessProbe.httpGet.path).toBe('/healthz');
    const code = codeOf('k8s-watcher');
    for (const { name } of c.env) expect({ name, read: code.includes(name) }).toEqual({ name, read: true });
  });

  it('kustomization lists files that exist (the namespaced RBAC by default)', () => {
    const k = parse(read(`${k8sDir}/kustomization.yaml`)) as { resources: string[] };
    expect(k.resources).toEqual(['serviceaccount.yaml', 'rbac-namespaced.yaml', 'deployment.yaml']);
    for (const f of k.resources) expect(statSync(join(root, k8sDir, f)).isFile()).toBe(true);
  });
});
