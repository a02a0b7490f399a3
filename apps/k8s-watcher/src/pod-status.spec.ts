import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { statusUpdateInputSchema, TargetStatus } from '@fleetwatch/contracts';
import { statusOfLifecycle } from '@fleetwatch/domain';
import fc from 'fast-check';
import { loadK8sWatcherConfig } from './config';
import type { KubeConfig } from '@kubernetes/client-node';
import { KubeConfigError, loadKubeConfig } from './kube-api';
import {
  podLifecycle,
  podStateSince,
  updateOfDeletedPod,
  updateOfPod,
  type ContainerStatusK8s,
  type PodK8s,
} from './pod-status';

// Code units 0..0xFFFF plus NUL and both surrogate halves often: what an engine or API server may hand over.
const rawText = (maxLength: number, minLength = 0) =>
  fc.string({
    unit: fc.oneof(
      fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)),
      fc.constantFrom('\u0000', '\ud800', '\udfff', '😀'),
    ),
    minLength,
    maxLength,
  });

const T0 = '2026-12-02T10:00:00Z';
const T1 = '2026-12-02T11:00:00Z';
const NOW = Date.parse('2026-12-02T12:00:00Z');
const opts = { instancePrefix: '', source: 'k8s-watcher@test', now: NOW, maxAgeMs: 24 * 3600_000 };

const running: ContainerStatusK8s = {
  name: 'app',
  ready: true,
  started: true,
  restartCount: 0,
  state: { running: { startedAt: T0 } },
};
const pod = (
  phase: string,
  containers: ContainerStatusK8s[] = [running],
  ready = 'True',
  extra: Partial<NonNullable<PodK8s['status']>> = {},
): PodK8s => ({
  metadata: { name: 'web-a', namespace: 'shop', uid: '11111111-2222-4333-8444-555555555555', labels: { app: 'web' } },
  spec: { nodeName: 'node-1' },
  status: {
    phase,
    conditions: [
      { type: 'PodScheduled', status: 'True', lastTransitionTime: T0 },
      { type: 'Ready', status: ready, lastTransitionTime: T1 },
    ],
    containerStatuses: containers,
    ...extra,
  },
});
const waiting = (reason: string, restartCount = 0): ContainerStatusK8s => ({
  name: 'app',
  ready: false,
  restartCount,
  state: { waiting: { reason, message: `${reason} message` } },
  lastState: { terminated: { exitCode: 1, reason: 'Error' } },
});

