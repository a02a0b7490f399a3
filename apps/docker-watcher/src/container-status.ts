import { createHash } from 'node:crypto';
import {
  InstanceKind,
  toStorable,
  truncateText,
  type LifecycleState,
  type StatusUpdateInput,
} from '@fleetwatch/contracts';

// Pure mapping from what the Docker Engine API says about a container (GET
// /containers/{id}/json, and the events stream for a container that is gone) to one
// status update. No I/O: table-tested in container-status.spec.ts.

/** The part of a container inspect this watcher reads (Docker Engine API, ContainerInspectResponse). */
export interface ContainerSnapshot {
  Id: string;
  Name?: string;
  Created?: string;
  RestartCount?: number;
  State?: {
    Status?: string;
    Running?: boolean;
    Paused?: boolean;
    Restarting?: boolean;
    OOMKilled?: boolean;
    Dead?: boolean;
    ExitCode?: number;
    Error?: string;
    StartedAt?: string;
    FinishedAt?: string;
    Health?: { Status?: string; FailingStreak?: number; Log?: { Start?: string; End?: string; ExitCode?: number }[] };
  };
  Config?: { Image?: string; Labels?: Record<string, string> | null };
}

/** One line of GET /events (type container). */
export interface DockerEvent {
  Type?: string;
  Action?: string;
  status?: string;
  id?: string;
  Actor?: { ID?: string; Attributes?: Record<string, string> };
  time?: number;
  timeNano?: number;
}

export interface MappingOptions {
  /** Put before the container name in `instanceId` (e.g. `host-1/`). */
  instancePrefix: string;
  location?: string;
  source: string;
  /** Now, for clamping `occurredAt` (the ingest refuses times in the future or older than its raw window). */
  now: number;
  /** Oldest `occurredAt` sent, ms before now (a container running for a month is reported as of now − this). */
  maxAgeMs: number;
}

/** Docker's zero time: a container that never started or never finished. */
const ZERO_TIME = '0001-01-01T00:00:00Z';
const known = (t: string | undefined) => (t && !t.startsWith('0001-01-01') ? t : undefined);

/** Text the stores can hold (the contract's own rule: NUL removed, lone surrogates replaced), cut without leaving half a pair. */
const storable = (s: string, max: number) => truncateText(toStorable(s), max);

/** The lifecycle state, a message and the time the state began, from an inspect. */
export function lifecycleOf(c: ContainerSnapshot): { state: LifecycleState; message: string; since?: string } {
  const s = c.State ?? {};
  const status = (s.Status ?? '').toLowerCase();
  const health = s.Health?.Status?.toLowerCase();
  const started = known(s.StartedAt);
  const finished = known(s.FinishedAt);
  switch (status) {
    case 'running': {
      if (health === 'healthy' || health === 'unhealthy' || health === 'starting') {
        const streak = s.Health?.FailingStreak ?? 0;
        return {
          state: health,
          message:
            health === 'unhealthy'
              ? `health check failing (${streak} in a row)`
              : health === 'starting'
                ? 'running, health check not passed yet'
                : 'running, healthy',
          since: healthSince(c) ?? started,
        };
      }
      return { state: 'running', message: 'running', since: started };
    }
    case 'paused':
      // Docker keeps no time for a pause: the resync reports it as of now.
      return { state: 'paused', message: 'paused', since: undefined };
    case 'restarting':
      return {
        state: 'restarting',
        message: `restarting (restart ${c.RestartCount ?? 0})`,
        since: finished ?? started,
      };
    case 'created':
      return { state: 'created', message: 'created, not started', since: known(c.Created) };
    case 'removing':
      // Removed on purpose (docker rm, compose down): on its way out, not down — `removed` follows once it is gone.
      return { state: 'stopping', message: 'being removed', since: finished };
    case 'dead':
      return { state: 'dead', message: s.Error ? `dead: ${s.Error}` : 'dead', since: finished };
    case 'exited': {
      const code = s.ExitCode ?? 0;
      if (s.OOMKilled)
        return { state: 'failed', message: `killed: out of memory (exit code ${code})`, since: finished };
      if (s.Error) return { state: 'failed', message: `exited: ${s.Error} (exit code ${code})`, since: finished };
      return code === 0
        ? { state: 'exited', message: 'exited (exit code 0)', since: finished }
        : { state: 'failed', message: `exited with code ${code}`, since: finished };
    }
    default:
      return { state: 'unknown', message: status ? `state ${status}` : 'no state reported', since: undefined };
  }
}

