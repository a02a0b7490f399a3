import { messageDefinitionOf } from '@fleetwatch/contracts';
import {
  backoffDelay,
  InvalidMessageError,
  type BusPublisher,
  type ConnectionState,
  type PublishRequest,
} from '@fleetwatch/messaging';
import type { Spool, SpooledEntry, SpoolLogger } from './spool';

// Moves spooled messages to the broker: one batch at a time, in spool order, with
// publisher confirms, and confirms them in the spool only up to the last message of
// the batch's unbroken confirmed prefix. A message after a failed one is sent again
// with its neighbours (at-least-once, same envelope id); nothing is skipped. While the
// broker is away the loop waits for the connection (and backs off), the spool keeps
// filling, and on reconnect the backlog goes out oldest first.

export interface DrainConnection {
  isConnected(): boolean;
  onState(listener: (state: ConnectionState) => void): () => void;
}

export interface SpoolDrainOptions {
  /** Messages per publish batch (pipelined on one channel, confirmed together). Default 500. */
  batchSize?: number;
  /** How long to let results gather after the spool ran empty, before publishing them together. Default 100 ms. */
  lingerMs?: number;
  /** Upper bound of one batch's publish (connection wait included). Default 5000. */
  publishTimeoutMs?: number;
  logger: SpoolLogger & { info(obj: object, msg: string): void };
  /** Called with the count of messages the broker confirmed. */
  onPublished?: (count: number) => void;
}

export class SpoolDrain {
  private running: Promise<void> | undefined;
  private stopping = false;
  private deadline = Infinity;
  private wake: (() => void) | undefined;
  private failures = 0;
  private lastFailureLog = 0;

  constructor(
    private readonly spool: Spool,
    private readonly publisher: Pick<BusPublisher, 'publishManySettled'>,
    private readonly connection: DrainConnection,
    private readonly options: SpoolDrainOptions,
  ) {}

  start(): void {
    this.running ??= this.loop().catch((e: unknown) =>
      this.options.logger.error({ error: (e as Error).message }, 'spool drain stopped on an unexpected error'),
    );
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

  private async loop(): Promise<void> {
    const batchSize = this.options.batchSize ?? 500;
    const lingerMs = this.options.lingerMs ?? 100;
    for (;;) {
      if (this.stopping && (Date.now() >= this.deadline || !this.connection.isConnected())) return;
      const entries = await this.spool.read(batchSize);
      if (entries.length === 0) {
        if (this.stopping) return;
        await this.idle(this.spool.waitForData());
        // Results trickle in (10,000 checks a minute: one every 6 ms): a short linger lets a batch gather, so
        // the per-publish cost (read, confirm round trip, cursor) is paid per batch instead of per result.
        if (!this.stopping && lingerMs > 0) await this.idle(new Promise((r) => setTimeout(r, lingerMs).unref()));
        continue;
      }
      const { done, published } = await this.publish(entries);
      if (done > 0) await this.spool.confirm(entries[done - 1].end);
      if (published > 0) this.options.onPublished?.(published);
      if (done < entries.length) await this.backOff();
      else if (this.failures > 0) {
        this.options.logger.info({ after: this.failures }, 'spool: publishing again');
        this.failures = 0;
      }
    }
  }

  /**
   * Publishes `entries` in order. `done`: how many of the first ones are finished with — confirmed by the broker
   * without a gap, or discarded as unpublishable; `published`: how many of those the broker confirmed.
   */
  private async publish(entries: SpooledEntry[]): Promise<{ done: number; published: number }> {
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
    if (requests.length === 0) return this.discard(entries[0], `unknown message type "${entries[0].record.type}"`);
    let outcomes;
    try {
      outcomes = await this.publisher.publishManySettled(requests, { timeoutMs: this.options.publishTimeoutMs });
    } catch (e) {
      if (!(e instanceof InvalidMessageError)) throw e;
      // One message can never be sent (a payload its contract refuses): publish those before it, then drop it.
      const bad = requests.findIndex((r) => !r.definition.payload.safeParse(r.payload).success);
      if (bad === 0) return this.discard(entries[0], e.reason);
      if (bad < 0) {
        this.failed(e);
        return { done: 0, published: 0 };
      }
      return this.publish(entries.slice(0, bad));
    }
    let ok = 0;
    while (ok < outcomes.length && outcomes[ok].ok) ok++;
    if (ok < outcomes.length) {
      const failure = outcomes[ok];
      if (!failure.ok) this.failed(failure.error);
    }
    return { done: ok, published: ok };
  }

  /** A message that can never be published leaves the spool with an error in the log (it would block the rest forever). */
  private discard(entry: SpooledEntry, reason: string): { done: number; published: number } {
    this.options.logger.error({ id: entry.record.id, type: entry.record.type, reason }, 'spool: message discarded');
    return { done: 1, published: 0 };
  }

  private failed(error: Error): void {
    this.failures++;
    const now = Date.now();
    // Once at the start of an outage, then once a minute: the outage is also visible as spool size on /metrics.
    if (this.failures === 1 || now - this.lastFailureLog >= 60_000) {
      this.lastFailureLog = now;
      this.options.logger.warn(
        { error: error.message, kind: error.name, attempts: this.failures },
        'spool: results not published yet; they wait on disk',
      );
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
