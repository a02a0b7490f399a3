import type Dockerode from 'dockerode';
import { toStorable, truncateText, type StatusUpdateInput } from '@fleetwatch/contracts';
import {
  datedAfter,
  datedAtMs,
  InstanceFloors,
  laterFloor,
  nextRetryDelayMs,
  type PushLog,
  type StatusPusher,
} from '@fleetwatch/pusher';
import {
  eventSubject,
  instanceIdOf,
  isLifecycleAction,
  saltedUpdateId,
  updateOfContainer,
  updateOfRemoved,
  type ContainerSnapshot,
  type DockerEvent,
  type MappingOptions,
} from './container-status';
import type { SentLedger } from './sent-ledger';

export interface DockerWatcherOptions {
  /** Docker label filters (`key` or `key=value`), applied to the listing and the events stream. */
  labelFilters: string[];
  instancePrefix: string;
  location?: string;
  source: string;
  maxAgeMs: number;
  reconnectBaseMs: number;
  reconnectMaxMs: number;
  /** Inspects in flight at once during a resync. */
  inspectConcurrency: number;
  /** Nothing heard from the engine this long (no event, no answer): it is pinged. */
  probeAfterMs: number;
  /** A request (a ping, a list, an inspect) given no answer this long: the engine is gone (the session ends). */
  answerTimeoutMs: number;
  /**
   * A full resync this often while events are followed (0: only on start and after a reconnect): an events stream gone
   * half-open while the engine answers pings (a firewall or NAT dropping an idle connection) is never noticed, and a
   * container that died meanwhile stayed reported running. Absent: 0.
   */
  resyncMs?: number;
}

export interface DockerWatcherStats {
  /**
   * The engine answered lately: the events stream is open, and the engine heard from (an event, an answer, a ping)
   * within probeAfterMs + answerTimeoutMs. The pusher refreshes states only while this is true.
   */
  connected: boolean;
  resyncs: number;
  lastResyncMs: number;
  lastResyncContainers: number;
  events: number;
  reconnects: number;
  watched: number;
}

interface Known {
  /** The last update sent. */
  updateId: string;
  /** Unsalted ids of the states reported before (a bounded tail). */
  history: string[];
  name: string;
  image?: string;
  /** Epoch ms the container's last update sent was dated: the next is dated after it (datedAfter). */
  at?: number;
}

/** An update queued and not yet accepted: the container, its unsalted state id (null: a removal), and its date. */
interface Sent {
  id: string;
  base: string | null;
  name: string;
  image?: string;
  at?: number;
}

/** A container's inspect got no answer twice while the engine answers pings: that container is skipped by the resync. */
class InspectHangs extends Error {
  constructor(cause: unknown) {
    const why = (cause as Error)?.message ?? String(cause);
    super(`no answer to its inspect twice while the engine answers pings: ${why}`, { cause });
  }
}

/**
 * The engine gave no answer (a connection cut or refused) to a request about one event, or to a ping while it said
 * nothing: its session must end.
 */
class EngineSilentError extends Error {
  constructor(cause: unknown, message: string = (cause as Error)?.message ?? String(cause)) {
    super(message, { cause });
    this.name = 'EngineSilentError';
  }
}

/** How long stop() lets a session's requests in flight finish before it cuts them. */
const STOP_GRACE_MS = 1_000;

/** dockerode's ping takes an abortSignal (lib/docker.js), as its other requests do; its types leave it out. */
type Pinging = { ping(opts: { abortSignal: AbortSignal }): Promise<unknown> };
/** dockerode's info() passes an abortSignal on, which its typings leave out. */
type Informing = { info(opts: { abortSignal: AbortSignal }): Promise<{ SystemTime?: unknown } | undefined> };

/**
 * Why the watcher itself ended a session (the engine did nothing wrong): the next session resyncs, and it is no
 * reconnect (not counted in `reconnects`, not logged as one). `periodic-resync`: every resyncMs; the next session
 * starts at once. `queue-overflow`: updates were pushed out of the full push queue and the ingest accepts again; the
 * next session waits a back-off all the same (see run).
 */
type OwnSessionEnd = 'periodic-resync' | 'queue-overflow';

const destroy = (stream: NodeJS.ReadableStream | null) =>
  (stream as (NodeJS.ReadableStream & { destroy?: () => void }) | null)?.destroy?.();

/**
 * Follows one Docker engine: on start and after every reconnect a full resync (list
 * every container matching the label filters, inspect each, report its state, report
 * the ones that disappeared meanwhile as removed), then the events stream from just
 * before the listing (`since`), so nothing that happened between the two is missed.
 * Every lifecycle event is answered by an inspect of its container, so an event and a
 * resync that see the same state produce the same update (and `updateId`).
 *
 * `connected` (what keeps the pusher refreshing states) means the engine answered lately: the events stream is open,
 * and an engine that says nothing for probeAfterMs is pinged — no answer within answerTimeoutMs (a wedged daemon,
 * a tcp:// DOCKER_HOST out of reach while its stream looks open) ends the session: not connected within probeAfterMs
 * + answerTimeoutMs + a tick, 45 s by default, and the next session resyncs. Every other request is given up after
 * answerTimeoutMs too: one sent to a daemon that wedged (or over a pooled connection gone dead) may never be
 * answered, while the pings, on new connections, are. An events stream gone half-open while the pings are answered is
 * caught by none of this: every resyncMs the session is ended and the next one resyncs (a periodic resync).
 */
