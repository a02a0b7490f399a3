import { connect, type ChannelModel, type ConfirmChannel, type ConsumeMessage } from 'amqplib';
import {
  AlertConfigRpcMethod,
  buildEnvelope,
  BusHeader,
  ConfigRpcMethod as M,
  SubscriptionRpcMethod,
  Messages,
  QueueName,
  rpcReplySchema,
  type MessageSource,
  type RpcReply,
} from '@fleetwatch/contracts';
import { createBus, RpcClient, RpcServer, silentBusLogger, type Bus, type RpcContext } from '@fleetwatch/messaging';
import { createTargetPolicy, DEFAULT_DENY_NETWORKS } from '@fleetwatch/domain';
import { runInSqlTransaction, SecretSealer, SubscriptionsRepository } from '@fleetwatch/persistence';
import { TcpProxy, waitFor } from '@fleetwatch/testing';
import { Client } from 'pg';
import { ConfigRpcHandler, requestOf as requestWith } from './config.rpc-handler';
import { AlertingRpcHandler } from '../alerting/alerting.rpc-handler';
import { SubscriptionsRpcHandler } from '../subscriptions/subscriptions.rpc-handler';
import { SubscriptionsService } from '../subscriptions/subscriptions.service';
import { ALICE, BOB, ConfigTestServers, startOwner, TEST_SEALING_KEY, type OwnerParts } from './config.int-helpers';

// At-least-once RPC must not apply a write twice: RabbitMQ redelivers a request whose
// owner committed the write but never acked it (crash, lost channel). The write records
// the request's message id with its answer in its own transaction, and a request whose id
// is recorded is answered with that answer, writing nothing.

jest.setTimeout(120_000);

const SOURCE: MessageSource = { site: 'test', service: 'api-gateway', location: 'lab-1' };

/** The owner's FLEETWATCH_ENCRYPTION_KEY (startOwner's sealer), as the RPC handlers pass it to requestOf. */
const SEALER = SecretSealer.fromText(TEST_SEALING_KEY);
const requestOf = (ctx: RpcContext, params: unknown) => requestWith(ctx, params, SEALER);

let servers: ConfigTestServers;
let parts: OwnerParts;
let sql: Client;

beforeAll(async () => {
  servers = await ConfigTestServers.create('config-idempotency');
  parts = startOwner(servers.db.databaseUrl, null);
  sql = new Client({ connectionString: servers.db.databaseUrl });
  await sql.connect();
});
afterAll(async () => {
  await sql?.end();
  await parts?.close();
  await servers?.dispose();
});

/** The owner's RPC side as sync-orchestrator wires it (ConfigRpcHandler on an RpcServer), on a bus at `url`. */
async function rpcOwner(url: string, replyTimeoutMs = 5_000): Promise<{ bus: Bus; server: RpcServer }> {
  const bus = createBus({
    url,
    source: { ...SOURCE, service: 'sync-orchestrator' },
    name: 'owner',
    queues: [QueueName.SyncOrchestratorCommands],
    heartbeatSeconds: 2,
    backoff: { initialDelayMs: 50, maxDelayMs: 300, jitter: 0.5 },
    logger: silentBusLogger,
  });
  const server = new RpcServer(bus.consumer, bus.connection, { replyTimeoutMs, logger: silentBusLogger });
  new ConfigRpcHandler(server, parts.config, parts.asCode, SEALER).onModuleInit();
  await server.start().waitUntilActive(15_000);
  return { bus, server };
}

async function versionCount(): Promise<number> {
  return (await servers.versions()).length;
}

