import { createServer, type Server, type ServerResponse } from 'node:http';
import { rmSync } from 'node:fs';
import type { ContainerSnapshot, DockerEvent } from '../container-status';

// A stand-in for the Docker Engine API on a unix socket, speaking the documented wire
// format (Engine API v1.45): GET /_ping, /version, /info (SystemTime), /containers/json (all, label
// filters), /containers/{id}/json, and /events (JSON lines, `since` replay, label
// filters, kept open). Tests and the watcher benchmark drive it: add containers, apply
// lifecycle actions (which change state and emit the event Docker would), cut streams,
// wedge it (requests accepted and never answered, streams silent). Not a mock of our code: the real watcher with dockerode talks to it over the socket.

interface Entry {
  snapshot: ContainerSnapshot;
  image: string;
  labels: Record<string, string>;
}

interface Subscriber {
  res: ServerResponse;
  labels: string[];
}

/** Docker's RFC 3339 with nanoseconds, from an instant in ms. */
const isoNano = (ms: number) => new Date(ms).toISOString().replace('Z', '000000Z');

export class DockerEngineStandin {
  private server: Server | null = null;
  private readonly containers = new Map<string, Entry>();
  private readonly log: (DockerEvent & { labels: Record<string, string> })[] = [];
  private lastMs = 0;
  private readonly subscribers = new Set<Subscriber>();
  /** Paths requested, in order (API version prefix removed). */
  readonly requests: string[] = [];
  private seq = 0;
  /** How far the engine's clock is from this process's (its events' times, `/info`'s SystemTime): a skewed host. */
  clockOffsetMs = 0;
  /** false: `/info` refused (403), as a socket proxy allowing only the other paths does. */
  infoAllowed = true;

  constructor(readonly socketPath: string) {}