export class DockerWatcher {
  readonly stats: DockerWatcherStats = {
    connected: false,
    resyncs: 0,
    lastResyncMs: 0,
    lastResyncContainers: 0,
    events: 0,
    reconnects: 0,
    watched: 0,
  };
  private readonly known = new Map<string, Known>();
  /**
   * When each pushed instance's (container name's) last update was dated, whichever container it was about: a
   * container recreated under its name (a new id, no floor of its own) is dated after the old one's last update.
   * Kept in the ledger.
   */
  private readonly floors: InstanceFloors;
  /**
   * Containers whose state the engine could not tell (a 5xx for their inspect, or no answer twice while it answers
   * pings: `hung`). Inspected again in the background every probeAfterMs while a session lasts, and reported once it
   * answers — nothing else may come about them (a still-running container whose stuck lock clears sends no event).
   * An event about a hung one does not wait for its inspect again (two answer timeouts holding every other event).
   */
  private readonly unknownState = new Map<string, { hung: boolean }>();
  /** Updates were pushed out of the full queue: resync once the ingest accepts again. */
  private resyncWanted = false;
  /** The watcher ended the session itself, and why (set as it ends it, read and cleared by run). */
  private ownEnd: OwnSessionEnd | null = null;
  /**
   * Sessions ended for a full push queue since the queue last took updates with none pushed out: the back-off before
   * the next session grows with it (a resync into a queue still full pushes out more, which would end that session at
   * the next accepted batch too).
   */
  private overflowEnds = 0;
  /** The engine's time was found unknown once (logged once: a socket proxy refusing `/info` refuses it every session). */
  private engineTimeUnknown = false;
  /**
   * The engine's time told by the last `/info` that told it, and the monotonic clock's reading then (ms); null while
   * none has. Monotonic, not the watcher's wall clock: a step of that (NTP) after the answer would move `since` by as
   * much — ahead of the engine's time, the events of the resync's window were lost again.
   */
  private engineClock: { engineMs: number; monoMs: number } | null = null;
  /** Updates queued and not yet accepted, by the id they were sent with: recorded in the ledger once accepted. */
  private readonly inFlight = new Map<string, Sent>();
  private running = false;
  /** stop() was called: a resync in progress makes no further inspect (a resync called alone is not affected). */
  private stopped = false;
  private stream: NodeJS.ReadableStream | null = null;
  private loop: Promise<void> | null = null;
  private wakeSleep: (() => void) | null = null;
  /** When the engine last answered (a request, an event on the stream, a ping). */
  private heardAt = 0;
  /** The session in progress: stop() cuts it, so a wedged engine does not hold the shutdown for an answer timeout. */
  private currentSession: AbortController | null = null;

  constructor(
    private readonly docker: Dockerode,
    private readonly pusher: StatusPusher,
    private readonly opts: DockerWatcherOptions,
    private readonly log: PushLog,
    private readonly ledger: SentLedger,
  ) {
    this.floors = new InstanceFloors(opts.maxAgeMs);
    ledger.keepInstanceFloors(this.floors);
    pusher.onAccepted((updates) => {
      for (const u of updates) {
        // The pusher's refreshes too (dated now, by it): a restarted watcher dates the instance after them.
        if (typeof u.occurredAt === 'string') this.ledger.instanceDated(u.instanceId, Date.parse(u.occurredAt), true);
        const sent = this.inFlight.get(u.updateId as string);
        if (!sent) continue;
        this.inFlight.delete(u.updateId as string);
        if (sent.base === null) this.ledger.forget(sent.id);
        // Dated as the container's last update sent (a later one may be in flight), else as this one.
        else this.ledger.accepted(sent.id, sent.base, sent.name, sent.image, this.known.get(sent.id)?.at ?? sent.at);
      }
      // The ingest takes updates again after some were pushed out of the full queue: resync — through a new
      // session, so it runs where every resync runs, before the events are followed, never beside them.
      if (this.resyncWanted && this.stats.connected && this.stream) {
        this.resyncWanted = false;
        this.log.warn('updates were dropped from the full push queue: resyncing to send current states again');
        this.endSession('queue-overflow', this.stream);
      } else if (!this.resyncWanted) this.overflowEnds = 0; // the queue takes updates and pushed none out since
    });
    pusher.onDropped((updates, reason) => {
      // A refused update (the ingest named it invalid) would be refused again: not resent, as before.
      if (reason !== 'overflow') {
        for (const u of updates) this.inFlight.delete(u.updateId as string);
        return;
      }
      for (const u of updates) {
        const sent = this.inFlight.get(u.updateId as string);
        if (!sent) continue;
        this.inFlight.delete(u.updateId as string);
        const accepted = this.ledger.all.get(sent.id)?.history ?? [];
        const k = this.known.get(sent.id);
        if (sent.base === null) {
          // A removal never delivered: known again, so the resync (not listing it) reports it removed again.
          if (!k)
            this.known.set(sent.id, {
              updateId: '',
              history: [...accepted],
              name: sent.name,
              ...(sent.image ? { image: sent.image } : {}),
              at: this.ledger.all.get(sent.id)?.at ?? sent.at,
            });
        } else if (k && k.updateId === u.updateId) {
          // Still the container's latest: never delivered, so the resync must send its state again.
          this.known.set(sent.id, { ...k, updateId: accepted[accepted.length - 1] ?? '', history: [...accepted] });
        } else continue;
        this.resyncWanted = true;
      }
    });
  }