describe('podLifecycle: phase, conditions and container states → lifecycle state → status class', () => {
  it.each<[string, PodK8s, string, string, RegExp]>([
    ['running and ready', pod('Running'), 'running', 'UP', /^running, ready$/],
    ['ready with restarts', pod('Running', [{ ...running, restartCount: 3 }]), 'running', 'UP', /3 restarts/],
    [
      'CrashLoopBackOff',
      pod('Running', [waiting('CrashLoopBackOff', 7)], 'False'),
      'crashloopbackoff',
      'DOWN',
      /app in CrashLoopBackOff: last exit 1 \(Error\) \(7 restarts\)/,
    ],
    [
      'CrashLoopBackOff of an init container',
      pod('Pending', [], 'False', { initContainerStatuses: [waiting('CrashLoopBackOff', 2)] }),
      'crashloopbackoff',
      'DOWN',
      /CrashLoopBackOff/,
    ],
    [
      'ImagePullBackOff',
      pod('Pending', [waiting('ImagePullBackOff')], 'False'),
      'error',
      'DOWN',
      /app: ImagePullBackOff/,
    ],
    [
      'CreateContainerConfigError',
      pod('Pending', [waiting('CreateContainerConfigError')], 'False'),
      'error',
      'DOWN',
      /CreateContainerConfigError/,
    ],
    ...(['ErrImageNeverPull', 'ImageInspectError', 'PreStartHookError'] as const).map(
      (reason): [string, PodK8s, string, string, RegExp] => [
        `${reason} (the pod can never start: not starting)`,
        pod('Pending', [waiting(reason)], 'False'),
        'error',
        'DOWN',
        new RegExp(`app: ${reason}`),
      ],
    ),
    ['ContainerCreating', pod('Pending', [waiting('ContainerCreating')], 'False'), 'starting', 'UP', /starting/],
    [
      'unschedulable',
      pod('Pending', [], 'False', { conditions: [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable' }] }),
      'pending',
      'UNKNOWN',
      /not scheduled: Unschedulable/,
    ],
    [
      'running, readiness failing',
      pod('Running', [{ ...running, ready: false }], 'False'),
      'unhealthy',
      'DOWN',
      /app not ready/,
    ],
    [
      'running, a container still starting',
      pod('Running', [{ ...running, ready: false, started: false }], 'False'),
      'starting',
      'UP',
      /starting/,
    ],
    [
      // Kubernetes ≥ 1.28 reports a completed init container `started: false`: not a container still starting.
      'running, readiness failing, with a completed init container',
      pod('Running', [{ ...running, ready: false }], 'False', {
        initContainerStatuses: [
          {
            name: 'migrate',
            ready: true,
            started: false,
            restartCount: 0,
            state: { terminated: { exitCode: 0, reason: 'Completed' } },
          },
        ],
      }),
      'unhealthy',
      'DOWN',
      /app not ready/,
    ],
    [
      'running, a container terminated',
      pod(
        'Running',
        [{ name: 'side', ready: false, state: { terminated: { exitCode: 2, reason: 'Error' } } }],
        'False',
      ),
      'degraded',
      'PARTIAL',
      /side terminated: exit 2 \(Error\)/,
    ],
    ['succeeded', pod('Succeeded', [], 'False'), 'succeeded', 'UP', /completed/],
    [
      'failed, evicted',
      pod('Failed', [], 'False', { reason: 'Evicted', message: 'low on memory' }),
      'failed',
      'DOWN',
      /Evicted: low on memory/,
    ],
    [
      'failed, container exit code',
      pod('Failed', [{ name: 'job', state: { terminated: { exitCode: 3 } } }], 'False'),
      'failed',
      'DOWN',
      /job exited with code 3/,
    ],
    ['unknown (node lost)', pod('Unknown', [], 'False', { reason: 'NodeLost' }), 'unknown', 'UNKNOWN', /NodeLost/],
    ['no status yet', { metadata: { name: 'x', uid: 'u' } }, 'unknown', 'UNKNOWN', /no status/],
  ])('%s → %s (%s)', (_name, p, state, status, message) => {
    const life = podLifecycle(p, NOW);
    expect(life.state).toBe(state);
    expect(statusOfLifecycle(life.state)).toBe(status);
    expect(life.message).toMatch(message);
  });

  it('a pod being deleted is stopping (UNKNOWN, not DOWN: a rollout is not an outage), even one that had crashed', () => {
    const p = pod('Running');
    p.metadata.deletionTimestamp = T1;
    expect(podLifecycle(p, Date.parse(T1))).toEqual({ state: 'stopping', message: 'terminating' });
    expect(statusOfLifecycle('stopping')).toBe(TargetStatus.Unknown);
    const crashed = pod('Failed');
    crashed.metadata.deletionTimestamp = T1;
    expect(podLifecycle(crashed, Date.parse(T1)).state).toBe('stopping');
  });

  it('a pod still there a minute after its grace period ended is stuck terminating: stopped (DOWN), not UNKNOWN for ever', () => {
    // deletionTimestamp is when the grace period ends (the API server sets it to the delete's time + the grace). A pod
    // past it by a minute is not on its way out: its node is out of reach (a StatefulSet gets no replacement until it
    // goes) or a finalizer never completes. Its watcher refreshes it, so it never goes STALE either.
    const p = pod('Running');
    p.metadata.deletionTimestamp = T1;
    const end = Date.parse(T1);
    expect(podLifecycle(p, end - 20_000).state).toBe('stopping');
    expect(podLifecycle(p, end + 60_000 - 1).state).toBe('stopping');
    const stuck = podLifecycle(p, end + 60_000);
    expect(stuck.state).toBe('stopped');
    expect(statusOfLifecycle(stuck.state)).toBe(TargetStatus.Down);
    expect(stuck.message).toBe(`stuck terminating: its grace period ended at ${new Date(end).toISOString()}`);
    // updateOfPod judges by its own now, and the stuck state is a state of its own (a new updateId, so it is sent).
    const within = updateOfPod(p, { ...opts, now: end - 1_000 });
    const past = updateOfPod(p, { ...opts, now: end + 10 * 60_000 });
    expect([within.status, past.status]).toEqual(['stopping', 'stopped']);
    expect(past.updateId).not.toBe(within.updateId);
  });
});

describe('updateOfPod', () => {
  it('builds an update the shared contract accepts: namespace/name, namespace, node and pod labels', () => {
    const u = updateOfPod(pod('Running'), { ...opts, location: 'cluster-1', instancePrefix: 'prod/' });
    expect(statusUpdateInputSchema.parse(u)).toBeTruthy();
    expect(u).toMatchObject({
      instanceId: 'prod/shop/web-a',
      kind: 'pod',
      status: 'running',
      location: 'cluster-1',
      occurredAt: '2026-12-02T11:00:00.000Z',
      labels: { namespace: 'shop', node: 'node-1', app: 'web' },
      metadata: { phase: 'Running', restarts: 0, conditions: { Ready: 'True', PodScheduled: 'True' } },
    });
    expect(u.updateId).toMatch(/^k8s:11111111-2222-4333-8444-555555555555:[0-9a-f]{24}$/);
  });

  it('same status → same updateId (watch, relist, restart, metadata-only change); a transition → a new one', () => {
    const a = updateOfPod(pod('Running'), opts);
    const relabelled = pod('Running');
    relabelled.metadata.labels = { app: 'web', touched: 'yes' };
    relabelled.metadata.resourceVersion = '99';
    expect(updateOfPod(relabelled, { ...opts, now: NOW + 1000 }, T1).updateId).toBe(a.updateId);
    const restarted = updateOfPod(
      pod('Running', [{ ...running, restartCount: 1, state: { running: { startedAt: T1 } } }]),
      opts,
    );
    const crash = updateOfPod(pod('Running', [waiting('CrashLoopBackOff', 1)], 'False'), opts);
    expect(new Set([a.updateId, restarted.updateId, crash.updateId]).size).toBe(3);
  });

  it('dates by the latest transition, else the watch time; deleted pods have one id', () => {
    expect(podStateSince(pod('Running'))).toBe('2026-12-02T11:00:00.000Z');
    expect(updateOfPod(pod('Running'), opts, '2026-12-02T11:59:00Z').occurredAt).toBe('2026-12-02T11:59:00.000Z');
    const d = updateOfDeletedPod(pod('Running'), opts, T1);
    expect(statusUpdateInputSchema.parse(d)).toMatchObject({ status: 'removed', instanceId: 'shop/web-a' });
    expect(updateOfDeletedPod(pod('Failed'), opts).updateId).toBe(d.updateId);
  });

  it('a namespace/name too long for an instance id is cut with a digest of the whole: pods named alike up to the cut stay apart', () => {
    const prefix = 'cluster-with-a-long-name.example.com/';
    const ns = 'n'.repeat(63);
    const long = (suffix: string) => {
      const p = pod('Running');
      p.metadata = { ...p.metadata, namespace: ns, name: `${'x'.repeat(240)}-${suffix}` };
      return p;
    };
    const a = updateOfPod(long('a'), { ...opts, instancePrefix: prefix });
    const b = updateOfPod(long('b'), { ...opts, instancePrefix: prefix });
    expect(statusUpdateInputSchema.parse(a).instanceId).toHaveLength(256);
    expect(statusUpdateInputSchema.parse(b).instanceId).not.toBe(a.instanceId);
    expect(a.instanceId.startsWith(`${prefix}${ns}/xxx`)).toBe(true);
    // The same pod, deleted (or known from the state file by namespace and name only), is the same instance.
    expect(updateOfDeletedPod(long('a'), { ...opts, instancePrefix: prefix }).instanceId).toBe(a.instanceId);
    // One that fits is as it was.
    expect(updateOfPod(pod('Running'), opts).instanceId).toBe('shop/web-a');
  });

  it('whatever a pod carries (labels, reasons, messages, many containers, NUL and lone surrogates), the update is one the contract accepts', () => {
    fc.assert(
      fc.property(
        fc.dictionary(rawText(200, 1), rawText(2000), { maxKeys: 100 }),
        fc.array(
          fc.record({
            name: rawText(300, 1),
            reason: rawText(300),
            restarts: fc.nat(),
          }),
          {
            maxLength: 60,
          },
        ),
        rawText(6000),
        (labels, containers, message) => {
          const p = pod(
            'Failed',
            containers.map((c) => ({
              name: c.name,
              restartCount: c.restarts,
              state: { waiting: { reason: c.reason, message } },
            })),
            'False',
            { reason: 'Evicted', message },
          );
          p.metadata.labels = labels;
          return statusUpdateInputSchema.safeParse(updateOfPod(p, opts)).success;
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('kube connection (client-node KubeConfig)', () => {
  const kubeconfig = (server: string, user: string, extra = '') => {
    const dir = mkdtempSync(join(tmpdir(), 'kc-'));
    const path = join(dir, 'config');
    writeFileSync(
      path,
      [
        'apiVersion: v1',
        'kind: Config',
        'current-context: c1',
        'clusters:',
        `- name: k1\n  cluster:\n    server: ${server}\n    certificate-authority-data: ${Buffer.from('CA').toString('base64')}${extra}`,
        'contexts:',
        '- name: c1\n  context:\n    cluster: k1\n    user: u1',
        '- name: c2\n  context:\n    cluster: k1\n    user: u2',
        'users:',
        `- name: u1\n  user:\n    ${user}`,
        '- name: u2\n  user:\n    token: other',
        '',
      ].join('\n'),
    );
    return path;
  };
  const headersOf = async (kc: KubeConfig) => {
    const opts: { headers: Record<string, string> } = { headers: {} };
    await kc.applyToHTTPSOptions(opts);
    return opts.headers;
  };

  it('reads server, CA and token from the current context of the first KUBECONFIG file', async () => {
    const path = kubeconfig('https://10.0.0.1:6443', 'token: t0k');
    const { kc, origin } = loadKubeConfig({ KUBECONFIG: `${path}:/nonexistent` });
    expect(kc.getCurrentCluster()).toMatchObject({ server: 'https://10.0.0.1:6443', skipTLSVerify: false });
    expect(kc.getCurrentCluster()?.caData).toBe(Buffer.from('CA').toString('base64'));
    expect((await headersOf(kc))['Authorization']).toBe('Bearer t0k');
    expect(origin).toContain(path);
  });

  it('a named context wins; a missing context or file is a KubeConfigError', async () => {
    const path = kubeconfig('https://10.0.0.1:6443', 'token: t0k');
    expect((await headersOf(loadKubeConfig({ KUBECONFIG: path }, 'c2').kc))['Authorization']).toBe('Bearer other');
    expect(() => loadKubeConfig({ KUBECONFIG: path }, 'nope')).toThrow(KubeConfigError);
    expect(() => loadKubeConfig({ KUBECONFIG: join(tmpdir(), 'no-such-kubeconfig') })).toThrow(KubeConfigError);
  });

  it("a kubeconfig user's token-file is read trimmed (a trailing newline is no header), and again each minute as it rotates", async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'tf-')), 'token');
    writeFileSync(file, 'one\n');
    jest.useFakeTimers({ now: Date.now(), doNotFake: ['nextTick', 'setImmediate'] });
    try {
      // Over plain HTTP too (its users are carried over when TLS verification is turned off).
      for (const server of ['https://10.0.0.1:6443', 'http://127.0.0.1:8001']) {
        writeFileSync(file, 'one\n');
        jest.setSystemTime(Date.now() + 61_000);
        const { kc } = loadKubeConfig({ KUBECONFIG: kubeconfig(server, `token-file: ${file}`) });
        expect((await headersOf(kc))['Authorization']).toBe('Bearer one');
        writeFileSync(file, 'two\n');
        expect((await headersOf(kc))['Authorization']).toBe('Bearer one');
        jest.setSystemTime(Date.now() + 61_000);
        expect((await headersOf(kc))['Authorization']).toBe('Bearer two');
      }
      // A token given inline wins, as client-node and kubectl have it.
      const both = loadKubeConfig({
        KUBECONFIG: kubeconfig('https://10.0.0.1:6443', `token: t0k\n    token-file: ${file}`),
      });
      expect((await headersOf(both.kc))['Authorization']).toBe('Bearer t0k');
    } finally {
      jest.useRealTimers();
    }
  });

  it('a token-file found unreadable or empty when read again (mid-rotation) keeps the last token, as client-go does', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'tf-')), 'token');
    writeFileSync(file, 'first\n');
    jest.useFakeTimers({ now: Date.now() + 10 * 61_000, doNotFake: ['nextTick', 'setImmediate'] });
    try {
      const { kc } = loadKubeConfig({ KUBECONFIG: kubeconfig('https://10.0.0.1:6443', `token-file: ${file}`) });
      expect((await headersOf(kc))['Authorization']).toBe('Bearer first');
      // Truncated by a writer that is not atomic: read as empty, no Authorization header — 401s for a minute.
      writeFileSync(file, '');
      jest.setSystemTime(Date.now() + 61_000);
      expect((await headersOf(kc))['Authorization']).toBe('Bearer first');
      // Gone for a moment (a rename-based rotation): every request failed until it was back.
      rmSync(file);
      jest.setSystemTime(Date.now() + 61_000);
      expect((await headersOf(kc))['Authorization']).toBe('Bearer first');
      writeFileSync(file, 'second\n');
      expect((await headersOf(kc))['Authorization']).toBe('Bearer second');
    } finally {
      jest.useRealTimers();
    }
  });

  it('a plain-HTTP server (kubectl proxy) is usable: there is no TLS to verify', () => {
    const { kc } = loadKubeConfig({ KUBECONFIG: kubeconfig('http://127.0.0.1:8001', 'token: t0k') });
    expect(kc.getCurrentCluster()).toMatchObject({ server: 'http://127.0.0.1:8001', skipTLSVerify: true });
  });

  it('in a cluster: the service account token and CA, the token read again as it rotates (each minute)', async () => {
    const root = mkdtempSync(join(tmpdir(), 'sa-'));
    const sa = join(root, 'var/run/secrets/kubernetes.io/serviceaccount');
    mkdirSync(sa, { recursive: true });
    writeFileSync(join(sa, 'ca.crt'), 'CA');
    writeFileSync(join(sa, 'token'), 'one');
    const saved = { host: process.env['KUBERNETES_SERVICE_HOST'], port: process.env['KUBERNETES_SERVICE_PORT'] };
    process.env['KUBERNETES_SERVICE_HOST'] = '10.96.0.1';
    process.env['KUBERNETES_SERVICE_PORT'] = '443';
    jest.useFakeTimers({ now: Date.now(), doNotFake: ['nextTick', 'setImmediate'] });
    try {
      const { kc, origin } = loadKubeConfig({ KUBERNETES_SERVICE_HOST: '10.96.0.1' }, undefined, root);
      expect(origin).toContain('in-cluster');
      expect(kc.getCurrentCluster()).toMatchObject({ server: 'https://10.96.0.1:443' });
      expect((await headersOf(kc))['Authorization']).toBe('Bearer one');
      writeFileSync(join(sa, 'token'), 'two');
      jest.setSystemTime(Date.now() + 61_000);
      expect((await headersOf(kc))['Authorization']).toBe('Bearer two');
    } finally {
      jest.useRealTimers();
      for (const [k, v] of [
        ['KUBERNETES_SERVICE_HOST', saved.host],
        ['KUBERNETES_SERVICE_PORT', saved.port],
      ] as const)
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
    }
  });
});

describe('k8s-watcher configuration', () => {
  it('needs an API key and names each bad variable', () => {
    expect(() => loadK8sWatcherConfig({ K8S_WATCHER_NAMESPACE: 'Bad_NS', WATCHER_BATCH_MAX: '5000' })).toThrow(
      /FLEETWATCH_INGEST_API_KEY[\s\S]*K8S_WATCHER_NAMESPACE|K8S_WATCHER_NAMESPACE[\s\S]*FLEETWATCH_INGEST_API_KEY/,
    );
    const c = loadK8sWatcherConfig({
      FLEETWATCH_INGEST_API_KEY: 'k',
      K8S_WATCHER_NAMESPACE: '',
      K8S_WATCHER_LABEL_SELECTOR: 'app=web',
    });
    expect(c).toMatchObject({
      apiKey: 'k',
      namespace: undefined,
      labelSelector: 'app=web',
      resyncMs: 900_000,
      maxBatch: 500,
    });
  });

  it('a label selector: spaces inside are taken; a trailing newline or tab is refused at once (no backtracking)', () => {
    const selector = (v: string) =>
      loadK8sWatcherConfig({ FLEETWATCH_INGEST_API_KEY: 'k', K8S_WATCHER_LABEL_SELECTOR: v });
    for (const ok of ['', 'app=web', 'app=web,tier in (a, b)', ' app=web', 'a  b', 'app.kubernetes.io/name=storefront'])
      expect(selector(ok).labelSelector).toBe(ok);
    for (const bad of ['app=web ', 'app=web\n', 'app=\tweb', 'app=web\r\n'])
      expect(() => selector(bad)).toThrow(/LABEL_SELECTOR/);
    // 26 characters then a newline (a YAML block scalar's): the old pattern took seconds here, doubling per character
    // (a 45-character selector: days, the watcher hung at boot).
    const started = performance.now();
    expect(() => selector('app.kubernetes.io/name=web\n')).toThrow(/LABEL_SELECTOR/);
    expect(performance.now() - started).toBeLessThan(250);
  });

  it('a label selector: the pattern takes and refuses what the one before took and refused (kept short: no backtracking blow-up)', () => {
    const before = /^[^\s]*( *[^\s]+)*$/;
    const taken = (v: string) => {
      try {
        loadK8sWatcherConfig({ FLEETWATCH_INGEST_API_KEY: 'k', K8S_WATCHER_LABEL_SELECTOR: v });
        return true;
      } catch {
        return false;
      }
    };
    const char = fc.constantFrom('a', '=', ',', ' ', '\t', '\n', '\r', '\u00a0', '\u2028', '\ufeff', '\ud800', 'é');
    fc.assert(
      fc.property(fc.array(char, { maxLength: 12 }), (chars) => {
        const v = chars.join('');
        expect(taken(v)).toBe(before.test(v));
      }),
      { numRuns: 400 },
    );
  });
});
