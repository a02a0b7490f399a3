import {
  ADD,
  CONNECT,
  DELETE,
  ERROR,
  UPDATE,
  ListWatch,
  Watch,
  type Informer,
  type KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
} from '@kubernetes/client-node';
import type { StatusUpdateInput } from '@fleetwatch/contracts';
import {
  datedAfter,
  datedAtMs,
  InstanceFloors,
  JsonStateFile,
  laterFloor,
  nextRetryDelayMs,
  type PushLog,
  type StatusPusher,
} from '@fleetwatch/pusher';
import { z } from 'zod';
import { KubeApiError, listPods, podsPath, probePods } from './kube-api';
import { stuckTerminatingAt, updateOfDeletedPod, updateOfPod, type PodK8s, type PodMappingOptions } from './pod-status';

export interface PodWatcherOptions {
  /** Empty: every namespace (needs a ClusterRole). */
  namespace?: string;
  labelSelector: string;
  instancePrefix: string;
  location?: string;
  source: string;
  maxAgeMs: number;
  /** A full relist this often, besides start and 410 Gone (0: never). */
  resyncMs: number;
  listPageSize: number;
  reconnectBaseMs: number;
  reconnectMaxMs: number;
  watchTimeoutSeconds: number;
  /** A watch heard nothing from this long (no event, no bookmark) is checked with a probe (probePods). */
  probeAfterMs: number;
  /** A probe, and a watch request's wait for its response headers, given no answer this long: the server is gone. */
  answerTimeoutMs: number;
  /** Test hook: a list page's wait for an answer (ms; default 30 s). */
  listTimeoutMs?: number;
  /**
   * Where the pods reported are kept across restarts (see knownPodsFileSchema); none: a restarted watcher knows only
   * what it lists.
   */
  stateFile?: string;
  /** Test hook: the state file's write delay (ms). */
  stateDebounceMs?: number;
}

export interface PodWatcherStats {
  /**
   * The API server answered lately: the pods are listed and watched, and the watch heard from (an event, a bookmark,
   * an answered probe) within probeAfterMs + answerTimeoutMs. The pusher refreshes states only while this is true.
   */
  connected: boolean;
  relists: number;
  gone: number;
  lastRelistMs: number;
  lastRelistPods: number;
  events: number;
  reconnects: number;
  watched: number;
}

interface Known {
  updateId: string;
  namespace?: string;
  name: string;
  /** Epoch ms the pod's last update sent was dated: the next is dated after it (datedAfter). */
  at?: number;
}

/**
 * The state file: every pod reported and not yet known to be removed (its removal accepted by the ingest), by uid. A
 * restarted watcher takes them as known before its first list, so a pod deleted while no watcher ran is reported
 * removed by that list (not one replaced under its name meanwhile), instead of staying STALE for ever.
 */
const knownPodsFileSchema = z.object({
  version: z.literal(1),
  /**
   * What the watcher that wrote it watched: a file of another watcher (a path set twice, a namespace, selector, prefix
   * or location changed since) is ignored, or its pods — live ones under another watcher, or instances named with
   * another prefix — would be reported removed.
   */
  watching: z.string().max(4096),
  pods: z.record(
    z.string().max(128),
    z.object({
      namespace: z.string().max(253).optional(),
      name: z.string().max(253),
      /** When its last update was dated (epoch ms; absent in files of watchers before it was kept). */
      at: z.number().int().nonnegative().max(8.64e15).optional(),
    }),
  ),
  /**
   * When the last update of each pushed instance (namespace/name) was dated, whichever pod (uid) it was about
   * (InstanceFloors). Absent in files of watchers before it was kept; a watcher of the version before drops it.
   */
  instances: z.record(z.string().max(512), z.number().int().nonnegative().max(8.64e15)).optional(),
});
type KnownPodsFile = z.infer<typeof knownPodsFileSchema>;

/**
 * Stops an informer. ListWatch.stop() aborts the watch request it holds, but one still
 * connecting is stored only once connected, after the abort: stopping again a little
 * later closes it (the server-side timeoutSeconds bounds it in any case).
 */
async function retire(informer: Informer<KubernetesObject>): Promise<void> {
  await informer.stop();
  for (const ms of [1_000, 5_000, 30_000]) setTimeout(() => void informer.stop(), ms).unref();
}