describe('the same request delivered twice (same message id)', () => {
  let amqp: ChannelModel;
  let ch: ConfirmChannel;
  let replyQueue: string;
  const replies: ConsumeMessage[] = [];
  let owner: { bus: Bus; server: RpcServer };

  beforeAll(async () => {
    owner = await rpcOwner(servers.vhost.amqpUrl);
    amqp = await connect(servers.vhost.amqpUrl);
    ch = await amqp.createConfirmChannel();
    replyQueue = (await ch.assertQueue('', { exclusive: true, autoDelete: true, durable: false })).queue;
    await ch.consume(replyQueue, (m) => void (m && replies.push(m)), { noAck: true });
  });
  afterAll(async () => {
    await amqp?.close().catch(() => undefined);
    await owner?.server.stop();
    await owner?.bus.close();
  });

  /** One request, as RpcClient writes it, published `copies` times with the same bytes and properties. */
  async function deliverTwice(method: M, params: unknown, copies = 2, deadlineMs = 30_000): Promise<RpcReply[]> {
    const envelope = buildEnvelope(Messages.RpcRequest.type, Messages.RpcRequest.schemaVersion, SOURCE, {
      method,
      params,
      deadline: new Date(Date.now() + deadlineMs).toISOString(),
    });
    const content = Buffer.from(JSON.stringify(envelope));
    const properties = {
      persistent: true,
      contentType: 'application/json',
      messageId: envelope.id,
      correlationId: envelope.correlationId,
      replyTo: replyQueue,
      type: envelope.type,
      headers: { [BusHeader.SchemaVersion]: envelope.schemaVersion, [BusHeader.MessageType]: envelope.type },
    };
    for (let i = 0; i < copies; i++)
      ch.publish(Messages.RpcRequest.exchange, Messages.RpcRequest.routingKey, content, properties);
    await ch.waitForConfirms();
    const mine = () => replies.filter((r) => r.properties.correlationId === envelope.correlationId);
    await waitFor(() => mine().length === copies, { description: `${copies} replies to ${method}`, timeoutMs: 20_000 });
    return mine().map((r) => rpcReplySchema.parse(JSON.parse(r.content.toString('utf8'))));
  }

  const nightly = { name: 'nightly', type: 'push', periodSeconds: 3600, graceSeconds: 60 };

  it('create: both copies (handled at once) answer the same check and ping token; one check, one version', async () => {
    const before = await versionCount();
    const [first, second] = await deliverTwice(M.ChecksCreate, { actor: ALICE, check: nightly });
    expect(first).toMatchObject({ ok: true, result: { check: { name: 'nightly' }, pingToken: expect.any(String) } });
    // Without the record, the second would answer `conflict` (name taken) and the caller's token would be lost.
    expect(second).toEqual(first);
    expect(await versionCount()).toBe(before + 1);
    const { rows } = await sql.query('SELECT count(*)::int AS n FROM heartbeat_monitors');
    expect(rows[0].n).toBe(1);
    const audit = await sql.query("SELECT count(*)::int AS n FROM audit_log WHERE action = 'check.create'");
    expect(audit.rows[0].n).toBe(1);
    // The recorded reply keeps the ping token apart (cleared after the deadline), not in `reply`.
    const recorded = await sql.query('SELECT method, reply, secrets FROM config_requests');
    expect(recorded.rows).toEqual([
      {
        method: M.ChecksCreate,
        reply: expect.not.objectContaining({ pingTokens: expect.anything() }),
        secrets: { pingTokens: expect.any(Object) },
      },
    ]);
  });

  it('a write whose deadline passes while it waits for the configuration lock is not made (the caller was told 503)', async () => {
    const before = await versionCount();
    const holder = new Client({ connectionString: servers.db.databaseUrl });
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query('SELECT version FROM config_head FOR UPDATE');
      const answered = deliverTwice(
        M.ChecksCreate,
        { actor: ALICE, check: { ...nightly, name: 'too-late' } },
        1,
        1_500,
      );
      await new Promise((r) => setTimeout(r, 2_500));
      await holder.query('COMMIT');
      const [reply] = await answered;
      expect(reply).toMatchObject({ ok: false, error: { code: 'unavailable' } });
    } finally {
      await holder.end().catch(() => undefined);
    }
    expect(await versionCount()).toBe(before);
    const { rows } = await sql.query("SELECT count(*)::int AS n FROM checks WHERE name = 'too-late'");
    expect(rows[0].n).toBe(0);
  });

  it('patch with If-Match, delete: a repeat answers as the first time, not conflict / not_found', async () => {
    const { check } = await parts.config.create(ALICE, { name: 'db', type: 'tcp', host: '127.0.0.1', port: 5432 });
    const v0 = await versionCount();
    const patched = await deliverTwice(M.ChecksPatch, {
      actor: ALICE,
      id: check.id,
      patch: { port: 5433 },
      expectedVersion: check.version,
    });
    expect(patched[0]).toMatchObject({ ok: true, result: { check: { port: 5433 }, version: v0 + 1 } });
    expect(patched[1]).toEqual(patched[0]);
    const deleted = await deliverTwice(M.ChecksDelete, { actor: ALICE, id: check.id }, 3);
    expect(deleted).toEqual([0, 1, 2].map(() => ({ ok: true, result: { version: v0 + 2 } })));
    expect(await versionCount()).toBe(v0 + 2);
    // A new request (new id) is a new write: now the check is gone.
    const again = await deliverTwice(M.ChecksDelete, { actor: ALICE, id: check.id }, 1);
    expect(again[0]).toMatchObject({ ok: false, error: { code: 'not_found' } });
  });

  it('an import applied twice is one version with the same plan; a no-op write is recorded too', async () => {
    const yaml = 'checks:\n  web:\n    type: http\n    url: http://127.0.0.1:8080/\n';
    const v0 = await versionCount();
    const [a, b] = await deliverTwice(M.ConfigImport, { actor: ALICE, yaml, prune: false });
    expect(a).toMatchObject({ ok: true, result: { dryRun: false, version: v0 + 1 } });
    expect(b).toEqual(a);
    const [c, d] = await deliverTwice(M.ChecksSetPaused, {
      actor: ALICE,
      id: (a as { result: { plan: { id: string }[] } }).result.plan[0].id,
      paused: false,
    });
    expect(c).toMatchObject({ ok: true, result: { version: v0 + 1 } }); // already running: no version
    expect(d).toEqual(c);
    expect(await versionCount()).toBe(v0 + 1);
    const { rows } = await sql.query(
      "SELECT count(*)::int AS n FROM config_requests WHERE method = 'checks.set-paused'",
    );
    expect(rows[0].n).toBe(1);
  });
});

