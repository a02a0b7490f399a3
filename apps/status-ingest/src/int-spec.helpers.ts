// Shared by status-ingest's integration tests: boots the real service (the same
// bootstrap as main.ts) on a free port against an isolated vhost, creates API keys
// speaks HTTP, and reads what reached the broker.
import { randomUUID } from 'node:crypto';
import { connect, type ChannelModel } from 'amqplib';
import { OBSERVATION_SHARDS, observationShardQueue, type Envelope } from '@fleetwatch/contracts';
import type { RunningService } from '@fleetwatch/observability';
import { ApiKeysRepository, createPrismaClient, generateApiKey, type DatabaseClient } from '@fleetwatch/persistence';
import { freePortBlock, testEnv } from '@fleetwatch/testing';
import { loadIngestConfig, type IngestConfig } from './config';
import { startStatusIngest } from './status-ingest.bootstrap';

/** What a test file gets from libs/testing (createIsolatedVhost, testEnv) and hands over. */
export interface HarnessServers {
  /** An isolated vhost: the harness disposes it on stop(). */
  vhost: { amqpUrl: string; dispose(): Promise<void> };
  databaseUrl: string;
  /**
   * Redis prefix of the site (rate-limit buckets, ingress pause): replicas of one
   * site share it. Default: one of its own per harness, so test files running at
   * once never pause or limit each other.
   */
  redisPrefix?: string;
}

/** The queues status-ingest publishes observations to: one per shard (issue 14). */
export const OBSERVATIONS: readonly string[] = Array.from({ length: OBSERVATION_SHARDS }, (_, i) =>
  observationShardQueue(i),
);

/**
 * A port for a service the test boots: drawn below the kernel's ephemeral range (libs/testing's freePortBlock), since
 * the service opens its database and broker connections before it listens, and one of those may take a port that
 * `listen(0)` handed out.
 */
export function freePort(): Promise<number> {
  return freePortBlock(1);
}

export interface HttpAnswer {
  status: number;
  headers: Headers;
  text: string;
  json: unknown;
}

export interface PostOptions {
  key?: string | null;
  contentType?: string | null;
  headers?: Record<string, string>;
}

/** A running status-ingest plus what its tests need around it. */
export class IngestHarness {
  private constructor(
    readonly service: RunningService,
    readonly config: IngestConfig,
    readonly servers: HarnessServers,
    readonly db: DatabaseClient,
    readonly keys: ApiKeysRepository,
    readonly amqp: ChannelModel,
  ) {}

  /**
   * Boots status-ingest on a free port. `env` overrides variables
   * (`INGEST_RATE_LIMIT_BURST`, …); `options.amqpUrl` rewrites the broker URL
   * (to go through a TcpProxy).
   */
  static async start(
    servers: HarnessServers,
    env: Record<string, string> = {},
    options: { amqpUrl?: (url: string) => string | Promise<string> } = {},
  ): Promise<IngestHarness> {
    const { vhost, databaseUrl } = servers;
    const port = await freePort();
    const amqpUrl = options.amqpUrl ? await options.amqpUrl(vhost.amqpUrl) : vhost.amqpUrl;
    const config = loadIngestConfig({
      DATABASE_URL: databaseUrl,
      AMQP_URL: amqpUrl,
      REDIS_URL: testEnv().redisUrl,
      FLEETWATCH_REDIS_PREFIX: servers.redisPrefix ?? `${testEnv().redisPrefix}ingest-${randomUUID()}:`,
      STATUS_INGEST_PORT: String(port),
      LOG_LEVEL: 'error',
      FLEETWATCH_SITE: 'test-site',
      FLEETWATCH_BOOT_TIMEOUT_SECONDS: '10',
      ...env,
    });
    const service = await startStatusIngest(config);
    const db = createPrismaClient(databaseUrl, { poolSize: 2 });
    const amqp = await connect(vhost.amqpUrl);
    amqp.on('error', () => undefined);
    const harness = new IngestHarness(service, config, servers, db, new ApiKeysRepository(db), amqp);
    await harness.waitReady();
    return harness;
  }

  get url(): string {
    return `http://127.0.0.1:${this.config.port}`;
  }

  /** Until /readyz says 200 (database and broker reachable, topology declared). */
  async waitReady(timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = '';
    while (Date.now() < deadline) {
      const res = await this.request('GET', '/readyz').catch((e: unknown) => ({ status: 0, text: String(e) }));
      if (res.status === 200) return;
      last = `${res.status} ${res.text}`;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`status-ingest not ready within ${timeoutMs} ms: ${last}`);
  }

  async stop(): Promise<void> {
    await this.service.shutdown('test');
    await this.amqp.close().catch(() => undefined);
    await this.db.$disconnect();
    await this.servers.vhost.dispose();
  }

