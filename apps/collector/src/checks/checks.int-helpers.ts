// Shared by the collector's integration tests: a tap on the check results that reach the
// broker (a queue of the test's own, bound in its isolated vhost to every shard's key), and
// a CheckResult payload factory.
import { connect, type ChannelModel } from 'amqplib';
import { ExchangeName, RoutingKey, type CheckResultPayload, type Envelope } from '@fleetwatch/contracts';

export class ResultTap {
  readonly envelopes: Envelope<CheckResultPayload>[] = [];

  private constructor(private readonly model: ChannelModel) {}

  /** Binds a private queue to `event.check.result.#` (results are routed by shard: `event.check.result.shard-NN`). */
  static async open(amqpUrl: string): Promise<ResultTap> {
    const model = await connect(amqpUrl);
    model.on('error', () => undefined);
    const channel = await model.createChannel();
    await channel.assertExchange(ExchangeName.Events, 'topic', { durable: true });
    const { queue } = await channel.assertQueue('', { exclusive: true, autoDelete: true });
    await channel.bindQueue(queue, ExchangeName.Events, `${RoutingKey.CheckResult}.#`);
    const tap = new ResultTap(model);
    await channel.consume(
      queue,
      (m) => {
        if (m) tap.envelopes.push(JSON.parse(m.content.toString('utf8')) as Envelope<CheckResultPayload>);
      },
      { noAck: true },
    );
    return tap;
  }

  /** Envelopes in arrival order with later copies of an id (at-least-once resends) left out. */
  unique(): Envelope<CheckResultPayload>[] {
    const seen = new Set<string>();
    return this.envelopes.filter((e) => !seen.has(e.id) && seen.add(e.id));
  }

  of(checkId: string): Envelope<CheckResultPayload>[] {
    return this.unique().filter((e) => e.payload.checkId === checkId);
  }

  async close(): Promise<void> {
    await this.model.close().catch(() => undefined);
  }
}

/** A valid check.result payload; `seq` travels in metadata so tests can check order. */
export function resultPayload(seq: number, over: Partial<CheckResultPayload> = {}): CheckResultPayload {
  return {
    checkId: 'spool-test',
    targetId: 'check:spool-test',
    location: 'loc-a',
    ok: true,
    latencyMs: 1,
    attempt: 1,
    startedAt: new Date().toISOString(),
    intervalSeconds: 30,
    metadata: { seq },
    ...over,
  };
}
