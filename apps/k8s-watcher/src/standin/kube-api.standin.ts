import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ContainerStatusK8s, PodK8s } from '../pod-status';

// A stand-in for the Kubernetes API's pod endpoints, speaking the documented wire format:
// GET /api/v1/namespaces/{ns}/pods and /api/v1/pods — a PodList with
// metadata.resourceVersion (paged with limit/continue, labelSelector equality and
// existence) or, with ?watch=1, a stream of JSON lines {type, object} from the given
// resourceVersion (ADDED/MODIFIED/DELETED, BOOKMARK when allowWatchBookmarks=true), ending
// with an ERROR event carrying a 410 Status when that version is compacted away — or, for
// a watch asked from a compacted version, an HTTP 410 Status, as the API server may answer
// either way (`goneAs`). Bearer token checked. It can be wedged (`wedge`): connections
// accepted, requests never answered, open watches silent — an API server that hangs, or a
// connection gone half-open. Tests and the benchmark drive it; the real watcher
// (@kubernetes/client-node's informer) talks to it over HTTP.

interface Change {
  rv: number;
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  pod: PodK8s;
}
interface Watch {
  res: ServerResponse;
  namespace?: string;
  selector: string;
  bookmarks: boolean;
}

export class KubeApiStandin {
  private server: Server | null = null;
  private rv = 1000;
  private compactedBelow = 0;
  private readonly pods = new Map<string, PodK8s>();
  private readonly changes: Change[] = [];
  private readonly watches = new Set<Watch>();
  private uidSeq = 0;
  readonly calls = { list: 0, watch: 0, unauthorized: 0, failed: 0, throttled: 0 };
  /** The query of the latest watch request, as the client sent it. */
  lastWatchQuery: URLSearchParams | null = null;
  /** How a watch asked from a compacted version is refused: an ERROR event in a 200 stream, or an HTTP 410. */
  goneAs: 'event' | 'status' = 'event';
  /**
   * While set, every watch request is answered 200 with this Status as its one ERROR event, then ended (as the API
   * server answers a watch it cannot serve: a 504 "Too large resource version", a 500).
   */
  watchError: { code: number; reason: string; message: string; details?: unknown } | null = null;
  /** While set, list requests for a page after the first (`continue`) are accepted and never answered. */
  holdNextPages = false;
  private failing = 0;
  /** The next requests answered 429 with this Retry-After (seconds), while `count` lasts (throttleNext). */
  private throttling = { count: 0, retryAfterSeconds: 0 };
  /** What a wedged server leaves unanswered (`wedge`): lists, watches, or both. */
  private wedged = { list: false, watch: false };
  /** Requests received while wedged and never answered, until the client gives up on them (closes). */
  private readonly unanswered = new Set<ServerResponse>();
  url = '';

  constructor(private readonly token: string) {}