/**
 * What the informer's cache keeps of a pod once it is mapped: the keys it needs (namespace,
 * name, resourceVersion to compare versions) and the uid. The cache holds the very object
 * handed to the callbacks, so it is pruned in place; whole pod objects (spec, managedFields)
 * would be kilobytes each against the --max-old-space-size=96 heap of the image.
 */
function pruned(pod: PodK8s): PodK8s {
  const { name, namespace, uid, resourceVersion } = pod.metadata;
  for (const k of Object.keys(pod)) delete (pod as unknown as Record<string, unknown>)[k];
  pod.metadata = { name, namespace, uid, resourceVersion };
  prunedPods.add(pod);
  return pod;
}
/** setTimeout's longest delay: a later stuck time (a grace period of weeks) is left to the resync period's relist. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Pruned pods: the informer's add after a list hands these (already reported) back. */
const prunedPods = new WeakSet<object>();

/** The informer hands back the objects as the API sent them (raw JSON): pods. */
const asPod = (o: KubernetesObject) => o as unknown as PodK8s;

/** A watch's ERROR event's object: a Status. */
interface WatchStatus {
  code?: number;
  reason?: string;
  message?: string;
}

/**
 * A watch stream's ERROR event other than 410 Gone, as the error that ends the watch: resumed from its version after
 * the backoff. One the server keeps sending (a version it cannot serve for good: a cluster restored from a backup) is
 * ended by the resync period's relist.
 */
export class WatchStreamError extends Error {
  readonly statusCode: number | undefined;

  constructor(status: WatchStatus | null) {
    super(`watch ERROR event: ${status?.code ?? '?'} ${status?.reason ?? ''} ${status?.message ?? ''}`.trim());
    this.statusCode = typeof status?.code === 'number' ? status.code : undefined;
  }
}

/**
 * client-node's Watch with what 1.4.0 leaves out (watch.js overrides its own AbortSignal.timeout): the request waits
 * `timeoutMs` at most for the response headers (node-fetch's `timeout`, which stops counting once they come, not the
 * stream after them), and `answered` is called when they came with a 200 — the watch is open. Without the timeout a
 * request to a server that never answers hung for ever, out of reach of ListWatch.stop() (which holds the request
 * only once it is answered).
 */
class AnsweringWatch extends Watch {
  private answered: () => void = () => undefined;
  /** The open watch request's controller (the latest one asked for). */
  private open: AbortController | null = null;
  /** Requests ended by restart(): their end is a normal one (resumed from the informer's version). */
  private readonly restarted = new WeakSet<AbortController>();

  constructor(kc: KubeConfig, timeoutMs: number) {
    // Watch reads the server and the fetch options from its config: only the fetch options are added to.
    const config = Object.create(kc) as KubeConfig;
    config.applyToFetchOptions = async (opts) => ({ ...(await kc.applyToFetchOptions(opts)), timeout: timeoutMs });
    super(config);
  }

  onAnswer(answered: () => void): this {
    this.answered = answered;
    return this;
  }

  override async watch(...[path, query, callback, done]: Parameters<Watch['watch']>): ReturnType<Watch['watch']> {
    let failed = false;
    // Set once super.watch returns: a request failing before that (no answer) ends before it is known.
    const request: { controller?: AbortController } = {};
    /** An ERROR event other than 410 Gone in the stream (the informer ignores those: see below). */
    let streamError: WatchStreamError | undefined;
    const onEvent: typeof callback = (phase, obj, raw) => {
      if (phase === 'ERROR' && (obj as { code?: unknown } | null)?.code !== 410)
        streamError ??= new WatchStreamError(obj as WatchStatus);
      return callback(phase, obj, raw);
    };
    const controller = await super.watch(path, query, onEvent, (err: unknown) => {
      // Ended by restart(): as a watch the server ended — the informer resumes from its version, no relist.
      if (request.controller && this.restarted.has(request.controller)) return done(null);
      // A stream that carried an ERROR event (not 410) ends as an error, not as a watch the server ended: the informer
      // took the end for a normal one and asked again at once, from the same version — the same error back, some 700
      // watch requests a second against the API server for as long as it lasted (a 504 "Too large resource
      // version" from a lagging API server, a 500). As an error it goes through the backoff (onError).
      err ??= streamError ?? null;
      if (err) failed = true;
      done(err);
    });
    request.controller = controller;
    this.open = controller;
    if (!failed) this.answered();
    return controller;
  }