  start(): void {
    this.running = true;
    this.stopped = false;
    this.loop = this.ledger.load().then(() => {
      // What an earlier run had delivered: not sent again if unchanged, salted if a state comes back,
      // reported removed if the container is gone by the first resync.
      for (const [id, e] of this.ledger.all)
        this.known.set(id, {
          updateId: e.history[e.history.length - 1] ?? '',
          history: [...e.history],
          name: e.name,
          image: e.image,
          // The floor of its first update in this run: dated after the last one an earlier run sent.
          at: e.at,
        });
      return this.run();
    });
  }

  /** Writes the ledger (at shutdown, after the pusher drained). */
  persist(): Promise<void> {
    return this.ledger.flush();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.stopped = true;
    this.wakeSleep?.();
    destroy(this.stream);
    // The requests in flight finish (a resync's inspects: what they find is queued), but no longer than a second: a
    // session waiting on a wedged engine would hold the shutdown for its answer timeout, past the daemon's hard exit.
    const cut = setTimeout(() => this.currentSession?.abort(new Error('stopping')), STOP_GRACE_MS);
    await this.loop;
    clearTimeout(cut);
  }

  private mapping(): MappingOptions {
    return {
      instancePrefix: this.opts.instancePrefix,
      location: this.opts.location,
      source: this.opts.source,
      now: Date.now(),
      maxAgeMs: this.opts.maxAgeMs,
    };
  }

  private filters(): Record<string, string[]> {
    return this.opts.labelFilters.length ? { label: this.opts.labelFilters } : {};
  }

  private async run(): Promise<void> {
    let attempt = 0;
    const backoff = { baseMs: this.opts.reconnectBaseMs, maxMs: this.opts.reconnectMaxMs };
    // The last session was ended by the watcher itself: the same engine, answering (see engineNow).
    let afterOwnEnd = false;
    while (this.running) {
      let own: OwnSessionEnd | null = null;
      this.ownEnd = null;
      try {
        await this.session(() => (attempt = 0), afterOwnEnd);
        own = this.ownEnd;
        if (this.running && !own) this.log.warn('docker events stream ended: reconnecting');
      } catch (err) {
        own = this.ownEnd;
        if (!this.running) break;
        if (!own)
          this.log.warn('docker engine unreachable or stream failed: reconnecting', { error: (err as Error).message });
      }
      this.stats.connected = false;
      this.stream = null;
      afterOwnEnd = own !== null;
      if (!this.running) break;
      // Ended by the watcher itself: a new session (its resync counted in `resyncs`), no reconnect.
      if (own === 'periodic-resync') continue; // at once: the engine and the ingest are both fine
      if (own === 'queue-overflow') {
        // Not at once: the queue may still be full (one batch accepted of a long backlog), and the resync's states
        // push out more; those end the next session at the next accepted batch too — back to back full resyncs
        // (a list and an inspect of every container each) for as long as the backlog drains. A back-off growing
        // with each such end in a row (reset once the queue takes updates with none pushed out) paces them.
        await this.sleep(nextRetryDelayMs(this.overflowEnds++, undefined, backoff));
        continue;
      }
      this.stats.reconnects++;
      await this.sleep(nextRetryDelayMs(attempt++, undefined, backoff));
    }
  }

  /** Ends the session following `stream` for `reason` (the watcher's own decision: no reconnect, see run). */
  private endSession(reason: OwnSessionEnd, stream: NodeJS.ReadableStream): void {
    this.ownEnd = reason;
    destroy(stream);
  }

  /**
   * One connection: ping, resync, then follow events until the stream ends — or until the engine is found silent
   * (watchEngine). Every request of the session carries its signal, which that cuts: dockerode sets no timeout, and a
   * request left hanging (the stream, an inspect, the first ping) held the session, `connected` with it, for ever.
   */
  private async session(onConnected: () => void, reuseEngineClock = false): Promise<void> {
    const session = new AbortController();
    this.currentSession = session;
    const silent = new Promise<never>((_, reject) =>
      session.signal.addEventListener('abort', () => reject(session.signal.reason as Error), { once: true }),
    );
    this.heardAt = Date.now();
    const endWatch = this.watchEngine(session);
    try {
      await Promise.race([this.follow(session.signal, onConnected, reuseEngineClock), silent]);
    } finally {
      endWatch();
      if (this.currentSession === session) this.currentSession = null;
      // Whatever of it is still running (a resync's other workers when one failed) stops with it, not beside the next.
      if (!session.signal.aborted) session.abort(new Error('session over'));
    }
  }

