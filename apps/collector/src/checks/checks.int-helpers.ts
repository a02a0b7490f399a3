// Shared by the collector's integration tests: a tap on the check results that reach the
// broker (a queue of the test's own, bound in its isolated vhost to every shard's key), a
// CheckResult payload factory, local TCP targets, a seeded assignment file, and the
// collector itself booted in-process the way main.ts boots it.
import { randomUUID } from 'node:crypto';
import { createServer, type AddressInfo } from 'node:net';
import { connect, type ChannelModel } from 'amqplib';
import {
  checkInputSchema,
  ExchangeName,
  RoutingKey,
  TargetIds,
  type CheckDefinition,
  type CheckInput,
  type CheckResultPayload,
  type Envelope,
} from '@fleetwatch/contracts';
import { bootstrapService, type RunningService } from '@fleetwatch/observability';
import { CollectorModule, type CollectorModuleOptions } from '../collector.module';
import { loadCollectorConfig, type CollectorConfig } from '../config';
import { AssignmentFile } from './assignment/assignment-file';
import { ChecksService } from './checks.service';
import { freePortBlock } from '@fleetwatch/testing';

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
  const checkId = over.checkId ?? 'spool-test';
  return {
    checkId,
    // A result names its check's own target (the bus schema refuses another).
    targetId: `check:${checkId}`,
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

/** A port nothing listens on (bound, then closed). */
export async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise((r) => s.close(r));
  return port;
}

/** A TCP target that accepts and closes, counting connections. */
export interface CountingTarget {
  port: number;
  readonly accepted: number;
  close(): Promise<void>;
}

export async function countingTarget(): Promise<CountingTarget> {
  let accepted = 0;
  const s = createServer((socket) => {
    accepted++;
    socket.destroy();
  });
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return {
    port: (s.address() as AddressInfo).port,
    get accepted() {
      return accepted;
    },
    close: () => new Promise<void>((r) => s.close(() => r())),
  };
}

/** Stored check definitions (as the owner would send them) from check inputs. */
export function definitions(inputs: CheckInput[]): CheckDefinition[] {
  const now = new Date().toISOString();
  return inputs.map((input) => {
    const id = randomUUID();
    return {
      ...checkInputSchema.parse(input),
      id,
      targetId: TargetIds.check(id),
      version: 1,
      createdAt: now,
      updatedAt: now,
    };
  });
}

/** Writes `checks` as the collector's last known assignment (what it stored from its last fetch). */
export async function seedAssignment(
  file: string,
  location: string,
  checks: CheckDefinition[],
  version = 1,
): Promise<void> {
  await new AssignmentFile(file).save({
    location,
    version,
    hash: 'f'.repeat(64),
    receivedAt: new Date().toISOString(),
    checks,
  });
}

/** A collector booted in this process exactly as main.ts boots it (module, bootstrap, config from variables). */
export class CollectorHarness {
  private constructor(
    readonly service: RunningService,
    readonly config: CollectorConfig,
  ) {}

  static async start(
    env: Record<string, string>,
    options: Omit<CollectorModuleOptions, 'startedAt'> = {},
  ): Promise<CollectorHarness> {
    const startedAt = Date.now();
    const port = await freePortBlock(1);
    const config = loadCollectorConfig({
      COLLECTOR_PORT: String(port),
      LOG_LEVEL: 'error',
      FLEETWATCH_SITE: 'test-site',
      FLEETWATCH_SHUTDOWN_TIMEOUT_SECONDS: '8',
      ...env,
    });
    const service = await bootstrapService({
      module: CollectorModule.forRoot(config, { ...options, startedAt }),
      config,
    });
    return new CollectorHarness(service, config);
  }

  get checks(): ChecksService {
    return this.service.app.get(ChecksService);
  }

  get url(): string {
    return this.service.url;
  }

  async readyz(): Promise<{ status: number; body: { checks: Array<{ name: string; ok: boolean; error?: string }> } }> {
    const res = await fetch(`${this.url}/readyz`);
    return { status: res.status, body: (await res.json()) as never };
  }

  /** The value of one series on /metrics (summed over label sets matching `labels`). */
  async metric(name: string, labels: Record<string, string> = {}): Promise<number> {
    const text = await (await fetch(`${this.url}/metrics`)).text();
    let sum = 0;
    for (const line of text.split('\n')) {
      if (!line.startsWith(name)) continue;
      const m = /^([a-z_]+)(\{[^}]*\})? (\S+)$/.exec(line);
      if (!m || m[1] !== name) continue;
      const set = m[2] ?? '';
      if (Object.entries(labels).every(([k, v]) => set.includes(`${k}="${v}"`))) sum += Number(m[3]);
    }
    return sum;
  }

  stop(): Promise<void> {
    return this.service.shutdown('test');
  }
}