  /** Ends the open watch request: the informer asks for a new one from its last version (no relist). */
  restart(): boolean {
    const open = this.open;
    if (!open || open.signal.aborted) return false;
    this.restarted.add(open);
    open.abort();
    return true;
  }
}

/**
 * Pods through @kubernetes/client-node's informer (what makeInformer builds: list, then watch from the
 * list's resourceVersion, advancing with every event and bookmark; a watch the server ends
 * is resumed from the last version; a 410 Gone — an ERROR event or the HTTP status —
 * makes it relist, and the relist reports pods deleted meanwhile). The informer stops on
 * any other error: it is started again after a backoff. The resync period starts a fresh
 * informer, i.e. a full relist.
 *
 * `connected` (what keeps the pusher refreshing states) means the API server answered lately. client-node's CONNECT
 * fires before the list and the watch request, whatever comes of them, so it is not taken for an answer: the list, a
 * watch opened, its events and bookmarks are. Every request is bounded: a list page and the wait for a watch's headers
 * by their timeouts; an open watch by a probe once it has been silent for probeAfterMs (a wedged server: not connected
 * within probeAfterMs + answerTimeoutMs + a tick, 45 s by default), and by its own timeout — the server ends every
 * watch at timeoutSeconds, so one still open well after lost that end (a half-open connection).
 */
export class PodWatcher {
  readonly stats: PodWatcherStats = {
    connected: false,
    relists: 0,
    gone: 0,
    lastRelistMs: 0,
    lastRelistPods: 0,
    events: 0,
    reconnects: 0,
    watched: 0,
  };
  private readonly known = new Map<string, Known>();
  /**
   * When each pushed instance's (namespace/name's) last update was dated, whichever pod it was about: a pod recreated
   * under its name (a StatefulSet's: a new uid, no floor of its own) is dated after the old one's last update. Kept in
   * the state file.
   */
  private readonly floors: InstanceFloors;
  /** Queued updates by id → pod uid (until accepted or dropped). */
  private readonly uidOf = new Map<string, string>();
  /** Deletions queued and not yet accepted, by pod uid (with the deletion's update id). */
  private readonly removing = new Map<string, Known>();
  /** Pods reported `stopping`, by uid: the timer that reports one stuck if nothing about it changes by then. */
  private readonly stuckTimers = new Map<string, NodeJS.Timeout>();
  private running = false;
  private informer: ListWatch<KubernetesObject> | null = null;
  /** The current informer's watch requests. */
  private watchRequests: AnsweringWatch | null = null;
  /** True until the current informer's first list: a list with this false is a 410 relist. */
  private listExpected = false;
  private attempt = 0;
  private lastRelist = 0;
  private resyncTimer: NodeJS.Timeout | null = null;
  /** The backoff before the informer starts again (null: not waiting). */
  private restartTimer: NodeJS.Timeout | null = null;
  private livenessTimer: NodeJS.Timeout | null = null;
  /** When the API server last answered (a list, a watch opened, an event or bookmark, a probe). */
  private heardAt = 0;
  /** The informer's version at the last liveness check: a bookmark moves it, and no callback tells. */
  private heardVersion = '';
  /** When the current watch was answered (0: none open — listing, connecting, waiting to start again, stopped). */
  private watchSince = 0;
  private probing = false;
  /** Probes in a row without an answer while this watch is open (see checkLiveness). */
  private probeFailures = 0;
  /** When the last probe was found unanswered: the next waits answerTimeoutMs (a slow server is not asked at once). */
  private probeFailedAt = 0;
  /**
   * The last failure was an ERROR event in a watch stream the server had answered 200 (WatchStreamError): the next watch
   * answered is not taken for connected — the server answers every such watch and then ends it with the error again —
   * until it delivers (an event, a bookmark), it ends as the server ends a watch, or a list is done.
   */
  private streamFailing = false;
  private readonly state: JsonStateFile<KnownPodsFile>;
  /** What this watcher watches (cluster, namespace, selector, prefix, location), as its state file records it. */
  private readonly watching: string;
  /** Reading the state file, before the first informer starts. */
  private loading: Promise<void> = Promise.resolve();

