import { createHash } from 'node:crypto';
import {
  InstanceKind,
  toStorable,
  truncateText,
  type LifecycleState,
  type StatusUpdateInput,
} from '@fleetwatch/contracts';

// Pure mapping from a Kubernetes Pod object (core/v1) to one status update. No I/O:
// table-tested in pod-status.spec.ts.

interface ContainerStateK8s {
  waiting?: { reason?: string; message?: string };
  running?: { startedAt?: string };
  terminated?: { reason?: string; message?: string; exitCode?: number; startedAt?: string; finishedAt?: string };
}
export interface ContainerStatusK8s {
  name: string;
  ready?: boolean;
  started?: boolean;
  restartCount?: number;
  state?: ContainerStateK8s;
  lastState?: ContainerStateK8s;
}
export interface PodK8s {
  metadata: {
    name: string;
    namespace?: string;
    uid: string;
    resourceVersion?: string;
    labels?: Record<string, string>;
    deletionTimestamp?: string;
    creationTimestamp?: string;
  };
  spec?: { nodeName?: string; restartPolicy?: string };
  status?: {
    phase?: string;
    reason?: string;
    message?: string;
    startTime?: string;
    conditions?: { type: string; status: string; reason?: string; lastTransitionTime?: string }[];
    initContainerStatuses?: ContainerStatusK8s[];
    containerStatuses?: ContainerStatusK8s[];
  };
}

export interface PodMappingOptions {
  instancePrefix: string;
  location?: string;
  source: string;
  now: number;
  maxAgeMs: number;
}

/** Waiting reasons that mean the pod cannot run without someone fixing it. */
const ERROR_REASONS = new Set([
  'ErrImagePull',
  'ImagePullBackOff',
  // The image absent with imagePullPolicy Never, or not readable: a pod Pending for ever, before read as `starting` (UP).
  'ErrImageNeverPull',
  'ImageInspectError',
  'RegistryUnavailable',
  'InvalidImageName',
  'CreateContainerConfigError',
  'CreateContainerError',
  'RunContainerError',
  'PreCreateHookError',
  'PreStartHookError',
  'PostStartHookError',
]);
/** Waiting reasons of a container that is on its way up. */
const STARTING_REASONS = new Set(['ContainerCreating', 'PodInitializing']);

/** Text the stores can hold (the contract's own rule: NUL removed, lone surrogates replaced), cut without leaving half a pair. */
const storable = (s: string, max: number) => truncateText(toStorable(s), max);

const restartsOf = (p: PodK8s) =>
  [...(p.status?.containerStatuses ?? []), ...(p.status?.initContainerStatuses ?? [])].reduce(
    (n, c) => n + (c.restartCount ?? 0),
    0,
  );

/**
 * How long a pod being deleted may outlast its grace period before it counts as stuck. Its deletionTimestamp is when
 * the grace period ends (the API server sets it to the delete's time + the grace); the kubelet kills what is left then
 * and the object goes seconds later. One still there a minute on is not on its way out: its node is out of reach (the
 * pods of a lost node are deleted after 5 min and stay until it returns or is removed — a StatefulSet gets no
 * replacement meanwhile) or a finalizer never completes. Refreshed by its watcher, it would never go STALE either.
 */
export const STUCK_TERMINATING_AFTER_MS = 60_000;

/** When a pod being deleted counts as stuck terminating (epoch ms), or undefined for one not being deleted. */
export function stuckTerminatingAt(p: Pick<PodK8s, 'metadata'>): number | undefined {
  const graceEnd = p.metadata.deletionTimestamp ? Date.parse(p.metadata.deletionTimestamp) : NaN;
  return Number.isNaN(graceEnd) ? undefined : graceEnd + STUCK_TERMINATING_AFTER_MS;
}