describe('the owner stops between commit and ack', () => {
  it('the redelivery is answered with the committed answer: the caller gets its check and token, one version', async () => {
    const proxy = TcpProxy.forUrl(servers.vhost.amqpUrl);
    await proxy.start();
    // The owner reaches the broker through the proxy; its reply gives up after 1 s.
    const owner = await rpcOwner(proxy.rewriteUrl(servers.vhost.amqpUrl), 1_000);
    const caller = createBus({ url: servers.vhost.amqpUrl, source: SOURCE, name: 'caller', logger: silentBusLogger });
    const client = new RpcClient(caller.connections.publishing, caller.connections.consuming, {
      source: SOURCE,
      timeoutMs: 20_000,
      logger: silentBusLogger,
    });
    const create = parts.config.create.bind(parts.config);
    const answers: unknown[] = [];
    let restarted!: Promise<void>;
    const spy = jest.spyOn(parts.config, 'create').mockImplementation(async (...args) => {
      const answer = await create(...args); // committed
      answers.push(answer);
      if (answers.length === 1) {
        // "Crash" before the reply and the ack: the broker loses the owner's connections and
        // refuses new ones for 2 s, so the unacked request goes back to the queue.
        proxy.pause();
        proxy.cut();
        restarted = new Promise((r) => setTimeout(r, 2_000)).then(() => proxy.resume());
      }
      return answer;
    });
    try {
      const before = await versionCount();
      const answer = await client.call(M.ChecksCreate, {
        actor: ALICE,
        check: { name: 'crash-safe', type: 'push', periodSeconds: 60, graceSeconds: 10 },
      });
      await restarted;
      // Run twice (the second time on the redelivery), answered once, with what the first run committed.
      expect(answers).toHaveLength(2);
      expect(answers[1]).toEqual(answers[0]);
      expect(JSON.parse(JSON.stringify(answers[0]))).toEqual(answer);
      expect(answer.pingToken).toEqual(expect.any(String));
      expect(await versionCount()).toBe(before + 1);
      const { rows } = await sql.query("SELECT count(*)::int AS n FROM checks WHERE name = 'crash-safe'");
      expect(rows[0].n).toBe(1);
    } finally {
      spy.mockRestore();
      await client.close();
      await caller.close();
      await owner.server.stop();
      await owner.bus.close();
      await proxy.stop();
    }
  });
});