  constructor(
    private readonly kc: KubeConfig,
    private readonly pusher: StatusPusher,
    private readonly opts: PodWatcherOptions,
    private readonly log: PushLog,
  ) {
    this.watching = JSON.stringify([
      kc.getCurrentCluster()?.server ?? '',
      opts.namespace ?? '',
      opts.labelSelector,
      opts.instancePrefix,
      opts.location ?? '',
    ]);
    this.floors = new InstanceFloors(opts.maxAgeMs);
    this.state = new JsonStateFile(
      opts.stateFile,
      knownPodsFileSchema,
      () => {
        const pods: KnownPodsFile['pods'] = {};
        for (const [uid, k] of [...this.removing, ...this.known])
          pods[uid] = {
            ...(k.namespace === undefined ? {} : { namespace: k.namespace }),
            name: k.name,
            ...(k.at === undefined ? {} : { at: k.at }),
          };
        const instances = this.floors.toRecord();
        return {
          version: 1 as const,
          watching: this.watching,
          pods,
          ...(Object.keys(instances).length > 0 ? { instances } : {}),
        };
      },
      log,
      opts.stateDebounceMs,
    );
    pusher.onAccepted((updates) => {
      for (const u of updates) {
        // The pusher's refreshes too (dated now, by it): a restarted watcher dates the instance after them.
        // Written at most once a FLOORS_PERSIST_EVERY_MS for floors alone (refreshes raise them every few seconds).
        if (
          typeof u.occurredAt === 'string' &&
          this.floors.sent(u.instanceId, Date.parse(u.occurredAt)) &&
          this.floors.persistDue()
        )
          this.state.changed();
        const uid = this.uidOf.get(u.updateId as string);
        if (uid === undefined) continue;
        this.uidOf.delete(u.updateId as string);
        if (this.removing.get(uid)?.updateId === u.updateId) {
          this.removing.delete(uid);
          this.state.changed();
        }
      }
    });
    // An update pushed out of the full queue was never delivered: forgotten as the pod's latest (a deletion: the
    // pod known again), so the next relist (start, 410, the resync period) sends it again. A refused one would be
    // refused again: not resent.
    pusher.onDropped((updates, reason) => {
      for (const u of updates) {
        const id = u.updateId as string;
        const uid = this.uidOf.get(id);
        if (uid === undefined) continue;
        this.uidOf.delete(id);
        const removal = this.removing.get(uid);
        if (removal?.updateId === id) this.removing.delete(uid);
        this.state.changed();
        if (reason !== 'overflow') continue;
        if (removal?.updateId === id) {
          if (!this.known.has(uid)) this.known.set(uid, { ...removal, updateId: '' });
        } else {
          const k = this.known.get(uid);
          if (k?.updateId === id) this.known.set(uid, { ...k, updateId: '' });
        }
      }
    });
  }

  /** The version the informer's watch has reached ('' before the first list and after a 410). */
  get resourceVersion(): string {
    return this.informer?.latestResourceVersion() ?? '';
  }

  start(): void {
    this.running = true;
    // The pods an earlier run reported are known before the first list, which reports those gone since as removed.
    this.loading = this.state.load().then((data) => {
      if (data && data.watching !== this.watching) {
        this.log.warn('watcher state file written by a watcher of something else: starting without it', {
          file: this.opts.stateFile,
          written: data.watching,
          watching: this.watching,
        });
        data = undefined;
      }
      this.floors.load(data?.instances);
      for (const [uid, p] of Object.entries(data?.pods ?? {}))
        if (!this.known.has(uid)) this.known.set(uid, { updateId: '', namespace: p.namespace, name: p.name, at: p.at });
      if (this.running) this.startInformer();
    });
    this.livenessTimer = setInterval(
      () => this.checkLiveness(),
      Math.max(10, Math.min(5_000, Math.floor(this.opts.probeAfterMs / 4))),
    );
    this.livenessTimer.unref();
    if (this.opts.resyncMs > 0)
      this.resyncTimer = setInterval(
        () => {
          if (Date.now() - this.lastRelist < this.opts.resyncMs) return;
          this.log.info('resync period: relisting');
          this.startInformer();
        },
        Math.min(this.opts.resyncMs, 60_000),
      );
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loading;
    if (this.resyncTimer) clearInterval(this.resyncTimer);
    if (this.livenessTimer) clearInterval(this.livenessTimer);
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.restartTimer = null;
    this.watchSince = 0;
    for (const timer of this.stuckTimers.values()) clearTimeout(timer);
    this.stuckTimers.clear();
    const informer = this.informer;
    this.informer = null;
    if (informer) await retire(informer);
    this.stats.connected = false;
  }