/** The lifecycle state of a pod and why, from its phase, conditions and container states, as of `now` (epoch ms). */
export function podLifecycle(p: PodK8s, now: number): { state: LifecycleState; message: string } {
  const st = p.status ?? {};
  const containers = [...(st.initContainerStatuses ?? []), ...(st.containerStatuses ?? [])];
  const restarts = restartsOf(p);
  const suffix = restarts > 0 ? ` (${restarts} restart${restarts === 1 ? '' : 's'})` : '';
  if (p.metadata.deletionTimestamp) {
    const stuckAt = stuckTerminatingAt(p);
    // Past its grace period: not going away after all (a node out of reach, a finalizer), so DOWN as it was before
    // `stopping` existed — UNKNOWN and refreshed, an outage would stay silent for as long as the node is gone.
    if (stuckAt !== undefined && now >= stuckAt) {
      const ended = new Date(stuckAt - STUCK_TERMINATING_AFTER_MS).toISOString();
      return { state: 'stopped', message: `stuck terminating: its grace period ended at ${ended}` };
    }
    // Deleted on purpose (a rollout, a scale-down, a drain): on its way out, not down — `removed` follows once it is gone.
    return { state: 'stopping', message: 'terminating' };
  }
  const crash = containers.find((c) => c.state?.waiting?.reason === 'CrashLoopBackOff');
  if (crash) {
    const last = crash.lastState?.terminated;
    const why = last ? `: last exit ${last.exitCode ?? '?'}${last.reason ? ` (${last.reason})` : ''}` : '';
    return { state: 'crashloopbackoff', message: `container ${crash.name} in CrashLoopBackOff${why}${suffix}` };
  }
  const broken = containers.find((c) => c.state?.waiting?.reason && ERROR_REASONS.has(c.state.waiting.reason));
  if (broken) {
    const w = broken.state?.waiting;
    return { state: 'error', message: `container ${broken.name}: ${w?.reason}${w?.message ? `: ${w.message}` : ''}` };
  }
  switch (st.phase) {
    case 'Succeeded':
      return { state: 'succeeded', message: 'all containers completed' };
    case 'Failed':
      return {
        state: 'failed',
        message: st.reason ? `${st.reason}${st.message ? `: ${st.message}` : ''}` : failedWhy(p),
      };
    case 'Unknown':
      return { state: 'unknown', message: st.reason ?? 'the node stopped reporting the pod' };
    case 'Pending': {
      const scheduled = st.conditions?.find((c) => c.type === 'PodScheduled');
      if (scheduled?.status === 'False')
        return { state: 'pending', message: `not scheduled${scheduled.reason ? `: ${scheduled.reason}` : ''}` };
      return { state: 'starting', message: 'pending: containers starting' };
    }
    case 'Running': {
      const ready = st.conditions?.find((c) => c.type === 'Ready');
      if (ready?.status === 'True') return { state: 'running', message: `running, ready${suffix}` };
      const terminated = (st.containerStatuses ?? []).find((c) => c.state?.terminated);
      if (terminated) {
        const t = terminated.state?.terminated;
        return {
          state: 'degraded',
          message: `container ${terminated.name} terminated: exit ${t?.exitCode ?? '?'}${t?.reason ? ` (${t.reason})` : ''}${suffix}`,
        };
      }
      // `started: false` on a container that has not terminated (its startup probe has not passed): a completed init
      // container reads `started: false` too (Kubernetes ≥ 1.28), and counting it hid a pod failing readiness as UP.
      const starting = containers.find(
        (c) =>
          (c.state?.waiting?.reason && STARTING_REASONS.has(c.state.waiting.reason)) ||
          (c.started === false && !c.state?.terminated),
      );
      if (starting) return { state: 'starting', message: `container ${starting.name} starting${suffix}` };
      const notReady = (st.containerStatuses ?? []).find((c) => c.ready === false);
      return {
        state: 'unhealthy',
        message: notReady ? `container ${notReady.name} not ready${suffix}` : `pod not ready${suffix}`,
      };
    }
    default:
      return { state: 'unknown', message: st.phase ? `phase ${st.phase}` : 'no status reported yet' };
  }
}

function failedWhy(p: PodK8s): string {
  const t = (p.status?.containerStatuses ?? []).find((c) => c.state?.terminated?.exitCode);
  return t ? `container ${t.name} exited with code ${t.state?.terminated?.exitCode}` : 'failed';
}

function stateKey(s: ContainerStateK8s | undefined): unknown[] {
  if (s?.running) return ['running', s.running.startedAt ?? null];
  if (s?.terminated)
    return ['terminated', s.terminated.reason ?? null, s.terminated.exitCode ?? null, s.terminated.finishedAt ?? null];
  if (s?.waiting) return ['waiting', s.waiting.reason ?? null];
  return [];
}

/**
 * When the pod's current state began, best known: the latest transition among its
 * conditions and container states.
 */
export function podStateSince(p: PodK8s): string | undefined {
  const times: string[] = [];
  for (const c of p.status?.conditions ?? []) if (c.lastTransitionTime) times.push(c.lastTransitionTime);
  for (const c of [...(p.status?.initContainerStatuses ?? []), ...(p.status?.containerStatuses ?? [])]) {
    const s = c.state;
    const t = s?.running?.startedAt ?? s?.terminated?.finishedAt;
    if (t) times.push(t);
  }
  if (p.metadata.deletionTimestamp) times.push(p.metadata.deletionTimestamp);
  const ms = times.map((t) => Date.parse(t)).filter((n) => !Number.isNaN(n));
  return ms.length ? new Date(Math.max(...ms)).toISOString() : (p.status?.startTime ?? p.metadata.creationTimestamp);
}

const LABEL_NAME = /^[A-Za-z_][A-Za-z0-9_./-]*$/;
/** Keys the contract refuses anywhere (they reach object prototypes in JavaScript stores). */
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);
/**
 * The instance id: namespace/name (stable across the pod's own restarts, readable). One longer than an instance id may
 * be (a 64-character prefix, a 63-character namespace and a pod name of up to 253) keeps its first 243 characters and
 * a digest of the whole: cut at 256, two pods named alike up to there were one instance, reporting over each other.
 */
export function podInstanceId(p: PodK8s, prefix: string): string {
  const id = `${prefix}${p.metadata.namespace ?? 'default'}/${p.metadata.name}`;
  if (id.length <= 256) return id;
  return `${id.slice(0, 243)}+${createHash('sha256').update(id).digest('hex').slice(0, 12)}`;
}