  async start(): Promise<void> {
    const server = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://kube');
      if (this.wedged[isWatch(url) ? 'watch' : 'list'] || (this.holdNextPages && url.searchParams.has('continue'))) {
        // Accepted and never answered, not even headers: only the client can end it.
        this.unanswered.add(res);
        res.on('close', () => this.unanswered.delete(res));
        return;
      }
      if (req.headers.authorization !== `Bearer ${this.token}`) {
        this.calls.unauthorized++;
        return status(res, 401, 'Unauthorized', 'Unauthorized');
      }
      if (this.throttling.count > 0) {
        this.throttling.count--;
        this.calls.throttled++;
        res.setHeader('retry-after', String(this.throttling.retryAfterSeconds));
        return status(res, 429, 'TooManyRequests', 'stand-in throttling (throttleNext)');
      }
      if (this.failing > 0) {
        this.failing--;
        this.calls.failed++;
        return status(res, 500, 'InternalError', 'stand-in failure (failNext)');
      }
      const m = /^\/api\/v1\/(?:namespaces\/([^/]+)\/)?pods$/.exec(url.pathname);
      if (!m) return status(res, 404, 'NotFound', `the server could not find the requested resource (${url.pathname})`);
      const namespace = m[1] ? decodeURIComponent(m[1]) : undefined;
      const selector = url.searchParams.get('labelSelector') ?? '';
      if (isWatch(url)) return this.watch(res, namespace, selector, url);
      this.calls.list++;
      const all = [...this.pods.values()]
        .filter((p) => inScope(p, namespace, selector))
        .sort((a, b) => (a.metadata.uid < b.metadata.uid ? -1 : 1));
      const limit = Number(url.searchParams.get('limit') ?? '0') || all.length;
      const from = Number(url.searchParams.get('continue') ?? '0') || 0;
      const page = all.slice(from, from + limit);
      const next = from + limit < all.length ? String(from + limit) : undefined;
      res.writeHead(200, { 'content-type': 'application/json' }).end(
        JSON.stringify({
          kind: 'PodList',
          apiVersion: 'v1',
          metadata: { resourceVersion: String(this.rv), ...(next ? { continue: next } : {}) },
          items: page,
        }),
      );
    });
    this.server = server;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    this.wedged = { list: false, watch: false };
    this.dropWatches();
    // close() waits for every connection: the requests a wedged server never answered are cut.
    for (const res of this.unanswered) res.socket?.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  get openWatches(): number {
    return this.watches.size;
  }

  /** Requests received while wedged that the client has not given up on (its connection still open). */
  get unansweredRequests(): number {
    return this.unanswered.size;
  }

  /**
   * Wedges the server (`what`: lists, watches or both): such requests are accepted and never answered, and (watches
   * wedged) the open watches get nothing more — no event, no bookmark, no end at their timeout, as over a connection
   * gone half-open. Returns the function that makes it answer again; what it left unanswered stays so.
   */
  wedge(what: 'all' | 'list' | 'watch' = 'all'): () => void {
    this.wedged = { list: what !== 'watch', watch: what !== 'list' };
    return () => void (this.wedged = { list: false, watch: false });
  }

  private watch(res: ServerResponse, namespace: string | undefined, selector: string, url: URL): void {
    this.calls.watch++;
    this.lastWatchQuery = url.searchParams;
    const from = Number(url.searchParams.get('resourceVersion') ?? '0');
    if (from > 0 && from < this.compactedBelow && this.goneAs === 'status')
      return status(res, 410, 'Expired', `too old resource version: ${from} (${this.compactedBelow})`);
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    res.flushHeaders();
    if (this.watchError) {
      const object = { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', ...this.watchError };
      res.end(JSON.stringify({ type: 'ERROR', object }) + '\n');
      return;
    }
    if (from > 0 && from < this.compactedBelow) {
      res.end(JSON.stringify(goneEvent(from, this.compactedBelow)) + '\n');
      return;
    }
    for (const c of this.changes)
      if (c.rv > from && inScope(c.pod, namespace, selector))
        res.write(JSON.stringify({ type: c.type, object: c.pod }) + '\n');
    const w = { res, namespace, selector, bookmarks: url.searchParams.get('allowWatchBookmarks') === 'true' };
    this.watches.add(w);
    res.on('close', () => this.watches.delete(w));
    const timeout = Number(url.searchParams.get('timeoutSeconds') ?? '0');
    if (timeout > 0) {
      // A watch that times out while wedged never ends: the server's end is what a half-open connection loses.
      const t = setTimeout(() => this.wedged.watch || res.end(), timeout * 1000);
      res.on('close', () => clearTimeout(t));
    }
  }

  private record(type: Change['type'], pod: PodK8s, quiet = false): void {
    pod.metadata.resourceVersion = String(++this.rv);
    const snapshot = structuredClone(pod);
    this.changes.push({ rv: this.rv, type, pod: snapshot });
    if (quiet || this.wedged.watch) return;
    for (const w of this.watches)
      if (inScope(snapshot, w.namespace, w.selector)) w.res.write(JSON.stringify({ type, object: snapshot }) + '\n');
  }

  /** Creates a pod (ADDED). `quiet`: recorded but not sent to open watches (as if they had missed it). */
  add(
    pod: Omit<PodK8s, 'metadata'> & { metadata: Omit<PodK8s['metadata'], 'uid'> & { uid?: string } },
    quiet = false,
  ): PodK8s {
    const full = structuredClone(pod) as PodK8s;
    full.metadata.uid ??= `0000${(++this.uidSeq).toString(16).padStart(4, '0')}-1111-4222-8333-${'4'.repeat(12)}`;
    full.metadata.namespace ??= 'default';
    full.metadata.creationTimestamp ??= new Date().toISOString();
    this.pods.set(key(full), full);
    this.record('ADDED', full, quiet);
    return full;
  }

  /** Changes a pod (MODIFIED). */
  update(namespace: string, name: string, change: (p: PodK8s) => void, quiet = false): PodK8s {
    const pod = this.pods.get(`${namespace}/${name}`);
    if (!pod) throw new Error(`no pod ${namespace}/${name}`);
    change(pod);
    this.record('MODIFIED', pod, quiet);
    return pod;
  }

  /** Deletes a pod (DELETED). */
  remove(namespace: string, name: string, quiet = false): void {
    const pod = this.pods.get(`${namespace}/${name}`);
    if (!pod) throw new Error(`no pod ${namespace}/${name}`);
    this.pods.delete(`${namespace}/${name}`);
    this.record('DELETED', pod, quiet);
  }

  /**
   * Compacts history: every version so far is gone. Open watches get the ERROR event
   * with a 410 Status (as the API server sends when a watch falls behind compaction),
   * unless `notify` is false (they stay open, behind); a watch from an old version is
   * refused as `goneAs` says.
   */
  compact(notify = true): void {
    this.compactedBelow = this.rv;
    this.changes.length = 0;
    if (!notify) return;
    for (const w of this.watches) w.res.end(JSON.stringify(goneEvent(this.rv, this.compactedBelow)) + '\n');
    this.watches.clear();
  }

  /** Sends a BOOKMARK with the current resourceVersion to the watches that asked for bookmarks. */
  bookmark(): string {
    const rv = String(this.rv);
    if (this.wedged.watch) return rv;
    for (const w of this.watches)
      if (w.bookmarks)
        w.res.write(
          JSON.stringify({
            type: 'BOOKMARK',
            object: { kind: 'Pod', apiVersion: 'v1', metadata: { resourceVersion: rv } },
          }) + '\n',
        );
    return rv;
  }

  /** The next `n` requests (list or watch) are answered 500. */
  failNext(n: number): void {
    this.failing = n;
  }

  /** The next `n` requests (list or watch) are answered 429 with `Retry-After: retryAfterSeconds` (API priority and fairness). */
  throttleNext(n: number, retryAfterSeconds: number): void {
    this.throttling = { count: n, retryAfterSeconds };
  }

  /** Ends every watch as the API server does at its timeout (the client resumes). */
  dropWatches(): void {
    for (const w of this.watches) w.res.end();
    this.watches.clear();
  }
}