  /** Writes the state file (at shutdown, once the pusher has drained: removals accepted by then are left out). */
  persist(): Promise<void> {
    return this.state.flush();
  }

  private mapping(): PodMappingOptions {
    return {
      instancePrefix: this.opts.instancePrefix,
      location: this.opts.location,
      source: this.opts.source,
      now: Date.now(),
      maxAgeMs: this.opts.maxAgeMs,
    };
  }

  /** A new informer (start, resync period): it lists first. The one it replaces is stopped. */
  private startInformer(): void {
    if (this.informer) void retire(this.informer);
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.restartTimer = null;
    this.watchSince = 0;
    // The watch path carries the query the informer does not set itself (it adds watch,
    // resourceVersion and labelSelector): bookmarks, and the server-side watch timeout.
    const watchPath = `${podsPath(this.opts.namespace)}?${new URLSearchParams({
      allowWatchBookmarks: 'true',
      timeoutSeconds: String(this.opts.watchTimeoutSeconds),
    })}`;
    // What makeInformer builds, with the watch's requests bounded and their answers seen (AnsweringWatch).
    const watch = new AnsweringWatch(this.kc, this.opts.answerTimeoutMs);
    this.watchRequests = watch;
    const informer: ListWatch<KubernetesObject> = new ListWatch<KubernetesObject>(
      watchPath,
      watch,
      () => this.list(informer),
      false,
      this.opts.labelSelector || undefined,
    );
    const current = () => this.running && this.informer === informer;
    watch.onAnswer(() => {
      if (!current()) return;
      this.watchSince = Date.now();
      this.heard(!this.streamFailing);
    });
    informer.on(ADD, (o) => current() && this.onChange(asPod(o)));
    informer.on(UPDATE, (o) => current() && this.onChange(asPod(o)));
    informer.on(DELETE, (o) => current() && this.onDelete(asPod(o)));
    // Fired before the list and the watch request, whatever comes of them: no answer of the server (`connected` is
    // set by those). The watch before it has ended.
    informer.on(CONNECT, () => {
      if (!current()) return;
      // A watch answered and then ended without an error (the server's timeout, restart()) was a healthy one: the
      // backoff starts over. Before, only a list or a pod's change reset it, so a watcher that saw no change kept the
      // backoff of every outage since it started — its first retry after the next one waited the longest delay. Only a
      // watch open a probe period counts: one a proxy answers and drops at once would otherwise be retried at the base
      // delay for ever (client-node re-watches a normally ended watch without a delay of its own).
      if (this.watchSince > 0 && Date.now() - this.watchSince >= this.opts.probeAfterMs) {
        this.attempt = 0;
        this.streamFailing = false;
      }
      this.watchSince = 0;
    });
    informer.on(ERROR, (err) => current() && this.onError(informer, err));
    this.informer = informer;
    this.listExpected = true;
    void informer.start();
  }