function podLabels(p: PodK8s): Record<string, string> {
  const out: Record<string, string> = { namespace: storable(p.metadata.namespace ?? 'default', 1024) };
  if (p.spec?.nodeName) out['node'] = storable(p.spec.nodeName, 1024);
  // The pod's own labels, as many as fit (64 at most in all); names the contract refuses are left out.
  for (const [k, v] of Object.entries(p.metadata.labels ?? {}).sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (Object.keys(out).length >= 64) break;
    if (!LABEL_NAME.test(k) || k.length > 128 || FORBIDDEN_KEYS.has(k) || k in out || typeof v !== 'string') continue;
    out[k] = storable(v, 1024);
  }
  return out;
}

const digest = (parts: unknown) => createHash('sha256').update(JSON.stringify(parts)).digest('hex').slice(0, 24);

/**
 * The update for a pod. Its `updateId` is the pod uid and a digest of everything its
 * status is made of (phase, conditions with their transition times, each container's
 * state, readiness and restart count): the same pod state seen by the watch, by a relist
 * after a 410 or by a restarted watcher gives the same id, stored once; a metadata-only
 * change (an annotation) gives the same id too; every real transition a new one.
 */
export function updateOfPod(p: PodK8s, opts: PodMappingOptions, seenAt?: string): StatusUpdateInput {
  const life = podLifecycle(p, opts.now);
  const st = p.status ?? {};
  const key = digest([
    life.state,
    st.phase ?? null,
    st.reason ?? null,
    (st.conditions ?? []).map((c) => [c.type, c.status, c.lastTransitionTime ?? null]),
    [...(st.initContainerStatuses ?? []), ...(st.containerStatuses ?? [])].map((c) => [
      c.name,
      c.ready ?? null,
      c.restartCount ?? 0,
      stateKey(c.state),
    ]),
    p.metadata.deletionTimestamp ?? null,
  ]);
  const containers = (st.containerStatuses ?? []).slice(0, 32).map((c) => ({
    name: storable(c.name, 253),
    ready: c.ready ?? false,
    restartCount: c.restartCount ?? 0,
    state: c.state?.running ? 'running' : c.state?.terminated ? 'terminated' : c.state?.waiting ? 'waiting' : 'unknown',
    ...(c.state?.waiting?.reason ? { reason: storable(c.state.waiting.reason, 128) } : {}),
    ...(c.state?.terminated
      ? { reason: storable(c.state.terminated.reason ?? '', 128), exitCode: c.state.terminated.exitCode ?? null }
      : {}),
  }));
  return {
    updateId: `k8s:${p.metadata.uid.slice(0, 64)}:${key}`,
    instanceId: podInstanceId(p, opts.instancePrefix),
    kind: InstanceKind.Pod,
    status: life.state,
    source: opts.source,
    ...(opts.location ? { location: opts.location } : {}),
    // Stuck terminating: since the minute after its grace period ended.
    occurredAt: clampTime(seenAt ?? (life.state === 'stopped' ? isoOf(stuckTerminatingAt(p)) : podStateSince(p)), opts),
    labels: podLabels(p),
    message: storable(life.message, 4096),
    metadata: {
      uid: p.metadata.uid.slice(0, 64),
      phase: storable(st.phase ?? 'Unknown', 32),
      restarts: restartsOf(p),
      ...(p.spec?.nodeName ? { node: storable(p.spec.nodeName, 253) } : {}),
      conditions: Object.fromEntries(
        (st.conditions ?? [])
          .filter((c) => !FORBIDDEN_KEYS.has(c.type))
          .slice(0, 16)
          .map((c) => [storable(c.type, 64), storable(c.status, 16)]),
      ),
      containers,
    },
  };
}

/** A pod that was deleted (a DELETED event, or gone from a relist): reported `removed` (it leaves live state), once. */
export function updateOfDeletedPod(
  p: Pick<PodK8s, 'metadata'>,
  opts: PodMappingOptions,
  seenAt?: string,
): StatusUpdateInput {
  return {
    updateId: `k8s:${p.metadata.uid.slice(0, 64)}:deleted`,
    instanceId: podInstanceId(p as PodK8s, opts.instancePrefix),
    kind: InstanceKind.Pod,
    status: 'removed',
    source: opts.source,
    ...(opts.location ? { location: opts.location } : {}),
    occurredAt: clampTime(seenAt, opts),
    labels: { namespace: storable(p.metadata.namespace ?? 'default', 1024) },
    message: 'pod deleted',
    metadata: { uid: p.metadata.uid.slice(0, 64), deleted: true },
  };
}

const isoOf = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());

function clampTime(t: string | undefined, opts: PodMappingOptions): string {
  const at = t ? Date.parse(t) : NaN;
  const ms = Number.isNaN(at) ? opts.now : Math.min(opts.now, Math.max(at, opts.now - opts.maxAgeMs));
  return new Date(ms).toISOString();
}
