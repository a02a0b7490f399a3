import type { Channel, ConsumeMessage } from 'amqplib';
import { ExchangeName, Messages, parseMessage, RoutingKey, type ConfigChangedPayload } from '@fleetwatch/contracts';
import { SetupOrder, type BusConnection, type ConnectionSession } from './connection';

// Follows `config.changed` so a configuration change reaches this process within a
// second or two (issue 15: < 2 s): a collector's assignment, status-ingest's cached
// heartbeat monitors.
//
// Every process must see EVERY event: each one decides for itself whether what it
// holds changed. So each consumes through a queue of its own — exclusive,
// auto-delete, server-named, bound to `event.config.changed` on the events exchange —
// and NOT through the durable quorum queue QueueName.CollectorConfig: consumers of one
// queue share its messages round-robin, so with two collectors each would see only every
// other change. The queue lives as long as the connection; events sent while the
// process is disconnected are lost by design, which is why every (re)connect triggers
// a refetch too (`onConnected`), and what is held is also re-read periodically.

export interface ConfigEventsLogger {
  warn(obj: object, msg: string): void;
}

export class ConfigChangedFollower {
  private removeSetup: (() => void) | undefined;
  private channel: Channel | undefined;
  private reopenTimer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly connection: BusConnection,
    private readonly handlers: {
      onChanged(payload: ConfigChangedPayload): void;
      /** The queue is (again) in place: events may have been missed meanwhile. */
      onConnected(): void;
    },
    private readonly logger: ConfigEventsLogger,
  ) {}

  start(): void {
    if (this.removeSetup || this.stopped) return;
    this.removeSetup = this.connection.addSetup({
      name: 'config.changed follower',
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
    channel.on('error', (e: Error) => this.logger.warn({ error: e.message }, 'config.changed channel error'));
    // The consuming connection may come up before the publishing one declared the exchanges.
    await channel.assertExchange(ExchangeName.Events, 'topic', { durable: true });
    const { queue } = await channel.assertQueue('', {
      exclusive: true,
      autoDelete: true,
      durable: false,
      arguments: { 'x-queue-type': 'classic' },
    });
    await channel.bindQueue(queue, ExchangeName.Events, RoutingKey.ConfigChanged);
    // noAck: an event is a hint to refetch; losing one costs at most a periodic refetch's delay.
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
    if (!parsed.ok || parsed.value.type !== Messages.ConfigChanged.type) {
      this.logger.warn({ reason: parsed.ok ? `type ${parsed.value.type}` : parsed.reason }, 'config.changed: ignored');
      return;
    }
    this.handlers.onChanged(parsed.value.payload as ConfigChangedPayload);
  }

  private onClosed(channel: Channel, session: ConnectionSession): void {
    if (this.channel === channel) this.channel = undefined;
    if (this.stopped) return;
    // Channel closed on a live connection (broker-side cancel, channel error): reopen.
    // A lost connection runs the setup again by itself.
    if (this.connection.current()?.generation !== session.generation || this.reopenTimer) return;
    this.reopenTimer = setTimeout(() => {
      this.reopenTimer = undefined;
      const now = this.connection.current();
      if (now && !this.stopped)
        this.open(now).catch((e: unknown) => {
          this.logger.warn({ error: (e as Error).message }, 'config.changed: could not reopen; retrying');
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