  /** The informer's list function: lists every matching pod, reports each and the pods gone since. */
  private async list(informer: Informer<KubernetesObject>): Promise<KubernetesListObject<KubernetesObject>> {
    if (!this.running || this.informer !== informer) throw new Error('informer replaced');
    if (!this.listExpected) {
      this.stats.gone++;
      this.listExpected = true; // a retry of this list is the same relist
      this.log.info('watch expired (410 Gone): relisting');
    }
    const started = performance.now();
    const seen = new Set<string>();
    // A pod replaced under its name meanwhile (a StatefulSet's web-0) is not reported removed: its instance
    // (namespace/name) is the listed pod, and a removal dated now would come after that pod's state and win.
    const listedNames = new Set<string>();
    const now = this.mapping();
    // Each page reported and pruned as it comes: whole pods held until the last page were tens of megabytes at
    // 10,000 pods (a heap of 256 MB, a limit of 192 Mi). The informer fires add/update for these next; each is already
    // reported, with the same updateId.
    const list = await listPods(
      this.kc,
      this.opts.namespace,
      this.opts.labelSelector,
      this.opts.listPageSize,
      this.opts.listTimeoutMs,
      (page) => {
        // Replaced or stopped meanwhile: failing here keeps this informer from reporting and opening a watch.
        if (!this.running || this.informer !== informer) throw new Error('informer replaced');
        for (const pod of page) {
          seen.add(pod.metadata.uid);
          listedNames.add(`${pod.metadata.namespace ?? ''}/${pod.metadata.name}`);
          this.emit(pod, updateOfPod(pod, now));
          pruned(pod);
        }
      },
    );
    // Replaced or stopped meanwhile: failing here keeps this informer from opening a watch.
    if (!this.running || this.informer !== informer) throw new Error('informer replaced');
    this.listExpected = false;
    this.attempt = 0;
    this.heard(true);
    for (const [uid, k] of [...this.known]) {
      if (seen.has(uid)) continue;
      this.known.delete(uid);
      this.forgetStuckTimer(uid);
      if (listedNames.has(`${k.namespace ?? ''}/${k.name}`)) continue;
      this.sendRemoval(uid, k, updateOfDeletedPod({ metadata: { uid, name: k.name, namespace: k.namespace } }, now));
    }
    this.state.changed();
    this.lastRelist = Date.now();
    this.stats.relists++;
    this.stats.lastRelistMs = Math.round(performance.now() - started);
    this.stats.lastRelistPods = list.items.length;
    this.stats.watched = this.known.size;
    this.log.info('relist done', {
      pods: list.items.length,
      resourceVersion: list.metadata.resourceVersion,
      ms: this.stats.lastRelistMs,
    });
    return list as unknown as KubernetesListObject<KubernetesObject>;
  }

  private onChange(pod: PodK8s): void {
    this.heard(true);
    if (prunedPods.has(pod)) return;
    this.stats.events++;
    this.attempt = 0;
    this.emit(pod, updateOfPod(pod, this.mapping(), new Date().toISOString()));
    pruned(pod);
    this.stats.watched = this.known.size;
  }

  private onDelete(pod: PodK8s): void {
    // A pod the relist found gone is already reported (the informer reports it after the list).
    const k = this.known.get(pod.metadata.uid);
    this.heard(true);
    if (!k || !this.known.delete(pod.metadata.uid)) return;
    this.forgetStuckTimer(pod.metadata.uid);
    this.stats.events++;
    this.sendRemoval(pod.metadata.uid, k, updateOfDeletedPod(pod, this.mapping(), new Date().toISOString()));
    this.stats.watched = this.known.size;
  }

  /** The informer stopped (list or watch failed): start it again after a backoff, resuming from its version. */
  private onError(informer: Informer<KubernetesObject>, err: unknown): void {
    if (err instanceof WatchStreamError) this.streamFailing = true;
    // A 429 (API priority and fairness) or 503 says when to come back: its Retry-After, not the watcher's own backoff.
    const retryAfter = err instanceof KubeApiError ? err.retryAfterMs : undefined;
    this.retry(
      'kubernetes API unreachable or watch failed: retrying',
      {
        error: (err as Error)?.message ?? String(err),
        ...(retryAfter !== undefined ? { retryAfterMs: retryAfter } : {}),
      },
      () => this.informer === informer && void informer.start(),
      retryAfter,
    );
  }

  /** The API server answered (`watching`: what it said was the pods — a list, a watch opened, an event, a bookmark). */
  private heard(watching: boolean): void {
    this.heardAt = Date.now();
    if (watching) {
      this.streamFailing = false;
      this.stats.connected = true;
      this.probeFailures = 0;
    }
  }