  /**
   * While a session lasts: the engine heard from nothing for probeAfterMs (a quiet engine sends no event) is pinged;
   * no answer within answerTimeoutMs ends the session, as an event's inspect without an answer does, and it is no
   * longer `connected` at once (refreshes stop). An engine answering with an error is there.
   */
  private watchEngine(session: AbortController): () => void {
    let probing = false;
    let over = false;
    let rechecking = false;
    let recheckedAt = Date.now();
    const timer = setInterval(
      () => {
        if (
          !over &&
          !rechecking &&
          this.stats.connected &&
          this.unknownState.size > 0 &&
          Date.now() - recheckedAt >= this.opts.probeAfterMs
        ) {
          rechecking = true;
          void this.recheckUnknown(session.signal).finally(() => {
            rechecking = false;
            recheckedAt = Date.now();
          });
        }
        if (over || probing || !this.running || Date.now() - this.heardAt < this.opts.probeAfterMs) return;
        probing = true;
        const silentMs = Date.now() - this.heardAt;
        this.answered(undefined, (abortSignal) => (this.docker as unknown as Pinging).ping({ abortSignal }))
          .then(
            () => this.heard(),
            (err: unknown) => {
              if ((err as { statusCode?: number }).statusCode !== undefined) return this.heard();
              if (over || !this.running) return;
              this.stats.connected = false;
              session.abort(
                new EngineSilentError(
                  err,
                  `no answer to a ping within ${this.opts.answerTimeoutMs} ms (nothing heard for ${silentMs} ms)`,
                ),
              );
            },
          )
          .finally(() => (probing = false));
      },
      Math.max(10, Math.min(5_000, Math.floor(this.opts.probeAfterMs / 4))),
    );
    timer.unref();
    return () => {
      over = true;
      clearInterval(timer);
    };
  }

  private heard(): void {
    this.heardAt = Date.now();
  }

  /**
   * Inspects each container whose state was unknown once more (one attempt each, one at a time: a stuck engine is not
   * asked for more at once) and reports those it now describes; one gone (404) is reported removed.
   */
  private async recheckUnknown(signal: AbortSignal): Promise<void> {
    for (const [id, entry] of [...this.unknownState]) {
      if (signal.aborted || !this.running) return;
      try {
        const snapshot = await this.inspect(id, signal);
        if (signal.aborted || this.unknownState.get(id) !== entry) continue; // reported meanwhile (an event, a resync)
        this.unknownState.delete(id);
        const seenAt = new Date().toISOString();
        if (snapshot) {
          this.log.info('container inspected again: its state is known', { container: id.slice(0, 12) });
          this.emit(id, updateOfContainer(snapshot, this.mapping(), seenAt), snapshot, seenAt);
        } else this.removed(id, undefined);
      } catch (err) {
        // Still unknown: an error answer (a 5xx) or none (its inspect still hangs); asked again at the next round. Cut
        // by the session's end, it says nothing about the container.
        if (signal.aborted) return;
        if ((err as { statusCode?: number }).statusCode === undefined && this.unknownState.get(id) === entry)
          entry.hung = true;
      }
    }
  }

  /**
   * A request (not the events stream) given up when the session is cut (`session`) or when it has no answer within
   * answerTimeoutMs: it fails then with no statusCode — no answer, as a connection cut. Its own AbortController, not
   * AbortSignal.any: a session follows events for days, and each inspect would hang a signal on the session's.
   */
  private async answered<T>(
    session: AbortSignal | undefined,
    request: (signal: AbortSignal) => Promise<T>,
  ): Promise<T> {
    const ac = new AbortController();
    const cut = () => ac.abort(session?.reason);
    if (session?.aborted) cut();
    session?.addEventListener('abort', cut, { once: true });
    const timer = setTimeout(
      () => ac.abort(new Error(`no answer from the docker engine within ${this.opts.answerTimeoutMs} ms`)),
      this.opts.answerTimeoutMs,
    );
    try {
      return await request(ac.signal);
    } catch (err) {
      // The reason, not the AbortError it is wrapped in ("The operation was aborted"): what the log tells.
      throw ac.signal.aborted ? ac.signal.reason : err;
    } finally {
      clearTimeout(timer);
      session?.removeEventListener('abort', cut);
    }
  }