const key = (p: PodK8s) => `${p.metadata.namespace}/${p.metadata.name}`;

const isWatch = (url: URL) => ['1', 'true'].includes(url.searchParams.get('watch') ?? '');

function goneEvent(from: number, oldest: number) {
  return {
    type: 'ERROR',
    object: {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: `too old resource version: ${from} (${oldest})`,
      reason: 'Expired',
      code: 410,
    },
  };
}

function status(res: ServerResponse, code: number, reason: string, message: string): void {
  res
    .writeHead(code, { 'content-type': 'application/json' })
    .end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code }));
}

function inScope(p: PodK8s, namespace: string | undefined, selector: string): boolean {
  if (namespace && p.metadata.namespace !== namespace) return false;
  const labels = p.metadata.labels ?? {};
  return selector
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .every((term) => {
      const ne = term.split('!=');
      if (ne.length === 2) return labels[ne[0] as string] !== ne[1];
      const eq = term.split(/==?/);
      if (eq.length === 2) return labels[eq[0] as string] === eq[1];
      return term.startsWith('!') ? !(term.slice(1) in labels) : term in labels;
    });
}

/** Pod objects in the states the tests and benchmark need. */
export const podFixtures = {
  running(name: string, namespace: string, labels: Record<string, string>, at = new Date().toISOString()) {
    return {
      metadata: { name, namespace, labels },
      spec: { nodeName: 'node-1', restartPolicy: 'Always' },
      status: {
        phase: 'Running',
        startTime: at,
        conditions: [
          { type: 'PodScheduled', status: 'True', lastTransitionTime: at },
          { type: 'Initialized', status: 'True', lastTransitionTime: at },
          { type: 'ContainersReady', status: 'True', lastTransitionTime: at },
          { type: 'Ready', status: 'True', lastTransitionTime: at },
        ],
        containerStatuses: [
          { name: 'app', ready: true, started: true, restartCount: 0, state: { running: { startedAt: at } } },
        ],
      },
    };
  },
  succeeded(name: string, namespace: string, labels: Record<string, string>, at = new Date().toISOString()) {
    return {
      metadata: { name, namespace, labels },
      spec: { nodeName: 'node-1', restartPolicy: 'Never' },
      status: {
        phase: 'Succeeded',
        startTime: at,
        conditions: [{ type: 'Ready', status: 'False', reason: 'PodCompleted', lastTransitionTime: at }],
        containerStatuses: [
          {
            name: 'job',
            ready: false,
            restartCount: 0,
            state: { terminated: { exitCode: 0, reason: 'Completed', startedAt: at, finishedAt: at } },
          },
        ],
      },
    };
  },
  /** The pod's app container crashed and is in CrashLoopBackOff. */
  crashLoop(p: PodK8s, at = new Date().toISOString()) {
    const c = firstContainer(p);
    c.restartCount = (c.restartCount ?? 0) + 1;
    c.ready = false;
    c.lastState = { terminated: { exitCode: 1, reason: 'Error', finishedAt: at } };
    c.state = { waiting: { reason: 'CrashLoopBackOff', message: 'back-off 10s restarting failed container' } };
    setCondition(p, 'Ready', 'False', at);
    setCondition(p, 'ContainersReady', 'False', at);
  },
  /** Running and ready again. */
  recovered(p: PodK8s, at = new Date().toISOString()) {
    const c = firstContainer(p);
    c.ready = true;
    c.state = { running: { startedAt: at } };
    setCondition(p, 'Ready', 'True', at);
    setCondition(p, 'ContainersReady', 'True', at);
  },
  /** Running but its readiness probe fails. */
  notReady(p: PodK8s, at = new Date().toISOString()) {
    firstContainer(p).ready = false;
    setCondition(p, 'Ready', 'False', at);
    setCondition(p, 'ContainersReady', 'False', at);
  },
};

function firstContainer(p: PodK8s): ContainerStatusK8s {
  const c = p.status?.containerStatuses?.[0];
  if (!c) throw new Error(`pod ${p.metadata.name} has no container status`);
  return c;
}

function setCondition(p: PodK8s, type: string, value: string, at: string): void {
  const c = p.status?.conditions?.find((x) => x.type === type);
  if (c && c.status !== value) Object.assign(c, { status: value, lastTransitionTime: at });
}