  /**
   * Each tick while a watch is open: a watch silent for probeAfterMs is probed (probePods), and given up when the API
   * server does not answer the probe within answerTimeoutMs, or when it is still open well after the server should have
   * ended it (timeoutSeconds): its connection is half-open — the probes, on new connections, are answered meanwhile.
   */
  private checkLiveness(): void {
    const informer = this.informer;
    if (!this.running || !informer || this.watchSince === 0) return;
    const version = informer.latestResourceVersion();
    if (version && version !== this.heardVersion) {
      this.heardVersion = version;
      this.heard(true);
    }
    const now = Date.now();
    // Answered after ERROR events and open a probe period since without one: the error is over, though the pods are
    // quiet (no event, no bookmark). Else not connected — no refreshes — until the watch's timeout ended it (minutes).
    if (this.streamFailing && now - this.watchSince >= this.opts.probeAfterMs) this.heard(true);
    if (now - this.watchSince > this.opts.watchTimeoutSeconds * 1000 + this.opts.probeAfterMs)
      return this.lost(informer, 'kubernetes watch outlived its timeout (its end lost): restarting it with a relist', {
        openMs: now - this.watchSince,
      });
    if (this.probing || now - this.heardAt < this.opts.probeAfterMs) return;
    if (this.probeFailures > 0 && now - this.probeFailedAt < this.opts.answerTimeoutMs) return;
    this.probing = true;
    const silentMs = now - this.heardAt;
    const current = () => this.running && this.informer === informer && this.watchSince > 0;
    const watchRequests = this.watchRequests;
    const answered = () => {
      this.heard(false);
      // Found not answering once, then answering: the open watch may have died meanwhile (its connection cut while the
      // server was away: a probe on a new connection says nothing of it), so it is asked for again from its version —
      // one watch request, no list. Connected once that one answers.
      if (this.probeFailures > 0 && current()) {
        this.probeFailures = 0;
        this.log.info('kubernetes API answers again: asking for the watch again from its version (no relist)', {
          silentMs: Date.now() - now + silentMs,
        });
        if (!watchRequests?.restart())
          this.lost(informer, 'kubernetes watch could not be restarted: restarting it with a relist', {});
      }
    };
    probePods(this.kc, this.opts.namespace, this.opts.answerTimeoutMs)
      .then(answered, (err: unknown) => {
        // An error answered is an answer: the watch's own requests say whether the pods can be watched.
        if (err instanceof KubeApiError) return answered();
        if (!current()) return;
        const fields = { error: (err as Error)?.message ?? String(err), silentMs };
        // Once: not connected (refreshes stop: what the pods do is not known now), and probed again at the next tick.
        // A relist at once cost an overloaded API server (slow, not gone) a full list of the namespace per slow
        // answer; a server that answers the next probe keeps its watch.
        if (++this.probeFailures < 2) {
          this.probeFailedAt = Date.now();
          this.stats.connected = false;
          this.log.warn(
            'kubernetes API not answering a probe: not connected (no refreshes) until it answers; a second silence restarts the watch with a relist',
            fields,
          );
          return;
        }
        this.probeFailures = 0;
        this.lost(informer, 'kubernetes API not answering: restarting the watch with a relist', fields);
      })
      .finally(() => (this.probing = false));
  }

  /**
   * The API server no longer answers the watch: as an error, but the informer is replaced by a fresh one (a relist)
   * after the backoff — the old one's watch request may still hang, and its end (the error it is cut with) would
   * start it again beside the new one. Retired at once, it is no longer current: what it does after is ignored.
   */
  private lost(informer: ListWatch<KubernetesObject>, message: string, fields: Record<string, unknown>): void {
    this.informer = null;
    void retire(informer);
    this.retry(message, fields, () => this.informer === null && this.startInformer());
  }

  /** Not connected (no refreshes): `again` after a backoff, unless stopped meanwhile. */
  private retry(message: string, fields: Record<string, unknown>, again: () => void, retryAfter?: number): void {
    this.stats.connected = false;
    this.watchSince = 0;
    this.probeFailures = 0;
    this.stats.reconnects++;
    const backoff = { baseMs: this.opts.reconnectBaseMs, maxMs: this.opts.reconnectMaxMs };
    const own = nextRetryDelayMs(this.attempt++, undefined, backoff);
    // The server's Retry-After is a floor, not a replacement: the max-inflight filter answers every 429 `Retry-After: 1`
    // (a 0, a past date the same): taken alone, an overloaded API server was asked again every second or so for ever.
    const delay = retryAfter === undefined ? own : Math.max(own, nextRetryDelayMs(0, retryAfter, backoff));
    this.log.warn(message, { ...fields, delayMs: delay });
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.restartTimer = setTimeout(() => {
      this.restartTimer = null;
      if (this.running) again();
    }, delay);
  }