  private async follow(signal: AbortSignal, onConnected: () => void, reuseEngineClock: boolean): Promise<void> {
    await this.answered(signal, (abortSignal) => (this.docker as unknown as Pinging).ping({ abortSignal }));
    this.heard();
    if (!this.running || signal.aborted) return;
    // Whole seconds, one before now: the events stream replays from there, so an event that
    // lands between the listing and the subscription is still seen (and deduplicated).
    const since = Math.floor((await this.engineNow(signal, reuseEngineClock)) / 1000) - 1;
    if (!this.running || signal.aborted) return;
    await this.resync(signal);
    if (!this.running || signal.aborted) return;
    // Its headers within the answer timeout (an engine answering pings but never the stream held the session for
    // ever); the stream itself is cut with the session (below).
    const stream = await this.answered(signal, (abortSignal) =>
      this.docker.getEvents({
        since,
        filters: { type: ['container'], ...this.filters() },
        abortSignal,
      } as Dockerode.GetEventsOptions),
    );
    this.heard();
    // stop() came while the stream was being opened: it found none to close, and this one would be followed until
    // the engine ends it — the loop stop() waits for would never end (a SIGTERM that never exits). Found silent
    // meanwhile: the session is over.
    if (!this.running || signal.aborted) {
      destroy(stream);
      return;
    }
    this.stream = stream;
    signal.addEventListener('abort', () => destroy(stream), { once: true });
    this.stats.connected = true;
    onConnected();
    this.log.info('following docker events', { since });
    // The periodic resync: armed only once the events are followed (never while a session starts or resyncs), it ends
    // this session as a full push queue does (above) — the next one resyncs before following the events again.
    const resyncMs = this.opts.resyncMs ?? 0;
    const periodic =
      resyncMs > 0
        ? setTimeout(() => {
            if (!this.running || signal.aborted || this.stream !== stream) return;
            this.log.info('periodic resync: listing and inspecting every container again', { everyMs: resyncMs });
            this.endSession('periodic-resync', stream);
          }, resyncMs)
        : undefined;
    periodic?.unref();
    try {
      await this.followEvents(stream, signal);
    } finally {
      clearTimeout(periodic);
    }
  }

  /**
   * The engine's clock (`/info`'s SystemTime), in ms: the events' dates, to which the stream's `since` is compared, are
   * the engine's — a watcher whose clock runs ahead of a remote engine's (a tcp:// DOCKER_HOST) never had replayed the
   * events between its listing and the stream, every periodic resync. After a session the watcher ended itself (a
   * periodic resync, a full push queue: the same engine, answering), the time the last answer told plus the monotonic
   * time elapsed since (a step of the watcher's wall clock does not move it), at once: `/info` is asked again without
   * being waited for, and a newer answer replaces it — `docker info` can hang on a stuck plugin while the rest answers,
   * which held every resync for the answer timeout. On start and after a reconnect `/info` is waited for: the engine
   * may be another one now (restarted elsewhere behind the same socket proxy or address, its clock behind), and a
   * `since` ahead of its clock loses the events of the resync's window. It not telling it (an error answer, an
   * unreadable time, or no answer): the last answer's time as above, else the watcher's own clock (warned once); the
   * session cut, it fails.
   */
  private async engineNow(signal: AbortSignal, reuse: boolean): Promise<number> {
    if (reuse && this.engineClock !== null) {
      const at = this.lastEngineTime(this.engineClock);
      // Failing (refused, no time, no answer): the last answer stays.
      void this.askEngineClock(signal).catch(() => undefined);
      return at;
    }
    try {
      const at = await this.askEngineClock(signal);
      if (at !== undefined) return at;
      if (this.engineClock === null) this.engineTimeUnknownOnce(new Error('no SystemTime in /info'));
    } catch (err) {
      if (signal.aborted) throw err;
      if (this.engineClock === null) this.engineTimeUnknownOnce(err);
    }
    return this.engineClock !== null ? this.lastEngineTime(this.engineClock) : Date.now();
  }

  /** The engine's time now as the last `/info` that told it has it: its time then plus the monotonic time since. */
  private lastEngineTime(told: { engineMs: number; monoMs: number }): number {
    return told.engineMs + (performance.now() - told.monoMs);
  }

  /**
   * The engine's time from `/info` (undefined: it tells none), kept with the monotonic clock's reading; fails as the
   * request.
   */
  private async askEngineClock(signal: AbortSignal): Promise<number | undefined> {
    try {
      const info = await this.answered(signal, (abortSignal) =>
        (this.docker as unknown as Informing).info({ abortSignal }),
      );
      const monoMs = performance.now();
      this.heard();
      const at = typeof info?.SystemTime === 'string' ? Date.parse(info.SystemTime) : NaN;
      if (!Number.isFinite(at)) return undefined;
      this.engineClock = { engineMs: at, monoMs };
      return at;
    } catch (err) {
      if (!signal.aborted && (err as { statusCode?: number }).statusCode !== undefined) this.heard();
      throw err;
    }
  }

  private engineTimeUnknownOnce(err: unknown): void {
    if (this.engineTimeUnknown) return;
    this.engineTimeUnknown = true;
    this.log.warn("the docker engine's time is unknown (GET /info): events are replayed from the watcher's clock", {
      error: (err as Error).message?.slice(0, 300),
    });
  }

