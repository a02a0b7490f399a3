import type { Channel, ConsumeMessage } from 'amqplib';
import { ExchangeName, parseMessage, type Envelope } from '@fleetwatch/contracts';
import { SetupOrder, type BusConnection, type ConnectionSession } from './connection';

// Follows events on the events exchange in a queue of this process's own — exclusive, auto-delete, server-named,
// bound to the routing keys given — for processes that must each see EVERY event (a collector's assignment,
// status-ingest's cached heartbeat monitors, each aggregator replica's alert evaluator): consumers of one shared
// queue would get its messages round-robin, each only a share. The queue lives as long as the connection: events
// sent while the process is disconnected are lost by design, so what a follower holds must be re-read on every
// (re)connect (`onConnected`) and periodically — an event is a hint to refetch, never the record.

export interface EventFollowerLogger {
  warn(obj: object, msg: string): void;
}

export interface EventFollowerOptions {
  /** In logs and the connection's setup list ("config.changed follower"). */
  name: string;
  /** Routing keys on ExchangeName.Events the queue is bound to. */
  routingKeys: readonly string[];
  /** Each valid message (envelope and payload checked by parseMessage); what is invalid is logged and dropped. */
  onMessage(envelope: Envelope): void;
  /** The queue is (again) in place: events may have been missed meanwhile. */
  onConnected(): void;
}

export class EventFollower {
  private removeSetup: (() => void) | undefined;
  private channel: Channel | undefined;
  private queueName: string | undefined;
  private reopenTimer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly connection: BusConnection,
    private readonly opts: EventFollowerOptions,
    private readonly logger: EventFollowerLogger,
  ) {}

  /** The server-named queue while one is open (diagnostics, tests). */
  get queue(): string | undefined {
    return this.channel ? this.queueName : undefined;
  }

  start(): void {
    if (this.removeSetup || this.stopped) return;
    this.removeSetup = this.connection.addSetup({
      name: this.opts.name,
      order: SetupOrder.Consumer,
      run: (s) => this.open(s),
    });
    this.connection.start();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.removeSetup?.();
    clearTimeout(this.reopenTimer);
    const ch = this.channel;
    this.channel = undefined;
    if (ch) await closeSoon(ch);
  }

  private async open(session: ConnectionSession): Promise<void> {
    if (this.stopped) return;
    const channel = await session.model.createChannel();
    channel.on('error', (e: Error) => this.logger.warn({ error: e.message }, `${this.opts.name}: channel error`));
    // The consuming connection may come up before the publishing one declared the exchanges.
    await channel.assertExchange(ExchangeName.Events, 'topic', { durable: true });
    const { queue } = await channel.assertQueue('', {
      exclusive: true,
      autoDelete: true,
      durable: false,
      arguments: { 'x-queue-type': 'classic' },
    });
    for (const key of this.opts.routingKeys) await channel.bindQueue(queue, ExchangeName.Events, key);
    // noAck: an event is a hint to refetch; losing one costs at most a periodic refetch's delay.
    await channel.consume(queue, (m) => (m ? this.onMessage(m) : this.onCancelled(channel)), { noAck: true });
    channel.on('close', () => this.onClosed(channel, session));
    if (this.stopped) {
      await closeSoon(channel);
      return;
    }
    // One queue at a time: one still held (a reopen that raced a setup) is closed, not left delivering.
    const before = this.channel;
    this.channel = channel;
    this.queueName = queue;
    if (before && before !== channel) void closeSoon(before);
    this.opts.onConnected();
  }

  /**
   * The broker cancelled the consumer (its queue was deleted — by an operator, or with the node that held it): the
   * channel stays open but nothing arrives on it any more. Closing it makes `onClosed` open a new queue.
   */
  private onCancelled(channel: Channel): void {
    this.logger.warn({}, `${this.opts.name}: consumer cancelled by the broker; opening a new queue`);
    void closeSoon(channel);
  }

  private onMessage(m: ConsumeMessage): void {
    const parsed = parseMessage(m.content);
    if (!parsed.ok) {
      this.logger.warn({ reason: parsed.reason }, `${this.opts.name}: invalid message ignored`);
      return;
    }
    this.opts.onMessage(parsed.value);
  }

  private onClosed(channel: Channel, session: ConnectionSession): void {
    const current = this.channel === channel;
    if (current) this.channel = undefined;
    if (this.stopped) return;
    // A channel another has replaced (closed by open()) is no reason to open one more.
    if (!current && this.channel !== undefined) return;
    // Channel closed on a live connection (broker-side cancel, channel error): reopen.
    // A lost connection runs the setup again by itself.
    if (this.connection.current()?.generation !== session.generation || this.reopenTimer) return;
    this.reopenTimer = setTimeout(() => {
      this.reopenTimer = undefined;
      // Only on the session whose channel closed: amqplib closes the channels before the connection itself, so a
      // dying connection looked live here, and a reconnect within the delay had opened its own queue by now — a
      // second queue (each event twice; the untracked one kept delivering after stop()).
      const now = this.connection.current();
      if (now && !this.stopped && now.generation === session.generation)
        this.open(now).catch((e: unknown) => {
          this.logger.warn({ error: (e as Error).message }, `${this.opts.name}: could not reopen; retrying`);
          this.onClosed(channel, now);
        });
    }, 1_000);
    this.reopenTimer.unref();
  }
}

/** amqplib's close() never settles when the socket died meanwhile: give it two seconds. */
async function closeSoon(channel: Channel): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    channel.close().catch(() => undefined),
    new Promise<void>((r) => (timer = setTimeout(r, 2_000))),
  ]);
  clearTimeout(timer);
}