  /** A new key (through the repository, as the gateway creates them); returns the secret and its id. */
  async createKey(scopes: string[] = ['ingest'], allowedCidrs: string[] = []): Promise<{ key: string; id: string }> {
    const generated = generateApiKey();
    const record = await this.keys.create({
      name: `test ${generated.prefix}`,
      prefix: generated.prefix,
      keyHash: generated.keyHash,
      scopes,
      allowedCidrs,
    });
    return { key: generated.key, id: record.id };
  }

  async post(body: unknown, options: PostOptions = {}, path = '/api/v1/status/updates'): Promise<HttpAnswer> {
    const headers: Record<string, string> = { ...(options.headers ?? {}) };
    if (options.key) headers['authorization'] = `Bearer ${options.key}`;
    if (options.contentType !== null) headers['content-type'] = options.contentType ?? 'application/json';
    const raw =
      body === undefined
        ? undefined
        : Buffer.isBuffer(body)
          ? body
          : typeof body === 'string'
            ? body
            : JSON.stringify(body);
    return this.request('POST', path, headers, raw);
  }

  async request(
    method: string,
    path: string,
    headers: Record<string, string> = {},
    body?: string | Buffer,
  ): Promise<HttpAnswer> {
    const res = await fetch(this.url + path, { method, headers, body, signal: AbortSignal.timeout(30_000) });
    const text = await res.text();
    let json: unknown = undefined;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    return { status: res.status, headers: res.headers, text, json };
  }

  /**
   * Every bus message now in `queue` (default: every shard queue, shard after shard), as
   * sent (a batch POST is one `status.update.batch` message per shard its targets fall in).
   */
  async drainRaw(
    queue: string | readonly string[] = OBSERVATIONS,
  ): Promise<Array<{ envelope: Envelope; messageId: string | undefined; routingKey: string; queue: string }>> {
    const ch = await this.amqp.createChannel();
    const out: Array<{ envelope: Envelope; messageId: string | undefined; routingKey: string; queue: string }> = [];
    try {
      for (const q of typeof queue === 'string' ? [queue] : queue) {
        for (;;) {
          const m = await ch.get(q, { noAck: true });
          if (!m) break;
          out.push({
            envelope: JSON.parse(m.content.toString('utf8')) as Envelope,
            messageId: m.properties.messageId as string | undefined,
            routingKey: m.fields.routingKey,
            queue: q,
          });
        }
      }
    } finally {
      await ch.close().catch(() => undefined);
    }
    return out;
  }

  /**
   * Takes (and acks) every message now in `queue`, parsed, with each update of a
   * `status.update.batch` message unfolded into the single message it stands for
   * (its own id — the id a consumer de-duplicates by — and a `status.update` payload).
   */
  async drain(
    queue: string | readonly string[] = OBSERVATIONS,
  ): Promise<Array<{ envelope: Envelope; messageId: string | undefined; batchId?: string }>> {
    const out: Array<{ envelope: Envelope; messageId: string | undefined; batchId?: string }> = [];
    for (const m of await this.drainRaw(queue)) {
      if (m.envelope.type !== 'status.update.batch') {
        out.push(m);
        continue;
      }
      for (const { id, ...payload } of (
        m.envelope.payload as { updates: Array<{ id: string } & Record<string, unknown>> }
      ).updates) {
        out.push({
          envelope: { ...m.envelope, id, type: 'status.update', payload },
          messageId: id,
          batchId: m.envelope.id,
        });
      }
    }
    return out;
  }

  async count(queue: string | readonly string[] = OBSERVATIONS): Promise<number> {
    const ch = await this.amqp.createChannel();
    try {
      let n = 0;
      for (const q of typeof queue === 'string' ? [queue] : queue) n += (await ch.checkQueue(q)).messageCount;
      return n;
    } finally {
      await ch.close().catch(() => undefined);
    }
  }

  /** Publishes a raw command envelope into the commands exchange (as the orchestrator would). */
  async publishCommand(routingKey: string, envelope: Envelope): Promise<void> {
    const ch = await this.amqp.createConfirmChannel();
    try {
      ch.publish('fleetwatch.commands', routingKey, Buffer.from(JSON.stringify(envelope)), {
        persistent: true,
        messageId: envelope.id,
        contentType: 'application/json',
      });
      await ch.waitForConfirms();
    } finally {
      await ch.close().catch(() => undefined);
    }
  }
}

/** A minimal valid update. */
export function update(i: number | string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { instanceId: `web-${i}`, kind: 'container', status: 'running', ...extra };
}

export function errorOf(answer: HttpAnswer): {
  code: string;
  message: string;
  issues?: Array<{ path: string; message: string }>;
} {
  const body = answer.json as
    { error?: { code: string; message: string; issues?: Array<{ path: string; message: string }> } } | undefined;
  if (!body?.error) throw new Error(`expected an ApiErrorBody, got ${answer.status} ${answer.text.slice(0, 300)}`);
  return body.error;
}
