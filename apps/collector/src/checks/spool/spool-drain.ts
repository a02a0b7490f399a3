import { describeIssues, messageDefinitionOf, UUID_PATTERN } from '@fleetwatch/contracts';
import {
  backoffDelay,
  InvalidMessageError,
  PublishTimeoutError,
  type BusPublisher,
  type ConnectionState,
  type PublishRequest,
} from '@fleetwatch/messaging';
import { PublishPace } from './publish-pace';
import type { Spool, SpooledEntry, SpoolLogger } from './spool';

// Moves spooled messages to the broker: one batch at a time, in spool order, with
// publisher confirms, and confirms them in the spool only up to the last message of
// the batch's unbroken confirmed prefix. A message after a failed one is sent again
// with its neighbours (at-least-once, same envelope id); nothing is skipped. While the
// broker is away the loop waits for the connection (and backs off), the spool keeps
// filling, and on reconnect the backlog goes out oldest first.
//
// A slow link (a remote location's WAN after an outage, a broker taking messages in
// slowly) confirms fewer messages than a batch within the timeout. What timed out is not
// lost but still on its way, and a copy sent at once queues behind it and times out too:
// every message went twice or more and the backlog drained at a fraction of the link's
// rate. So the pace adapts (PublishPace): after a timeout the next batch is half of what
// the broker did confirm in time and the timeout doubles (at most MAX_TIMEOUT_FACTOR ×
// the configured one); a batch confirmed whole doubles the size back, and the timeout
// follows what batches take (4 × the last one, never under the configured one). A
// message may still arrive twice (at-least-once, same id), about once per timeout.

export interface DrainConnection {
  isConnected(): boolean;
  onState(listener: (state: ConnectionState) => void): () => void;
}

export interface SpoolDrainOptions {
  /** Messages per publish batch (pipelined on one channel, confirmed together). Default 500. */
  batchSize?: number;
  /** How long to let results gather after the spool ran empty, before publishing them together. Default 100 ms. */
  lingerMs?: number;
  /**
   * Upper bound of one batch's publish (connection wait included) while batches are confirmed in time. Default
   * 5000. On a link slower than that it grows with what batches take (PublishPace), up to 12 × this.
   */
  publishTimeoutMs?: number;
  logger: SpoolLogger & { info(obj: object, msg: string): void };
  /** Called with the count of messages the broker confirmed. */
  onPublished?: (count: number) => void;
  /** Called with the count of messages dropped because they can never be published (see unpublishable). */
  onDiscarded?: (count: number) => void;
}

export class SpoolDrain {
  private running: Promise<void> | undefined;
  private stopping = false;
  private deadline = Infinity;
  private wake: (() => void) | undefined;
  private failures = 0;
  private lastFailureLog = 0;
  private readonly pace: PublishPace;

  constructor(
    private readonly spool: Spool,
    private readonly publisher: Pick<BusPublisher, 'publishManySettled'>,
    private readonly connection: DrainConnection,
    private readonly options: SpoolDrainOptions,
  ) {
    this.pace = new PublishPace(options.batchSize ?? 500, options.publishTimeoutMs ?? 5_000);
  }

  /** Messages the next batch may hold, and its confirm timeout (they shrink and grow with the link). */
  get current(): { batchSize: number; timeoutMs: number } {
    return { batchSize: this.pace.batchSize, timeoutMs: this.pace.timeoutMs };
  }

  start(): void {
    this.running ??= this.loop();
  }

  /**
   * Stops taking new batches. With `drainMs` > 0 it first keeps publishing until the
   * spool is empty or that time has passed (shutdown: send what is there while the
   * broker is reachable; what is left stays on disk for the next start).
   */
  async stop(drainMs = 0): Promise<void> {
    this.deadline = Date.now() + drainMs;
    this.stopping = true;
    this.wake?.();
    // A publish in flight with the broker away waits out its own timeout: not beyond the drain window.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.running, new Promise<void>((r) => (timer = setTimeout(r, drainMs + 100)))]);
    clearTimeout(timer);
  }

  /**
   * Until stopped. An error of the spool's disk (a read failing with EMFILE on a collector holding many sockets, an
   * EIO, a confirm whose segment could not be removed) or an unexpected one of the publisher is logged and the step
   * tried again after a back-off: one such error once stopped the drain for good while checks went on spooling, so
   * nothing reached the broker until a restart and the spool, once full, dropped its oldest results. What was read
   * and not confirmed is read again (at-least-once, same ids).
   */
  private async loop(): Promise<void> {
    for (;;) {
      try {
        if (await this.step()) return;
      } catch (e) {
        if (this.stopping) {
          this.options.logger.error({ error: (e as Error).message }, 'spool drain: stopped on an error while stopping');
          return;
        }
        this.failed(e instanceof Error ? e : new Error(String(e)), 'spool drain: unexpected error; retrying');
        await this.backOff();
      }
    }
  }

