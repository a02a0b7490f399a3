import type { StatusUpdateInput } from '@fleetwatch/contracts';
import { nextRetryDelayMs, type PushLog, type StatusPusher } from '@fleetwatch/pusher';
import { KubeApiError, type KubeApi, type WatchEvent } from './kube-api';
import { updateOfDeletedPod, updateOfPod, type PodK8s, type PodMappingOptions } from './pod-status';

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
}

export interface PodWatcherStats {
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
}

/**
 * List + watch of pods (the informer pattern): list (paged) for the state and a
 * resourceVersion, then watch from it, advancing with every event and bookmark; a watch
 * that ends is resumed from the last version; a 410 Gone (the version was compacted)
 * or the resync period means a relist, which also reports pods deleted meanwhile.
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
  private running = false;
  private loop: Promise<void> | null = null;
  private abort: AbortController | null = null;
  private resourceVersion: string | null = null;
  private lastRelist = 0;
  private resyncTimer: NodeJS.Timeout | null = null;
  private wakeSleep: (() => void) | null = null;

  constructor(
    private readonly api: KubeApi,
    private readonly pusher: StatusPusher,
    private readonly opts: PodWatcherOptions,
    private readonly log: PushLog,
  ) {}

  start(): void {
    this.running = true;
    this.loop = this.run();
    if (this.opts.resyncMs > 0)
      this.resyncTimer = setInterval(
        () => {
          if (Date.now() - this.lastRelist >= this.opts.resyncMs) {
            this.resourceVersion = null;
            this.abort?.abort();
          }
        },
        Math.min(this.opts.resyncMs, 60_000),
      );
  }

  async stop(): Promise<void> {
    this.running = false;
    if (this.resyncTimer) clearInterval(this.resyncTimer);
    this.abort?.abort();
    this.wakeSleep?.();
    await this.loop;
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

  private async run(): Promise<void> {
    let attempt = 0;
    while (this.running) {
      this.abort = new AbortController();
      try {
        if (this.resourceVersion === null) await this.relist(this.abort.signal);
        this.stats.connected = true;
        attempt = 0;
        await this.api.watchPods(
          this.opts.namespace,
          this.opts.labelSelector,
          this.resourceVersion as string,
          (e) => this.onEvent(e),
          this.abort.signal,
          this.opts.watchTimeoutSeconds,
        );
        // The server closed the watch (its timeout) or a resync aborted it: resume or relist.
        continue;
      } catch (err) {
        this.stats.connected = false;
        if (!this.running) break;
        if (err instanceof KubeApiError && err.status === 410) {
          this.stats.gone++;
          this.log.info('watch expired (410 Gone): relisting', { resourceVersion: this.resourceVersion });
          this.resourceVersion = null;
          continue;
        }
        this.log.warn('kubernetes API unreachable or watch failed: retrying', { error: (err as Error).message });
      }
      this.stats.reconnects++;
      await this.sleep(
        nextRetryDelayMs(attempt++, undefined, { baseMs: this.opts.reconnectBaseMs, maxMs: this.opts.reconnectMaxMs }),
      );
    }
    this.stats.connected = false;
  }

  /** Lists every matching pod, reports each, reports pods gone since as deleted. */
  async relist(signal?: AbortSignal): Promise<void> {
    const started = performance.now();
    const list = await this.api.listPods(this.opts.namespace, this.opts.labelSelector, this.opts.listPageSize, signal);
    const seen = new Set<string>();
    const now = this.mapping();
    for (const pod of list.items) {
      seen.add(pod.metadata.uid);
      this.emit(pod, updateOfPod(pod, now));
    }
    for (const [uid, k] of [...this.known]) {
      if (seen.has(uid)) continue;
      this.known.delete(uid);
      this.pusher.enqueue(updateOfDeletedPod({ metadata: { uid, name: k.name, namespace: k.namespace } }, now));
    }
    this.resourceVersion = list.resourceVersion;
    this.lastRelist = Date.now();
    this.stats.relists++;
    this.stats.lastRelistMs = Math.round(performance.now() - started);
    this.stats.lastRelistPods = list.items.length;
    this.stats.watched = this.known.size;
    this.log.info('relist done', {
      pods: list.items.length,
      resourceVersion: list.resourceVersion,
      ms: this.stats.lastRelistMs,
    });
  }

  private onEvent(e: WatchEvent): void {
    const rv = e.object && 'metadata' in e.object ? e.object.metadata?.resourceVersion : undefined;
    if (e.type === 'BOOKMARK') {
      if (rv) this.resourceVersion = rv;
      return;
    }
    if (e.type !== 'ADDED' && e.type !== 'MODIFIED' && e.type !== 'DELETED') return;
    this.stats.events++;
    const pod = e.object;
    const seenAt = new Date().toISOString();
    if (e.type === 'DELETED') {
      this.known.delete(pod.metadata.uid);
      this.pusher.enqueue(updateOfDeletedPod(pod, this.mapping(), seenAt));
    } else {
      this.emit(pod, updateOfPod(pod, this.mapping(), seenAt));
    }
    if (rv) this.resourceVersion = rv;
    this.stats.watched = this.known.size;
  }

  private emit(pod: PodK8s, update: StatusUpdateInput): void {
    const before = this.known.get(pod.metadata.uid);
    this.known.set(pod.metadata.uid, {
      updateId: update.updateId as string,
      namespace: pod.metadata.namespace,
      name: pod.metadata.name,
    });
    if (before?.updateId === update.updateId) return;
    this.pusher.enqueue(update);
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      this.wakeSleep = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }
}
