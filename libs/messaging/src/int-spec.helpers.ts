// Helpers shared by this lib's integration tests (not exported from index).
import { connect, type ChannelModel, type GetMessage } from 'amqplib';
import { Messages, type MessageSource, type PayloadInputOf } from '@fleetwatch/contracts';
import { BusConnection, type BusConnectionOptions } from './connection';
import { silentBusLogger } from './logger';

export const TEST_SOURCE: MessageSource = { site: 'test-site', service: 'tool', location: 'lab-1' };

export function checkResult(
  i: number,
  extra: Partial<PayloadInputOf<typeof Messages.CheckResult>> = {},
): PayloadInputOf<typeof Messages.CheckResult> {
  const checkId = extra.checkId ?? `check-${i % 97}`;
  return {
    checkId,
    location: 'lab-1',
    ok: i % 13 !== 0,
    latencyMs: (i % 500) + 0.5,
    attempt: 1,
    startedAt: new Date(1_764_000_000_000 + i).toISOString(),
    ...extra,
    // A result names its check's own target (the bus schema refuses another), whatever checkId a test gives.
    targetId: extra.targetId ?? `check:${checkId}`,
  };
}

/** A connection tuned for tests: quiet, quick heartbeats and reconnects. */
export function testConnection(url: string, overrides: Partial<BusConnectionOptions> = {}): BusConnection {
  return new BusConnection({
    url,
    name: 'test',
    heartbeatSeconds: 2,
    connectTimeoutMs: 2_000,
    backoff: { initialDelayMs: 50, maxDelayMs: 500, jitter: 0.5 },
    logger: silentBusLogger,
    ...overrides,
  });
}

/** Raw amqplib access to inspect queues (counts, DLQ messages) behind the library's back. */
export class RawAmqp {
  private constructor(private readonly model: ChannelModel) {}

  static async open(url: string): Promise<RawAmqp> {
    return new RawAmqp(await connect(url));
  }

  async count(queue: string): Promise<number> {
    const ch = await this.model.createChannel();
    try {
      return (await ch.checkQueue(queue)).messageCount;
    } finally {
      await ch.close().catch(() => undefined);
    }
  }

  async purge(queue: string): Promise<void> {
    const ch = await this.model.createChannel();
    try {
      await ch.purgeQueue(queue);
    } finally {
      await ch.close().catch(() => undefined);
    }
  }

  /** Gets (and acks) every message currently in `queue`. */
  async drain(queue: string): Promise<GetMessage[]> {
    const ch = await this.model.createChannel();
    const out: GetMessage[] = [];
    try {
      for (;;) {
        const m = await ch.get(queue, { noAck: true });
        if (!m) break;
        out.push(m);
      }
    } finally {
      await ch.close().catch(() => undefined);
    }
    return out;
  }

  /** Publishes raw bytes (bypassing validation) and waits for the confirm. */
  async publishRaw(
    exchange: string,
    routingKey: string,
    content: Buffer,
    properties: Record<string, unknown> = {},
  ): Promise<void> {
    const ch = await this.model.createConfirmChannel();
    try {
      ch.publish(exchange, routingKey, content, { persistent: true, ...properties });
      await ch.waitForConfirms();
    } finally {
      await ch.close().catch(() => undefined);
    }
  }

  channel(): ReturnType<ChannelModel['createConfirmChannel']> {
    return this.model.createConfirmChannel();
  }

  close(): Promise<void> {
    return this.model.close().catch(() => undefined);
  }
}