  /** One batch (or one wait for data); true once stopped. */
  private async step(): Promise<boolean> {
    const lingerMs = this.options.lingerMs ?? 100;
    if (this.stopping && (Date.now() >= this.deadline || !this.connection.isConnected())) return true;
    const entries = await this.spool.read(this.pace.batchSize);
    if (entries.length === 0) {
      if (this.stopping) return true;
      await this.idle(this.spool.waitForData());
      // Results trickle in (10,000 checks a minute: one every 6 ms): a short linger lets a batch gather, so
      // the per-publish cost (read, confirm round trip, cursor) is paid per batch instead of per result.
      if (!this.stopping && lingerMs > 0) await this.idle(new Promise((r) => setTimeout(r, lingerMs).unref()));
      return false;
    }
    const started = Date.now();
    const { done, published, timedOut } = await this.publish(entries);
    if (timedOut) this.pace.timedOut(published);
    else if (done === entries.length) this.pace.confirmed(Date.now() - started);
    if (done > 0) await this.spool.confirm(entries[done - 1].end);
    if (published > 0) this.options.onPublished?.(published);
    if (done < entries.length) await this.backOff();
    else if (this.failures > 0) {
      this.options.logger.info({ after: this.failures }, 'spool: publishing again');
      this.failures = 0;
    }
    return false;
  }

  /**
   * Publishes `entries` in order. `done`: how many of the first ones are finished with — confirmed by the broker
   * without a gap, or discarded as unpublishable; `published`: how many of those the broker confirmed.
   */
  private async publish(entries: SpooledEntry[]): Promise<{ done: number; published: number; timedOut?: boolean }> {
    const requests: PublishRequest[] = [];
    for (const e of entries) {
      const definition = messageDefinitionOf(e.record.type);
      if (!definition) break;
      requests.push({
        definition,
        payload: e.record.payload as never,
        options: { id: e.record.id, occurredAt: e.record.occurredAt },
      });
    }
    if (requests.length === 0) return this.discard(entries);
    let outcomes;
    try {
      outcomes = await this.publisher.publishManySettled(requests, { timeoutMs: this.pace.timeoutMs });
    } catch (e) {
      if (!(e instanceof InvalidMessageError)) throw e;
      // Messages that can never be sent (a payload the contract refuses): publish those before the first, then drop it.
      const bad = entries.findIndex((entry) => unpublishable(entry) !== undefined);
      if (bad === 0) return this.discard(entries);
      if (bad < 0) {
        this.failed(e);
        return { done: 0, published: 0 };
      }
      return this.publish(entries.slice(0, bad));
    }
    let ok = 0;
    while (ok < outcomes.length && outcomes[ok].ok) ok++;
    let timedOut = false;
    if (ok < outcomes.length) {
      const failure = outcomes[ok];
      if (!failure.ok) {
        this.failed(failure.error);
        timedOut = failure.error instanceof PublishTimeoutError;
      }
    }
    return { done: ok, published: ok, timedOut };
  }

  /**
   * Messages that can never be published leave the spool (they would block the rest forever): the whole run of them
   * at the head of `entries` at once, with one error log and `onDiscarded`. One a pass re-read a whole batch to drop
   * one record: a spool of results a newer contract refuses (written before an upgrade) drained at tens a second.
   */
  private discard(entries: SpooledEntry[]): { done: number; published: number } {
    let done = 0;
    let first: string | undefined;
    for (const entry of entries) {
      const why = unpublishable(entry);
      if (why === undefined) break;
      first ??= why;
      done++;
    }
    if (done === 0) return { done: 0, published: 0 };
    const head = entries[0].record;
    this.options.logger.error(
      { count: done, firstId: head.id, firstType: head.type, reason: first },
      'spool: messages discarded: they can never be published',
    );
    this.options.onDiscarded?.(done);
    return { done, published: 0 };
  }

  private failed(error: Error, what = 'spool: results not published yet; they wait on disk'): void {
    this.failures++;
    const now = Date.now();
    // Once at the start of an outage, then once a minute: the outage is also visible as spool size on /metrics.
    if (this.failures === 1 || now - this.lastFailureLog >= 60_000) {
      this.lastFailureLog = now;
      this.options.logger.warn({ error: error.message, kind: error.name, attempts: this.failures }, what);
    }
  }

  /** Waits before the next attempt: until the bus reconnects, or a growing delay when it is up but refusing. */
  private async backOff(): Promise<void> {
    const delay = backoffDelay(Math.min(this.failures, 10), { initialDelayMs: 200, maxDelayMs: 5_000 });
    if (this.connection.isConnected()) return this.idle(new Promise((r) => setTimeout(r, delay).unref()));
    let off: (() => void) | undefined;
    const reconnected = new Promise<void>((resolve) => {
      off = this.connection.onState((s) => s === 'connected' && resolve());
    });
    await this.idle(Promise.race([reconnected, new Promise<void>((r) => setTimeout(r, 5_000).unref())]));
    off?.();
  }

  /** Waits for `what`, or for stop(). */
  private async idle(what: Promise<void>): Promise<void> {
    if (this.stopping) return;
    await Promise.race([what, new Promise<void>((resolve) => (this.wake = resolve))]);
    this.wake = undefined;
  }
}

/** Why the publisher would refuse `entry` whatever the broker does (the checks BusPublisher makes), or undefined. */
export function unpublishable(entry: SpooledEntry): string | undefined {
  const { type, id, payload } = entry.record;
  const definition = messageDefinitionOf(type);
  if (!definition) return `unknown message type "${type}"`;
  if (!UUID_PATTERN.test(id)) return 'id: must be a UUID';
  const parsed = definition.payload.safeParse(payload);
  return parsed.success ? undefined : `invalid ${type} payload: ${describeIssues(parsed.error)}`;
}