describe('config_requests housekeeping (the relay loop)', () => {
  it('clears ping tokens once the deadline has passed, forgets answers after the kept time', async () => {
    const id = '0190f0e0-0000-7000-8000-00000000dead';
    await runInSqlTransaction(parts.pool, (tx) =>
      parts.versions.recordRequest(tx, {
        requestId: id,
        method: M.ChecksCreate,
        reply: { version: 1 },
        secrets: { pingTokens: { x: 'fwp_secret' } },
        deadline: new Date(Date.now() - 10 * 60_000),
      }),
    );
    const cleared = await parts.relay.pruneRequests();
    expect(cleared.cleared).toBeGreaterThanOrEqual(1);
    expect(cleared.deleted).toBe(0);
    const kept = await runInSqlTransaction(parts.pool, (tx) => parts.versions.recordedRequest(tx, id));
    expect(kept).toEqual({ method: M.ChecksCreate, reply: { version: 1 }, secrets: null });
    // Those of the other tests are still within their deadline: their tokens stay.
    const { rows } = await sql.query('SELECT count(*)::int AS n FROM config_requests WHERE secrets IS NOT NULL');
    expect(rows[0].n).toBeGreaterThan(0);

    const all = (await sql.query('SELECT count(*)::int AS n FROM config_requests')).rows[0].n as number;
    expect((await parts.relay.pruneRequests(0)).deleted).toBe(all);
    expect(await runInSqlTransaction(parts.pool, (tx) => parts.versions.recordedRequest(tx, id))).toBeNull();
  });
});

