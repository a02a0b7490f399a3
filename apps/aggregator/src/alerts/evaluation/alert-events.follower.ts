import type { Channel, ConsumeMessage } from 'amqplib';
import {
  ExchangeName,
  Messages,
  parseMessage,
  RoutingKey,
  type ConfigChangedPayload,
  type StatusChangedBatchPayload,
  type StatusChangedPayload,
} from '@fleetwatch/contracts';
import { SetupOrder, type BusConnection, type ConnectionSession } from '@fleetwatch/messaging';

// How the evaluator hears of changes (issue 18): one queue of this replica's own — exclusive, auto-delete,
// server-named — bound to `event.status.changed(-batch)` and `event.config.changed` on the events exchange.
//
// Why a queue per replica and not the durable AggregatorAlerts queue: status changes are committed by
// whichever replica holds a target's shard, and the evaluator is whichever replica holds the evaluator
// lease; a shared queue would hand each replica a share of the events. Each replica follows every event
// and only the lease holder acts on them. An event is a hint, not the record: target_states is. So
// events missed while the connection was down (`onConnected`) or before the lease was taken are covered
// by a full reload of target_states — at lease take, on every (re)connect and every `resyncMs` — and the
// sequence each event carries keeps an old event from moving a target back.
// (Polling target_states by updated_at instead would re-read every target on every observation: the
// location rows change with each result.)

export interface AlertEventsLogger {
  warn(obj: object, msg: string): void;
}

export interface AlertEventHandlers {
  onStatusChanged(payload: StatusChangedPayload): void;
  onConfigChanged(payload: ConfigChangedPayload): void;
  /** The queue is (again) in place: events may have been missed meanwhile. */
  onConnected(): void;
}

export class AlertEventsFollower {
  private removeSetup: (() => void) | undefined;
  private channel: Channel | undefined;
  private reopenTimer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly connection: BusConnection,
    private readonly handlers: AlertEventHandlers,
    private readonly logger: AlertEventsLogger,
  ) {}

  start(): void {
    if (this.removeSetup || this.stopped) return;
    this.removeSetup = this.connection.addSetup({
      name: 'alert evaluator events',
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
    channel.on('error', (e: Error) => this.logger.warn({ error: e.message }, 'alert events channel error'));
    await channel.assertExchange(ExchangeName.Events, 'topic', { durable: true });
    const { queue } = await channel.assertQueue('', {
      exclusive: true,
      autoDelete: true,
      durable: false,
      arguments: { 'x-queue-type': 'classic' },
    });
    await channel.bindQueue(queue, ExchangeName.Events, RoutingKey.StatusChanged);
    await channel.bindQueue(queue, ExchangeName.Events, RoutingKey.StatusChangedBatch);
    await channel.bindQueue(queue, ExchangeName.Events, RoutingKey.ConfigChanged);
    // noAck: an event is a hint; what it says is read again from Postgres on any doubt (see above).
    await channel.consume(queue, (m) => this.onMessage(m), { noAck: true });
    channel.on('close', () => this.onClosed(channel, session));
    if (this.stopped) {
      await closeSoon(channel);
      return;
    }
    this.channel = channel;
    this.handlers.onConnected();
  }

  private onMessage(m: ConsumeMessage | null): void {
    if (!m) return; // cancelled by the broker: the channel closes and is reopened
    const parsed = parseMessage(m.content);
    if (!parsed.ok) {
      this.logger.warn({ reason: parsed.reason }, 'alert events: invalid message ignored');
      return;
    }
    const { type, payload } = parsed.value;
    if (type === Messages.StatusChangedBatch.type)
      for (const event of (payload as StatusChangedBatchPayload).events) this.handlers.onStatusChanged(event);
    else if (type === Messages.StatusChanged.type) this.handlers.onStatusChanged(payload as StatusChangedPayload);
    else if (type === Messages.ConfigChanged.type) this.handlers.onConfigChanged(payload as ConfigChangedPayload);
  }

  private onClosed(channel: Channel, session: ConnectionSession): void {
    if (this.channel === channel) this.channel = undefined;
    if (this.stopped) return;
    // Closed on a live connection (broker-side cancel, channel error): reopen. A lost connection runs the
    // setup again by itself.
    if (this.connection.current()?.generation !== session.generation || this.reopenTimer) return;
    this.reopenTimer = setTimeout(() => {
      this.reopenTimer = undefined;
      const now = this.connection.current();
      if (now && !this.stopped)
        this.open(now).catch((e: unknown) => {
          this.logger.warn({ error: (e as Error).message }, 'alert events: could not reopen; retrying');
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