  private emit(pod: PodK8s, mapped: StatusUpdateInput): void {
    const before = this.known.get(pod.metadata.uid);
    const again = before?.updateId === mapped.updateId;
    // Dated after the pod's last update, and after its instance's, whichever pod that was about: one recreated under
    // the name (a new uid) has no floor of its own, and its first state, dated by its own times, came before the old
    // one's last.
    const update = again ? mapped : datedAfter(mapped, this.floorOf(before?.at, mapped.instanceId));
    const k: Known = {
      updateId: update.updateId as string,
      namespace: pod.metadata.namespace,
      name: pod.metadata.name,
      at: again ? before?.at : datedAtMs(update, before?.at),
    };
    this.known.set(pod.metadata.uid, k);
    this.watchGracePeriod(pod, update, k);
    if (again) return;
    this.send(pod.metadata.uid, update);
  }

  /**
   * A pod reported `stopping` is reported stuck (`stopped`: DOWN) once it outlasts its grace period by a minute, though
   * nothing about it changes then — a node out of reach sends nothing more (podLifecycle, STUCK_TERMINATING_AFTER_MS).
   * The stuck update is made now: the informer's pod object is pruned once mapped. Any later state of the pod (or its
   * deletion) replaces the timer.
   */
  private watchGracePeriod(pod: PodK8s, update: StatusUpdateInput, k: Known): void {
    const uid = pod.metadata.uid;
    this.forgetStuckTimer(uid);
    if (update.status !== 'stopping') return;
    const at = stuckTerminatingAt(pod);
    if (at === undefined || at - Date.now() > MAX_TIMER_MS) return;
    const stuckState = updateOfPod(pod, { ...this.mapping(), now: at }, new Date(at).toISOString());
    const timer = setTimeout(
      () => {
        this.stuckTimers.delete(uid);
        if (!this.running || this.known.get(uid)?.updateId !== update.updateId) return;
        const stuck = datedAfter(stuckState, this.floorOf(k.at, stuckState.instanceId));
        this.known.set(uid, { ...k, updateId: stuck.updateId as string, at: datedAtMs(stuck, k.at) });
        this.stats.events++;
        this.send(uid, stuck);
      },
      Math.max(0, at - Date.now()),
    );
    timer.unref();
    this.stuckTimers.set(uid, timer);
  }

  /** The floor of a pod's next update: its own (`own`), or its instance's when that is later. */
  private floorOf(own: number | undefined, instanceId: string): number | undefined {
    return laterFloor(own, this.floors.get(instanceId));
  }

  private forgetStuckTimer(uid: string): void {
    const timer = this.stuckTimers.get(uid);
    if (timer === undefined) return;
    clearTimeout(timer);
    this.stuckTimers.delete(uid);
  }

  private send(uid: string, update: StatusUpdateInput, final = false): boolean {
    // A deletion is the pod's last update: the pusher stops reporting its instance again (refreshes).
    if (!this.pusher.enqueue(update, { final })) return false;
    this.floors.sent(update.instanceId, datedAtMs(update, undefined));
    this.uidOf.set(update.updateId as string, uid);
    this.state.changed();
    // Bounded like the queue it mirrors (what is pushed out of it is removed by the drop listener anyway).
    if (this.uidOf.size > this.pusher.capacity + 1_000) this.uidOf.delete(this.uidOf.keys().next().value as string);
    return true;
  }

  private sendRemoval(uid: string, k: Known, removal: StatusUpdateInput): void {
    const update = datedAfter(removal, this.floorOf(k.at, removal.instanceId));
    if (this.send(uid, update, true))
      this.removing.set(uid, { ...k, updateId: update.updateId as string, at: datedAtMs(update, k.at) });
  }
}