describe("a client's Idempotency-Key (its retry is another message)", () => {
  const ctx = (key: string | undefined, method: string = M.ChecksCreate) => ({
    method,
    correlationId: 'c',
    deadline: new Date(Date.now() + 5_000),
    messageId: `0190f0e0-0000-7000-8000-${String(Math.floor(Math.random() * 1e12)).padStart(12, '0')}`,
    redelivered: false,
    ...(key === undefined ? {} : { idempotencyKey: key }),
  });

  it('names the write by key, method and params (which name the caller); without one, by the message id', () => {
    const params = { actor: ALICE, check: { name: 'a' } };
    const first = requestOf(ctx('k1'), params);
    expect(first.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(requestOf(ctx('k1'), { ...params }).id).toBe(first.id);
    expect(requestOf(ctx('k2'), params).id).not.toBe(first.id);
    expect(requestOf(ctx('k1'), { ...params, check: { name: 'b' } }).id).not.toBe(first.id);
    expect(requestOf(ctx('k1'), { ...params, actor: { ...ALICE, id: 'user:other' } }).id).not.toBe(first.id);
    expect(requestOf(ctx('k1', M.ChecksPatch), params).id).not.toBe(first.id);
    const plain = ctx(undefined);
    expect(requestOf(plain, params)).toEqual({ id: plain.messageId, method: plain.method, deadline: plain.deadline });
  });

  it('a retry after the answer was let go (5 minutes past its deadline) is a conflict naming the version, not a bare answer', async () => {
    const check = { name: 'keyed-late', type: 'tcp', host: 'db', port: 5432 };
    const request = requestOf(ctx('late-1'), { actor: ALICE, check });
    const made = await parts.config.create(ALICE, check, request);
    const again = await parts.config.create(ALICE, check, { ...request, deadline: new Date(Date.now() + 5_000) });
    expect(again).toEqual(made);
    const del = requestOf(ctx('late-2', M.ChecksDelete), { actor: ALICE, id: made.check.id });
    const deleted = await parts.config.delete(ALICE, made.check.id, undefined, del);
    await sql.query(`UPDATE config_requests SET deadline = now() - interval '10 minutes' WHERE request_id = ANY($1)`, [
      [request.id, del.id],
    ]);
    await parts.relay.pruneRequests();
    const versions = await versionCount();
    await expect(
      parts.config.create(ALICE, check, { ...request, deadline: new Date(Date.now() + 5_000) }),
    ).rejects.toThrow(new RegExp(`applied as config version ${made.version}; its answer is no longer kept`));
    // A delete's answer is its version: still whole.
    await expect(
      parts.config.delete(ALICE, made.check.id, undefined, { ...del, deadline: new Date(Date.now() + 5_000) }),
    ).resolves.toEqual(deleted);
    expect(await versionCount()).toBe(versions);
  });
});

describe('the same Idempotency-Key with another body (the same caller and method): refused, nothing written', () => {
  const keyed = (key: string, params: unknown, method: string = M.ChecksCreate) =>
    requestOf(
      {
        method,
        correlationId: 'c',
        deadline: new Date(Date.now() + 5_000),
        messageId: `0190f0e0-0000-7000-8000-${String(Math.floor(Math.random() * 1e12)).padStart(12, '0')}`,
        redelivered: false,
        idempotencyKey: key,
      },
      params,
    );
  const tcp = (name: string) => ({ name, type: 'tcp', host: 'db', port: 5432 });
  const create = (owner: OwnerParts, key: string, name: string, actor = ALICE) =>
    owner.config.create(actor, tcp(name), keyed(key, { actor, check: tcp(name) }));

  it('is a denied error naming the header and the first version; the first body still gets its answer', async () => {
    const first = await create(parts, 'reuse-1', 'reuse-a');
    const versions = await versionCount();
    await expect(create(parts, 'reuse-1', 'reuse-b')).rejects.toMatchObject({
      name: 'IdempotencyKeyReusedError',
      kind: 'forbidden',
      message: expect.stringMatching(
        new RegExp(
          `^Idempotency-Key: already used by you for another checks\\.create request .*version ${first.version}`,
        ),
      ),
      issues: [{ path: 'Idempotency-Key', message: expect.any(String) }],
    });
    expect(await versionCount()).toBe(versions);
    expect((await parts.config.list({ limit: 1000 })).items.filter((c) => c.name === 'reuse-b')).toEqual([]);
    // The first request again: its answer, as before.
    await expect(create(parts, 'reuse-1', 'reuse-a')).resolves.toEqual(first);
    // Another caller with the same key and that body, or the key on another method: other requests.
    await expect(create(parts, 'reuse-1', 'reuse-b', BOB)).resolves.toMatchObject({ check: { name: 'reuse-b' } });
    const patch = { actor: ALICE, id: first.check.id, patch: { port: 5433 } };
    await expect(
      parts.config.patch(ALICE, first.check.id, patch.patch, undefined, keyed('reuse-1', patch, M.ChecksPatch)),
    ).resolves.toMatchObject({ check: { port: 5433 } });
  });

  it('racing retries with one key and two bodies: one is applied, every retry of it gets its answer, the other body is refused', async () => {
    const versions = await versionCount();
    const results = await Promise.allSettled(
      ['race-a', 'race-b', 'race-a', 'race-b', 'race-a', 'race-b'].map((name) => create(parts, 'race-1', name)),
    );
    const done = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    const refused = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as Error] : []));
    expect([done.length, refused.length]).toEqual([3, 3]);
    expect(new Set(done.map((d) => d.check.id)).size).toBe(1);
    expect(refused.map((e) => e.name)).toEqual(Array(3).fill('IdempotencyKeyReusedError'));
    expect(await versionCount()).toBe(versions + 1);
  });

  it('survives the answer being cut to its version and an owner started afresh; a day later the key is free', async () => {
    const first = await create(parts, 'reuse-late', 'late-a');
    const { id } = keyed('reuse-late', { actor: ALICE, check: tcp('late-a') });
    await sql.query(`UPDATE config_requests SET deadline = now() - interval '10 minutes' WHERE request_id = $1`, [id]);
    await parts.relay.pruneRequests();
    const fresh = startOwner(servers.db.databaseUrl, null);
    try {
      await expect(create(fresh, 'reuse-late', 'late-b')).rejects.toThrow(
        new RegExp(`^Idempotency-Key: already used by you .*config version ${first.version}`),
      );
      // Past the day answers are kept (pruned): the key names nothing any more.
      await sql.query(`UPDATE config_requests SET at = now() - interval '2 days' WHERE request_id = $1`, [id]);
      await fresh.relay.pruneRequests();
      await expect(create(fresh, 'reuse-late', 'late-b')).resolves.toMatchObject({ check: { name: 'late-b' } });
    } finally {
      await fresh.close();
    }
  });
});