/**
 * When the health status last changed, from the probe log (Docker keeps the last 5):
 * the first probe of the trailing run whose outcome matches the current status. When
 * the whole log agrees, the change is older than the log: undefined (the start time
 * stands in).
 */
export function healthSince(c: ContainerSnapshot): string | undefined {
  const h = c.State?.Health;
  const log = h?.Log ?? [];
  if (!h?.Status || log.length === 0 || h.Status === 'starting') return undefined;
  const good = h.Status === 'healthy';
  let i = log.length - 1;
  while (i > 0 && (log[i - 1]?.ExitCode === 0) === good) i--;
  if (i === 0) return undefined;
  return known(log[i]?.End ?? log[i]?.Start);
}

export function containerName(c: { Name?: string; Names?: string[]; Id: string }): string {
  const raw = c.Name ?? c.Names?.[0] ?? c.Id.slice(0, 12);
  return raw.replace(/^\//, '');
}

/** `instanceId` from the name (readable, stable across re-creation by compose), else the short id. */
export function instanceIdOf(c: { Name?: string; Names?: string[]; Id: string }, prefix: string): string {
  const name = containerName(c);
  const id = `${prefix}${name}`;
  return /^[A-Za-z0-9][A-Za-z0-9._:/@+=-]*$/.test(id) && id.length <= 256 ? id : `${prefix}${c.Id.slice(0, 12)}`;
}

function clampTime(t: string | undefined, opts: MappingOptions): string {
  const at = t ? Date.parse(t) : NaN;
  const ms = Number.isNaN(at) ? opts.now : Math.min(opts.now, Math.max(at, opts.now - opts.maxAgeMs));
  return new Date(ms).toISOString();
}

const LABEL_NAME = /^[A-Za-z_][A-Za-z0-9_./-]*$/;
/** Labels kept from a container's own: compose project and service, when they fit the contract. */
function labelsOf(c: ContainerSnapshot): Record<string, string> {
  const own = c.Config?.Labels ?? {};
  const out: Record<string, string> = {};
  const image = c.Config?.Image;
  if (image) out['image'] = storable(image, 1024);
  for (const [from, to] of [
    ['com.docker.compose.project', 'compose_project'],
    ['com.docker.compose.service', 'compose_service'],
  ] as const) {
    const v = own[from];
    if (typeof v === 'string' && v.length > 0) out[to] = storable(v, 1024);
  }
  return Object.fromEntries(Object.entries(out).filter(([k]) => LABEL_NAME.test(k)));
}

const digest = (parts: unknown[]) => createHash('sha256').update(JSON.stringify(parts)).digest('hex').slice(0, 24);

/**
 * The update for a container as inspected. Its `updateId` is a digest of the container
 * id and everything that makes up the state (status, health, start/finish times,
 * restart count, exit code): the same state seen twice — by the event that caused it,
 * by a resync after a reconnect, by a restarted watcher — gives the same id, so the
 * ingest stores it once; any real transition gives a new one. `occurredAt` is the event's
 * time when an event brought it (`seenAt`), else when the state began (a resync), else
 * now: the aggregator ignores an observation older than the one it holds, so a state
 * must never be dated before the state it follows.
 */
export function updateOfContainer(c: ContainerSnapshot, opts: MappingOptions, seenAt?: string): StatusUpdateInput {
  const life = lifecycleOf(c);
  const s = c.State ?? {};
  const id = digest([
    c.Id,
    life.state,
    s.Status ?? null,
    s.StartedAt ?? ZERO_TIME,
    s.FinishedAt ?? ZERO_TIME,
    c.RestartCount ?? 0,
    s.ExitCode ?? null,
    s.OOMKilled ?? false,
    s.Health?.Status ?? null,
    healthSince(c) ?? null,
  ]);
  return {
    updateId: `docker:${c.Id.slice(0, 12)}:${id}`,
    instanceId: instanceIdOf(c, opts.instancePrefix),
    kind: InstanceKind.Container,
    status: life.state,
    source: opts.source,
    ...(opts.location ? { location: opts.location } : {}),
    occurredAt: clampTime(seenAt ?? life.since, opts),
    labels: labelsOf(c),
    message: storable(life.message, 4096),
    metadata: {
      containerId: c.Id.slice(0, 64),
      name: storable(containerName(c), 256),
      state: storable(s.Status ?? 'unknown', 32),
      ...(s.Health?.Status ? { health: storable(s.Health.Status, 32) } : {}),
      restartCount: c.RestartCount ?? 0,
      ...(s.Status === 'exited' || s.Status === 'dead'
        ? { exitCode: s.ExitCode ?? null, oomKilled: !!s.OOMKilled }
        : {}),
    },
  };
}

/**
 * A container that is gone (a `destroy` event, or missing from a resync listing): reported
 * stopped once. The id depends on the container only, so however many times the removal
 * is seen, one update is stored.
 */
export function updateOfRemoved(
  container: { Id: string; Name?: string; Names?: string[]; image?: string },
  at: string | undefined,
  opts: MappingOptions,
): StatusUpdateInput {
  return {
    updateId: `docker:${container.Id.slice(0, 12)}:removed`,
    instanceId: instanceIdOf(container, opts.instancePrefix),
    kind: InstanceKind.Container,
    status: 'removed',
    source: opts.source,
    ...(opts.location ? { location: opts.location } : {}),
    occurredAt: clampTime(at, opts),
    ...(container.image ? { labels: { image: storable(container.image, 1024) } } : {}),
    message: 'container removed',
    metadata: { containerId: container.Id.slice(0, 64), name: storable(containerName(container), 256), removed: true },
  };
}

/** The container an event is about, and when it happened (ISO), for any container event. */
export function eventSubject(
  e: DockerEvent,
): { id: string; action: string; name?: string; image?: string; at?: string } | null {
  if ((e.Type ?? 'container') !== 'container') return null;
  const id = e.Actor?.ID ?? e.id;
  const action = e.Action ?? e.status;
  if (!id || !action) return null;
  const nanos = e.timeNano ?? (e.time !== undefined ? e.time * 1e9 : undefined);
  const at = nanos !== undefined ? new Date(Math.floor(nanos / 1e6)).toISOString() : undefined;
  const attrs = e.Actor?.Attributes ?? {};
  return { id, action, name: attrs['name'], image: attrs['image'], at };
}

/** Which events change what a container's status is (exec_*, attach, top, … do not). */
export function isLifecycleAction(action: string): boolean {
  const base = action.split(':')[0]?.trim() ?? '';
  return [
    'create',
    'start',
    'restart',
    'die',
    'stop',
    'kill',
    'oom',
    'destroy',
    'pause',
    'unpause',
    'health_status',
    'rename',
    'update',
  ].includes(base);
}

/**
 * A return to a state this container was already reported in (paused → running again with
 * the same health, which Docker gives no new timestamp for) would repeat an `updateId` the
 * ingest already stored, and be dropped as a retry. The watcher then salts the id with the
 * time it saw the change, so the return is stored too.
 */
export function saltedUpdateId(updateId: string, salt: string): string {
  return `${updateId}:${createHash('sha256').update(salt).digest('hex').slice(0, 12)}`;
}