  async start(): Promise<void> {
    rmSync(this.socketPath, { force: true });
    const server = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://docker');
      const path = url.pathname.replace(/^\/v\d+\.\d+/, '');
      if (this.wedged) {
        // Accepted and never answered, not even headers: only the client can end it.
        this.unanswered.add(res);
        res.on('close', () => this.unanswered.delete(res));
        return;
      }
      this.requests.push(path);
      const hold = this.holds.find((h) => h.match(path));
      if (hold) {
        hold.held.push(() => server.emit('request', req, res));
        this.requests.pop(); // counted again when it is answered
        return;
      }
      const json = (status: number, body: unknown) =>
        res.writeHead(status, { 'content-type': 'application/json', 'api-version': '1.45' }).end(JSON.stringify(body));
      if (path === '/_ping')
        return res.writeHead(200, { 'content-type': 'text/plain', 'api-version': '1.45' }).end('OK');
      if (path === '/version')
        return json(200, {
          Version: '27.0.0-standin',
          ApiVersion: '1.45',
          MinAPIVersion: '1.24',
          Os: 'linux',
          Arch: 'amd64',
        });
      if (path === '/info')
        return this.infoAllowed
          ? json(200, { ID: 'standin', SystemTime: isoNano(Date.now() + this.clockOffsetMs) })
          : json(403, { message: 'stand-in: /info not allowed (a socket proxy)' });
      if (path === '/containers/json') {
        const all = ['1', 'true'].includes(url.searchParams.get('all') ?? '');
        const labels = labelFiltersOf(url.searchParams.get('filters'));
        return json(
          200,
          [...this.containers.values()]
            .filter((e) => all || e.snapshot.State?.Status === 'running')
            .filter((e) => matches(e.labels, labels))
            .map((e) => ({
              Id: e.snapshot.Id,
              Names: [e.snapshot.Name],
              Image: e.image,
              ImageID: `sha256:${'0'.repeat(64)}`,
              Command: 'run',
              Created: Math.floor(Date.parse(e.snapshot.Created ?? '') / 1000),
              State: e.snapshot.State?.Status,
              Status: e.snapshot.State?.Status,
              Labels: e.labels,
              Ports: [],
              Mounts: [],
            })),
        );
      }
      const inspect = /^\/containers\/([^/]+)\/json$/.exec(path);
      if (inspect) {
        const id = decodeURIComponent(inspect[1] as string);
        const entry = this.find(id);
        if (entry && this.droppedOnce.delete(entry.snapshot.Id)) {
          // The connection cut before any answer (an engine restarting, a proxy dropping it): no status at all.
          req.socket.destroy();
          return;
        }
        if (entry && this.broken.has(entry.snapshot.Id))
          return json(500, { message: `stand-in: inspect of ${id} fails (broken)` });
        return entry ? json(200, entry.snapshot) : json(404, { message: `No such container: ${id}` });
      }
      if (path === '/events') {
        const since = Number(url.searchParams.get('since') ?? 'NaN');
        const labels = labelFiltersOf(url.searchParams.get('filters'));
        res.writeHead(200, { 'content-type': 'application/json', 'api-version': '1.45' });
        res.flushHeaders();
        if (Number.isFinite(since))
          for (const e of this.log)
            if ((e.time ?? 0) >= since && matches(e.labels, labels)) res.write(JSON.stringify(strip(e)) + '\n');
        const sub = { res, labels };
        this.subscribers.add(sub);
        res.on('close', () => this.subscribers.delete(sub));
        return;
      }
      json(404, { message: `page not found: ${path}` });
    });
    this.server = server;
    await new Promise<void>((resolve) => server.listen(this.socketPath, resolve));
  }

  async stop(): Promise<void> {
    this.wedged = false;
    this.dropStreams();
    this.holds.splice(0);
    // Connections still open (a held request, a client's keep-alive) are closed at once: close() waits for them.
    const closed = new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    this.server?.closeAllConnections?.();
    await closed;
    rmSync(this.socketPath, { force: true });
  }

  /** While set, nothing is answered and open streams get nothing (wedge). */
  private wedged = false;
  /** Requests received while wedged that the client has not given up on (its connection still open). */
  private readonly unanswered = new Set<ServerResponse>();

  /**
   * Wedges the engine (a daemon that hangs, or a connection gone half-open): every request is accepted and never
   * answered, and the open events streams get nothing more (the events are kept: a later `since` replays them).
   * Returns the function that makes it answer again; what it left unanswered stays so.
   */
  wedge(): () => void {
    this.wedged = true;
    return () => void (this.wedged = false);
  }

  get unansweredRequests(): number {
    return this.unanswered.size;
  }

  /** Requests held (paths matching a hold), answered when it is released. */
  private readonly holds: Array<{ match: (path: string) => boolean; held: Array<() => void> }> = [];

  /** Requests received and not yet answered while held, of the holds matching `path` (every hold: none given). */
  heldRequests(path?: string): number {
    return this.holds.filter((h) => path === undefined || h.match(path)).reduce((n, h) => n + h.held.length, 0);
  }

  /** Requests for /events received (and not yet answered) while held. */
  get heldEventRequests(): number {
    return this.heldRequests('/events');
  }

  /**
   * Holds every request whose path (API version prefix removed) matches — no answer, not even headers — until
   * the returned function is called: a client is caught between asking and having the answer.
   */
  hold(match: (path: string) => boolean): () => void {
    const hold = { match, held: [] as Array<() => void> };
    this.holds.push(hold);
    return () => {
      const i = this.holds.indexOf(hold);
      if (i >= 0) this.holds.splice(i, 1);
      for (const answer of hold.held.splice(0)) answer();
    };
  }

  /** Holds every /events request (see hold): a client is caught between asking for the stream and having it. */
  holdEvents(): () => void {
    return this.hold((path) => path === '/events');
  }

  /** Containers whose inspect the engine answers 500 (a container it lists but cannot describe). */
  private readonly broken = new Set<string>();

  /** Containers whose next inspect gets no answer: the connection is cut (a transient engine failure). */
  private readonly droppedOnce = new Set<string>();

  /** The next inspect of this container is cut off before any answer (once). */
  dropNextInspect(idOrName: string): void {
    const entry = this.find(idOrName);
    if (!entry) throw new Error(`no container ${idOrName}`);
    this.droppedOnce.add(entry.snapshot.Id);
  }

  /** Inspecting this container fails with a 500 from now on (`false`: works again). */
  breakInspect(idOrName: string, broken = true): void {
    const entry = this.find(idOrName);
    if (!entry) throw new Error(`no container ${idOrName}`);
    if (broken) this.broken.add(entry.snapshot.Id);
    else this.broken.delete(entry.snapshot.Id);
  }

  /** Ends every open events stream, as a restarting engine does. */
  dropStreams(): void {
    for (const s of this.subscribers) s.res.end();
    this.subscribers.clear();
  }

  get openStreams(): number {
    return this.subscribers.size;
  }

  private find(idOrName: string): Entry | undefined {
    return (
      this.containers.get(idOrName) ??
      [...this.containers.values()].find(
        (e) => e.snapshot.Id.startsWith(idOrName) || e.snapshot.Name === `/${idOrName}`,
      )
    );
  }

  /** Creates a container (emits `create`); `running: true` starts it too (emits `start`). */
  add(spec: {
    name: string;
    image?: string;
    labels?: Record<string, string>;
    running?: boolean;
    healthcheck?: boolean;
    quiet?: boolean;
  }): string {
    const id = (++this.seq).toString(16).padStart(8, '0') + 'c0ffee'.repeat(9) + '00';
    const snapshot: ContainerSnapshot = {
      Id: id.slice(0, 64),
      Name: `/${spec.name}`,
      Created: isoNano(this.tick()),
      RestartCount: 0,
      State: {
        Status: 'created',
        Running: false,
        Paused: false,
        Restarting: false,
        OOMKilled: false,
        Dead: false,
        ExitCode: 0,
        Error: '',
        StartedAt: '0001-01-01T00:00:00Z',
        FinishedAt: '0001-01-01T00:00:00Z',
        ...(spec.healthcheck ? { Health: { Status: 'starting', FailingStreak: 0, Log: [] } } : {}),
      },
      Config: { Image: spec.image ?? 'nginx:1.27', Labels: spec.labels ?? {} },
    };
    this.containers.set(snapshot.Id, { snapshot, image: spec.image ?? 'nginx:1.27', labels: spec.labels ?? {} });
    if (!spec.quiet) this.emit(snapshot.Id, 'create');
    if (spec.running) this.act(snapshot.Id, 'start', { quiet: spec.quiet });
    return snapshot.Id;
  }

  /**
   * Applies a lifecycle action as the engine would and emits its event:
   * start, die (exitCode), stop, kill, oom, pause, unpause, restart, destroy,
   * health_status (healthy | unhealthy), rename (`name`: the new name; the event carries `oldName`).
   */
  act(
    idOrName: string,
    action:
      | 'start'
      | 'die'
      | 'stop'
      | 'kill'
      | 'oom'
      | 'pause'
      | 'unpause'
      | 'restart'
      | 'destroy'
      | 'health_status'
      | 'rename',
    opts: { exitCode?: number; health?: 'healthy' | 'unhealthy'; quiet?: boolean; name?: string } = {},
  ): void {
    const entry = this.find(idOrName);
    if (!entry) throw new Error(`no container ${idOrName}`);
    const s = (entry.snapshot.State ??= {});
    const at = this.tick();
    const now = isoNano(at);
    let emitted = action as string;
    let renamedFrom: string | undefined;
    switch (action) {
      case 'start':
      case 'restart':
        Object.assign(s, {
          Status: 'running',
          Running: true,
          Paused: false,
          OOMKilled: false,
          ExitCode: 0,
          StartedAt: now,
        });
        if (action === 'restart') entry.snapshot.RestartCount = (entry.snapshot.RestartCount ?? 0) + 1;
        if (s.Health) s.Health = { Status: 'starting', FailingStreak: 0, Log: [] };
        break;
      case 'die':
      case 'stop':
        Object.assign(s, {
          Status: 'exited',
          Running: false,
          Paused: false,
          ExitCode: opts.exitCode ?? (action === 'stop' ? 0 : 1),
          FinishedAt: now,
        });
        break;
      case 'kill':
        break;
      case 'oom':
        s.OOMKilled = true;
        break;
      case 'pause':
        Object.assign(s, { Status: 'paused', Paused: true });
        break;
      case 'unpause':
        Object.assign(s, { Status: 'running', Paused: false });
        break;
      case 'destroy':
        this.containers.delete(entry.snapshot.Id);
        break;
      case 'rename':
        renamedFrom = entry.snapshot.Name;
        entry.snapshot.Name = `/${opts.name ?? 'renamed'}`;
        break;
      case 'health_status': {
        const ok = opts.health !== 'unhealthy';
        const h = s.Health ?? { Log: [] };
        const log = [...(h.Log ?? []), { Start: now, End: now, ExitCode: ok ? 0 : 1 }].slice(-5);
        s.Health = {
          Status: ok ? 'healthy' : 'unhealthy',
          FailingStreak: ok ? 0 : (h.FailingStreak ?? 0) + 1,
          Log: log,
        };
        emitted = `health_status: ${s.Health.Status}`;
        break;
      }
    }
    if (!opts.quiet) this.emit(entry.snapshot.Id, emitted, entry, at, renamedFrom ? { oldName: renamedFrom } : {});
  }

  /**
   * The engine's clock: real time, but never the same millisecond twice. A real daemon cannot destroy a
   * container and create and start its successor within one millisecond; a stand-in driven by a test can, and
   * two events dated alike leave their order to chance downstream (the ingest orders by `occurredAt`, ms).
   */
  private tick(): number {
    this.lastMs = Math.max(Date.now() + this.clockOffsetMs, this.lastMs + 1);
    return this.lastMs;
  }

  private emit(
    id: string,
    action: string,
    entry = this.containers.get(id),
    at = this.tick(),
    attributes: Record<string, string> = {},
  ): void {
    const nanos = BigInt(at) * 1_000_000n + BigInt(this.log.length % 1_000_000);
    const labels = entry?.labels ?? {};
    const event = {
      status: action,
      id,
      from: entry?.image,
      Type: 'container',
      Action: action,
      Actor: {
        ID: id,
        Attributes: {
          ...labels,
          image: entry?.image ?? '',
          name: (entry?.snapshot.Name ?? '').slice(1),
          ...attributes,
        },
      },
      scope: 'local',
      time: Number(nanos / 1_000_000_000n),
      timeNano: Number(nanos),
      labels,
    };
    this.log.push(event);
    if (this.wedged) return;
    for (const sub of this.subscribers)
      if (matches(labels, sub.labels)) sub.res.write(JSON.stringify(strip(event)) + '\n');
  }
}

function strip(e: DockerEvent & { labels?: unknown }): DockerEvent {
  const { labels: _labels, ...rest } = e;
  return rest;
}

/** `{"label":["a=b","c"]}` (or Docker's older `{"label":{"a=b":true}}`) → the label filters. */
function labelFiltersOf(raw: string | null): string[] {
  if (!raw) return [];
  const f = JSON.parse(raw) as { label?: string[] | Record<string, boolean> };
  if (!f.label) return [];
  return Array.isArray(f.label) ? f.label : Object.keys(f.label).filter((k) => (f.label as Record<string, boolean>)[k]);
}

function matches(labels: Record<string, string>, filters: string[]): boolean {
  return filters.every((f) => {
    const eq = f.indexOf('=');
    return eq < 0 ? f in labels : labels[f.slice(0, eq)] === f.slice(eq + 1);
  });
}