describe('a keyed write holding a secret: config_requests keeps no hash a guess at the secret can be tested against', () => {
  // The id a keyed request is recorded by was a plain sha256 over the key, method and params — the params of a
  // subscription or channel hold its secret in plain text, and keys are often guessable (`deploy-42/create-hook`):
  // whoever could read config_requests could hash guesses at a weak secret offline and compare. Through the RPC
  // handlers as sync-orchestrator wires them, with its FLEETWATCH_ENCRYPTION_KEY.
  const SECRET = 'hunter2-weak-signing-key';
  let owner: { bus: Bus; server: RpcServer };
  let caller: Bus;
  let client: RpcClient;

  beforeAll(async () => {
    owner = await rpcOwner(servers.vhost.amqpUrl);
    const subscriptions = new SubscriptionsService(
      parts.writer,
      new SubscriptionsRepository(parts.pool),
      SEALER,
      createTargetPolicy(DEFAULT_DENY_NETWORKS),
    );
    new SubscriptionsRpcHandler(owner.server, subscriptions, SEALER).onModuleInit();
    new AlertingRpcHandler(owner.server, parts.alerts, parts.silences, 'test-site', SEALER).onModuleInit();
    caller = createBus({ url: servers.vhost.amqpUrl, source: SOURCE, name: 'caller', logger: silentBusLogger });
    client = new RpcClient(caller.connections.publishing, caller.connections.consuming, {
      source: SOURCE,
      timeoutMs: 20_000,
      logger: silentBusLogger,
    });
  });
  afterAll(async () => {
    await client?.close();
    await caller?.close();
    await owner?.server.stop();
    await owner?.bus.close();
  });

  const ctxOf = (method: string, key: string): RpcContext => ({
    method,
    correlationId: 'c',
    deadline: new Date(Date.now() + 5_000),
    messageId: '0190f0e0-0000-7000-8000-000000000001',
    redelivered: false,
    idempotencyKey: key,
  });

  it.each([
    {
      what: "a status-change subscription's webhook secret",
      method: SubscriptionRpcMethod.Create,
      key: 'deploy-42/create-hook',
      params: (secret: string) => ({
        actor: ALICE,
        body: { name: 'keyed-hook', url: 'https://hooks.example.com/status', secret },
      }),
    },
    {
      what: "an alert channel's secret and bearer token",
      method: AlertConfigRpcMethod.ChannelsCreate,
      key: 'deploy-42/create-channel',
      params: (secret: string) => ({
        actor: ALICE,
        body: {
          type: 'webhook',
          name: 'keyed-channel',
          url: 'https://hooks.example.com/alerts',
          secret,
          bearerToken: `${secret}-token`,
        },
      }),
    },
    {
      what: "an http check's credential header",
      method: M.ChecksCreate,
      key: 'deploy-42/create-check',
      params: (secret: string) => ({
        actor: ALICE,
        check: {
          name: 'keyed-api',
          type: 'http',
          url: 'https://api.example.com/health',
          headers: { Authorization: `Bearer ${secret}` },
        },
      }),
    },
  ])(
    '$what: a keyed digest, the retry still answered, another secret still refused',
    async ({ method, key, params }) => {
      const versions = await versionCount();
      const first = await client.request(method, params(SECRET), { idempotencyKey: key });
      expect(await versionCount()).toBe(versions + 1);
      const { id, keyId } = requestOf(ctxOf(method, key), params(SECRET));
      const { rows } = await sql.query<{ request_id: string; row: string }>(
        'SELECT request_id::text, row_to_json(r)::text AS row FROM config_requests r WHERE key_id = $1',
        [keyId],
      );
      // Recorded by the keyed digest of what was sent (FLEETWATCH_ENCRYPTION_KEY's), not by the sha256 a reader of the
      // table could compute for a guess — here the right one — and with the secret nowhere in the row.
      expect(rows.map((r) => r.request_id)).toEqual([id]);
      const guessed = [SECRET, 'password', 'hunter2'].map((g) => requestWith(ctxOf(method, key), params(g), null).id);
      expect(guessed).not.toContain(rows[0].request_id);
      expect(rows[0].row).not.toContain(SECRET);
      // The retry with the same key and secret: the first answer, nothing written again.
      await expect(client.request(method, params(SECRET), { idempotencyKey: key })).resolves.toEqual(first);
      expect(JSON.stringify(first)).not.toContain(SECRET);
      // The same key with another secret: another request, refused as before.
      await expect(client.request(method, params(`${SECRET}!`), { idempotencyKey: key })).rejects.toThrow(
        /^Idempotency-Key: already used by you for another/,
      );
      expect(await versionCount()).toBe(versions + 1);
    },
  );
});