  /** Reads the events stream until it ends (each lifecycle event handled in order); fails when it fails. */
  private followEvents(stream: NodeJS.ReadableStream, signal: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let buffer = '';
      let chain = Promise.resolve();
      stream.on('data', (chunk: Buffer) => {
        this.heard();
        buffer += chunk.toString('utf8');
        let nl: number;
        while ((nl = buffer.indexOf('\n')) >= 0) {
          const line = buffer.slice(0, nl).trim();
          buffer = buffer.slice(nl + 1);
          if (!line) continue;
          let event: DockerEvent;
          try {
            event = JSON.parse(line) as DockerEvent;
          } catch {
            this.log.warn('unreadable docker event line skipped', { line: line.slice(0, 200) });
            continue;
          }
          // One at a time, in order: a container's events must not overtake each other.
          chain = chain
            .then(() => this.onEvent(event, signal))
            .catch((e: Error) => {
              if (!(e instanceof EngineSilentError)) {
                this.log.warn('event not handled', { error: e.message });
                return;
              }
              // The engine gave no answer for this event (an inspect cut off): what it did to the container is
              // unknown, so the session ends — the next one resyncs every container. Only logged, the event was
              // lost: a container that died stayed reported (and refreshed) running until its next event.
              this.log.warn('event not handled: reconnecting to resync', { error: e.message });
              destroy(stream);
              reject(e);
            });
        }
      });
      stream.on('end', () => void chain.then(() => resolve()));
      stream.on('close', () => void chain.then(() => resolve()));
      stream.on('error', (e: Error) => void chain.then(() => reject(e)));
    });
  }

  /**
   * Lists, inspects and reports every matching container; the ones no longer listed are reported removed. `signal`:
   * the session's (its requests are cut when the engine is found silent, and the resync fails); each is given up after
   * answerTimeoutMs in any case.
   */
  async resync(signal?: AbortSignal): Promise<void> {
    const started = performance.now();
    // Removals are judged against what was known when the listing was taken.
    const knownBefore = [...this.known.keys()];
    const listed = await this.answered(signal, (abortSignal) =>
      this.docker.listContainers({ all: true, filters: this.filters(), abortSignal } as Dockerode.ContainerListOptions),
    );
    this.heard();
    const seen = new Set<string>();
    // The names the listing holds: one a container was renamed away from may be another's now.
    const listedNames = new Set(listed.map((c) => (c.Names?.[0] ?? '').replace(/^\//, '')).filter(Boolean));
    let next = 0;
    const worker = async () => {
      // At a stop, only the inspects in flight finish: a resync of thousands of containers would hold the
      // shutdown for seconds (and queue updates the pusher's short grace could not deliver).
      while (next < listed.length && !this.stopped) {
        const c = listed[next++] as Dockerode.ContainerInfo;
        seen.add(c.Id);
        const snapshot = await this.inspectForResync(c.Id, signal).catch((err: unknown) => {
          // The engine answered for this container alone (a 5xx), or gave it no answer twice while it answers a ping
          // (dockerd stuck on that container's lock): it is skipped, not the whole resync — one container the engine
          // cannot describe kept the watcher from ever following events, every container going STALE. An engine out
          // of reach (no answer to a ping either) still fails the resync, and the session is tried again.
          const status = (err as { statusCode?: number }).statusCode;
          if (status === undefined && !(err instanceof InspectHangs)) throw err;
          this.log.warn('container could not be inspected: skipped by this resync', {
            container: c.Id.slice(0, 12),
            name: (c.Names?.[0] ?? '').replace(/^\//, ''),
            status,
            error: (err as Error).message?.slice(0, 300),
          });
          this.stateUnknown(c.Id, err instanceof InspectHangs);
          return undefined;
        });
        if (snapshot === undefined) continue;
        this.unknownState.delete(c.Id);
        if (snapshot)
          this.emit(c.Id, updateOfContainer(snapshot, this.mapping()), snapshot, new Date().toISOString(), listedNames);
        else this.removed(c.Id, undefined, { Names: c.Names, image: c.Image });
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, this.opts.inspectConcurrency) }, worker));
    // Cut short by a stop: containers not inspected are not gone — no removals from a partial listing.
    if (this.stopped && seen.size < listed.length) return;
    // No longer listed: not to be inspected again (removed below if it was known).
    for (const id of [...this.unknownState.keys()]) if (!seen.has(id)) this.unknownState.delete(id);
    // A container recreated under the same name while no watcher ran (compose up with a new image) is not
    // removed: its instance is the listed one. Its old id is only forgotten.
    for (const id of knownBefore) {
      if (seen.has(id) || !this.known.has(id)) continue;
      const name = this.known.get(id)?.name;
      if (name && listedNames.has(name)) {
        this.known.delete(id);
        this.ledger.forget(id);
      } else this.removed(id, undefined);
    }
    this.stats.resyncs++;
    this.stats.lastResyncMs = Math.round(performance.now() - started);
    this.stats.lastResyncContainers = listed.length;
    this.stats.watched = this.known.size;
    this.log.info('resync done', { containers: listed.length, ms: this.stats.lastResyncMs });
  }

  private async onEvent(event: DockerEvent, signal?: AbortSignal): Promise<void> {
    const subject = eventSubject(event);
    if (!subject || !isLifecycleAction(subject.action)) return;
    this.stats.events++;
    if (subject.action === 'destroy') {
      this.unknownState.delete(subject.id);
      this.removed(subject.id, subject.at, { Name: subject.name, image: subject.image });
      return;
    }
    if (this.unknownState.get(subject.id)?.hung) {
      // Its inspect hangs: not waited for again here (the background re-inspection reports it once it answers).
      this.stateUnknown(subject.id, true);
      return;
    }
    // A background re-inspection of it in flight is superseded (its snapshot may predate this event: see recheckUnknown).
    const unknown = this.unknownState.get(subject.id);
    if (unknown) this.unknownState.set(subject.id, { ...unknown });
    // As a resync's: no answer is asked again once if the engine answers a ping (a connection cut once).
    const snapshot = await this.inspectForResync(subject.id, signal).catch((err: unknown) => {
      // The engine answered for this container alone (a 5xx), or answers pings but never this container's inspect
      // (dockerd stuck on its lock): what the event did to it is unknown — that container alone. Before, a hanging
      // inspect ended the session, and the next one's resync skipped it: every event about it cost a reconnect and a
      // full resync. No answer from the engine at all fails the event: its session ends, and the next one resyncs.
      const status = (err as { statusCode?: number }).statusCode;
      if (status === undefined && !(err instanceof InspectHangs)) throw new EngineSilentError(err);
      this.log.warn('container could not be inspected after an event: its state is unknown until it can be', {
        container: subject.id.slice(0, 12),
        action: subject.action,
        ...(status === undefined ? { reason: 'no answer twice, the engine answering pings' } : { status }),
        error: (err as Error).message?.slice(0, 300),
      });
      this.stateUnknown(subject.id, err instanceof InspectHangs);
      return undefined;
    });
    if (snapshot === undefined) return;
    this.unknownState.delete(subject.id);
    const seenAt = subject.at ?? new Date().toISOString();
    if (snapshot) this.emit(subject.id, updateOfContainer(snapshot, this.mapping(), seenAt), snapshot, seenAt);
    else this.removed(subject.id, subject.at, { Name: subject.name, image: subject.image });
  }

  /**
   * A resync's (or an event's) inspect: one without an answer is asked again once if the engine answers a ping (a
   * connection cut once is no stuck container); no answer twice throws InspectHangs, no answer to the ping the first
   * error.
   */
  private async inspectForResync(id: string, signal?: AbortSignal): Promise<ContainerSnapshot | null> {
    try {
      return await this.inspect(id, signal);
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode !== undefined || !(await this.answersPing(signal))) throw err;
      try {
        return await this.inspect(id, signal);
      } catch (again) {
        if ((again as { statusCode?: number }).statusCode !== undefined) throw again;
        if (signal?.aborted || !(await this.answersPing(signal))) throw again;
        throw new InspectHangs(again);
      }
    }
  }

  /** Whether the engine answers a ping within the answer timeout (an error answer counts); false once cut. */
  private async answersPing(signal?: AbortSignal): Promise<boolean> {
    if (signal?.aborted || !this.running) return false;
    try {
      await this.answered(signal, (abortSignal) => (this.docker as unknown as Pinging).ping({ abortSignal }));
      this.heard();
      return true;
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === undefined) return false;
      this.heard();
      return true;
    }
  }

  /**
   * A known container whose state the engine cannot tell (its inspect a 5xx): no longer refreshed — a refresh says
   * "as last reported", which would keep a container that died meanwhile reported running for ever — so its instance
   * goes STALE, as when the engine is out of reach. Its next inspect that works reports it (or keeps it) again.
   */
  private stateUnknown(id: string, hung: boolean): void {
    this.unknownState.set(id, { hung: hung || (this.unknownState.get(id)?.hung ?? false) });
    const k = this.known.get(id);
    if (!k) return;
    this.pusher.release(updateOfRemoved({ Id: id, Name: k.name, image: k.image }, undefined, this.mapping()));
  }

  private async inspect(id: string, signal?: AbortSignal): Promise<ContainerSnapshot | null> {
    try {
      const snapshot = await this.answered(signal, (abortSignal) =>
        this.docker.getContainer(id).inspect({ abortSignal }),
      );
      this.heard();
      return snapshot as unknown as ContainerSnapshot;
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === undefined) throw err;
      this.heard(); // an answer all the same
      if ((err as { statusCode?: number }).statusCode === 404) return null;
      throw err;
    }
  }

  /**
   * `taken`: a resync's listed names. A container renamed away (while no watcher ran) from a name another listed
   * container holds now is not reported removed under it: that instance is the other container (a removal dated
   * now would come after its state, dated when it began, and hide it; and, queued after it, end its refreshes).
   */
  private emit(
    id: string,
    update: StatusUpdateInput,
    snapshot: ContainerSnapshot,
    seenAt: string,
    taken?: ReadonlySet<string>,
  ): void {
    const before = this.known.get(id);
    const base = update.updateId as string;
    const history = before?.history ?? [];
    // Renamed (an event, or while no watcher ran): the instance is the name, so the state, unchanged as it may be,
    // is news for the new name, and the old name is gone. The state's id does not hold the name (a rename is no
    // transition): without this the new name was never reported.
    const formerInstance = before?.name ? instanceIdOf({ Id: id, Name: before.name }, this.opts.instancePrefix) : null;
    const renamed = formerInstance !== null && formerInstance !== update.instanceId;
    if (!renamed && history[history.length - 1] === base) {
      // Already accepted (this run, or an earlier one by the ledger): not sent again, but kept from going STALE.
      this.pusher.keep(update);
      return;
    }
    if (renamed && before && !taken?.has(before.name)) this.renamedAway(id, before, update.instanceId, seenAt);
    const returning = history.includes(base);
    // A state coming back is a new observation, dated when it was seen: a resync would otherwise date it when the
    // state first began (before the state it follows), and the aggregator ignores an observation older than its own.
    // Dated after the container's last update: an update dated by this host's clock (a state inspected again in the
    // background) and the next dated by the engine's (an event, a resync), a remote engine's clock behind, had the newer
    // state dated before the older, and the aggregator ignored it.
    // And after the instance's last update, whichever container it was about: one recreated under the name (compose
    // up: a new id) has no floor of its own, and its first state, dated by the engine, came before the old one's end.
    const sent = datedAfter(
      returning
        ? { ...update, updateId: saltedUpdateId(base, `${seenAt}:${history.length}`), occurredAt: seenAt }
        : update,
      this.floorOf(before?.at, update.instanceId),
    );
    const at = datedAtMs(sent, before?.at);
    this.known.set(id, {
      updateId: sent.updateId as string,
      history: [...history.filter((h) => h !== base), base].slice(-32),
      name: (snapshot.Name ?? '').replace(/^\//, '') || id.slice(0, 12),
      image: snapshot.Config?.Image,
      at,
    });
    this.stats.watched = this.known.size;
    if (this.pusher.enqueue(sent)) {
      // Kept across a restart: the next run dates the container's (and the instance's) first update after it.
      this.ledger.dated(id, at);
      this.ledger.instanceDated(sent.instanceId, at);
      this.track(sent.updateId as string, {
        id,
        base,
        name: this.known.get(id)?.name ?? id,
        image: snapshot.Config?.Image,
        at,
      });
    }
  }

  /** The instance of a container's former name: reported gone (its last update), under an id of its own. */
  private renamedAway(id: string, before: Known, newInstanceId: string, seenAt: string): void {
    // Dated after the old name's last update: a rename event dated by a remote engine's clock behind this host's came
    // before a state dated here, and the aggregator ignored the old name's end (it read running, then STALE).
    const removal = updateOfRemoved({ Id: id, Name: before.name, image: before.image }, seenAt, this.mapping());
    const gone = datedAfter(removal, this.floorOf(before.at, removal.instanceId));
    const queued = this.pusher.enqueue(
      {
        ...gone,
        // Not the removal's own id: the container's real removal, later, must not be dropped as a repeat of this.
        updateId: saltedUpdateId(gone.updateId as string, `renamed:${seenAt}:${newInstanceId}`),
        message: truncateText(toStorable(`container renamed to ${newInstanceId}`), 4096),
      },
      { final: true },
    );
    if (queued) this.ledger.instanceDated(gone.instanceId, datedAtMs(gone, undefined));
  }

  /** The floor of a container's next update: its own (`own`), or its instance's when that is later. */
  private floorOf(own: number | undefined, instanceId: string): number | undefined {
    return laterFloor(own, this.floors.get(instanceId));
  }

  private track(updateId: string, sent: Sent): void {
    this.inFlight.set(updateId, sent);
    // Bounded like the queue it mirrors (what is pushed out of it is removed by the drop listener anyway).
    if (this.inFlight.size > this.pusher.capacity + 1_000)
      this.inFlight.delete(this.inFlight.keys().next().value as string);
  }

  private removed(
    id: string,
    at: string | undefined,
    hint: { Name?: string; Names?: string[]; image?: string } = {},
  ): void {
    const before = this.known.get(id);
    this.known.delete(id);
    this.stats.watched = this.known.size;
    const name = hint.Name ?? hint.Names?.[0] ?? before?.name;
    // A container this watcher never saw and cannot name is nobody's target.
    if (!name && !before) return;
    // Another container known holds its name now (recreated under it: compose up; the old one's destroy replayed by
    // the events stream after the resync found the new one and forgot the old): the instance is that one, and this
    // removal — dated after the instance's last update (InstanceFloors) — would end it. Only forgotten, as the resync
    // does. Only a container no longer known, though: one known was this name's container until now (the engine's names
    // are unique), and the other known under it is out of date — one renamed away while its inspect hangs — so its
    // removal was skipped and the name was refreshed as running while no container had it.
    const bare = name?.replace(/^\//, '');
    if (!before && bare && [...this.known.values()].some((k) => k.name === bare)) {
      this.ledger.forget(id);
      return;
    }
    const removal = updateOfRemoved({ Id: id, Name: name, image: hint.image ?? before?.image }, at, this.mapping());
    const update = datedAfter(removal, this.floorOf(before?.at, removal.instanceId));
    const image = hint.image ?? before?.image;
    const datedAt = datedAtMs(update, before?.at);
    // The container's last update: the pusher stops reporting its instance again (refreshes).
    if (this.pusher.enqueue(update, { final: true })) {
      // Until the removal is accepted (the entry forgotten), a restarted watcher dates its next update after it.
      this.ledger.dated(id, datedAt);
      this.ledger.instanceDated(update.instanceId, datedAt);
      this.track(update.updateId as string, {
        id,
        base: null,
        name: name ?? id,
        ...(image ? { image } : {}),
        ...(datedAt === undefined ? {} : { at: datedAt }),
      });
    }
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
