import { Client } from 'pg';
import {
  buildEnvelope,
  BUS_BATCH_MAX_BYTES,
  BUS_BATCH_MAX_UPDATES,
  Messages,
  observationShardQueue,
  RoutingKey,
  shardLabel,
  TargetIds,
  UUID_PATTERN,
  type StatusUpdatePayload,
} from '@fleetwatch/contracts';
import { shardOf } from '@fleetwatch/messaging';
import { generatePingToken, hashPingToken } from '@fleetwatch/persistence';
import { createIsolatedVhost, testEnv, waitFor } from '@fleetwatch/testing';
import { errorOf, IngestHarness, update } from './int-spec.helpers';

// Accepted pushes reach the bus with the right payload, only after the confirm;
// retries with an updateId keep their message id; pings carry their monitor's
// schedule; ingress pause/resume commands gate everything.

let h: IngestHarness;
let key: { key: string; id: string };

beforeAll(async () => {
  h = await IngestHarness.start({
    vhost: await createIsolatedVhost('ingest-publish'),
    databaseUrl: testEnv().databaseUrl,
  });
  key = await h.createKey(['ingest']);
});
afterAll(() => h?.stop());
afterEach(async () => {
  await h.drain();
});

describe('POST /api/v1/status/updates', () => {
  it('answers 202 with the id and the update is on the bus with the right payload', async () => {
    const before = Date.now();
    const res = await h.post(
      update(1, {
        status: 'Running',
        source: 'docker-watcher',
        location: 'lab-1',
        labels: { app: 'web', 'k8s.io/ns': 'prod' },
        message: 'started',
        metadata: { image: 'nginx:1.27', ports: [80, 443], nested: { a: { b: 1 } } },
      }),
      { key: key.key },
    );
    expect(res.status).toBe(202);
    const body = res.json as { accepted: number; ids: string[] };
    expect(body.accepted).toBe(1);
    expect(body.ids).toHaveLength(1);
    expect(body.ids[0]).toMatch(UUID_PATTERN);

    const [m] = await h.drain();
    expect(m.messageId).toBe(body.ids[0]);
    expect(m.envelope).toMatchObject({
      id: body.ids[0],
      type: 'status.update',
      schemaVersion: 1,
      source: { site: 'test-site', service: 'status-ingest' },
    });
    const payload = m.envelope.payload as StatusUpdatePayload;
    expect(payload).toEqual({
      updateId: body.ids[0],
      instanceId: 'web-1',
      kind: 'container',
      status: 'running',
      source: 'docker-watcher',
      location: 'lab-1',
      labels: { app: 'web', 'k8s.io/ns': 'prod' },
      message: 'started',
      metadata: { image: 'nginx:1.27', ports: [80, 443], nested: { a: { b: 1 } } },
      occurredAt: payload.receivedAt,
      receivedAt: expect.any(String),
      apiKeyId: key.id,
    });
    expect(Date.parse(payload.receivedAt)).toBeGreaterThanOrEqual(before - 5);
  });

  it('keeps the client occurredAt and accepts a batch whole, in order', async () => {
    const occurredAt = new Date(Date.now() - 60_000).toISOString();
    const updates = Array.from({ length: 250 }, (_, i) =>
      update(i, { status: i % 2 ? 'exited' : 'healthy', occurredAt }),
    );
    const res = await h.post({ updates }, { key: key.key });
    expect(res.status).toBe(202);
    const body = res.json as { accepted: number; ids: string[] };
    expect(body.accepted).toBe(250);
    // One status.update.batch message per shard the targets fall in, each within BUS_BATCH_MAX_UPDATES,
    // on that shard's queue; every update keeps its order within its shard (so within its target).
    expect(250).toBeGreaterThan(BUS_BATCH_MAX_UPDATES);
    const raw = await h.drainRaw();
    for (const m of raw) {
      const batch = (m.envelope.payload as { updates: StatusUpdatePayload[] }).updates;
      expect(batch.length).toBeLessThanOrEqual(BUS_BATCH_MAX_UPDATES);
      const shards = new Set(batch.map((u) => shardOf(TargetIds.instance(u.instanceId))));
      expect([...shards].map((x) => observationShardQueue(x))).toEqual([m.queue]);
      expect(m.routingKey).toBe(`event.status.update-batch.${shardLabel([...shards][0])}`);
    }
    const messages = raw.flatMap((m) =>
      (m.envelope.payload as { updates: Array<StatusUpdatePayload & { id: string }> }).updates.map((u) => ({
        id: u.id,
        payload: u,
      })),
    );
    expect(new Set(messages.map((m) => m.id))).toEqual(new Set(body.ids));
    expect(messages).toHaveLength(250);
    const positions = new Map(body.ids.map((id, i) => [id, i]));
    for (const queue of new Set(raw.map((m) => m.queue))) {
      const inQueue = raw
        .filter((m) => m.queue === queue)
        .flatMap((m) =>
          (m.envelope.payload as { updates: Array<{ id: string }> }).updates.map((u) => positions.get(u.id) as number),
        );
      expect(inQueue).toEqual([...inQueue].sort((a, b) => a - b));
    }
    expect(messages.find((m) => m.id === body.ids[3])?.payload.occurredAt).toBe(occurredAt);
  });

  it('a small batch of heavy updates (over BUS_BATCH_MAX_BYTES) is cut into messages within it; a small light one is not cut', async () => {
    // 20 heavy updates of one instance: one shard, 300 KB — cut into messages within BUS_BATCH_MAX_BYTES, in order.
    const heavy = Array.from({ length: 20 }, (_, i) =>
      update(i, { instanceId: 'heavy-1', message: `n${i}`, metadata: { blob: 'x'.repeat(15_000) } }),
    );
    expect((await h.post({ updates: heavy }, { key: key.key })).status).toBe(202);
    const cut = await h.drainRaw();
    const shardsOf = (list: Array<Record<string, unknown>>) =>
      new Set(list.map((u) => shardOf(TargetIds.instance(u.instanceId as string))));
    expect(cut.length).toBeGreaterThan(1);
    expect(new Set(cut.map((m) => m.queue)).size).toBe(1);
    for (const m of cut) expect(Buffer.byteLength(JSON.stringify(m.envelope))).toBeLessThan(BUS_BATCH_MAX_BYTES + 4096);
    expect(
      cut.flatMap((m) =>
        m.envelope.type === 'status.update'
          ? [(m.envelope.payload as StatusUpdatePayload).message]
          : (m.envelope.payload as { updates: StatusUpdatePayload[] }).updates.map((u) => u.message),
      ),
    ).toEqual(heavy.map((u) => u.message));
    const light = Array.from({ length: 20 }, (_, i) => update(i));
    expect((await h.post({ updates: light }, { key: key.key })).status).toBe(202);
    expect(await h.drainRaw()).toHaveLength(shardsOf(light).size);
  });

  it('a retry with the same updateId carries the same message id (the aggregator drops the duplicate)', async () => {
    const first = await h.post(update(7, { updateId: 'deploy-2024-07:web-7' }), { key: key.key });
    const retry = await h.post(update(7, { updateId: 'deploy-2024-07:web-7' }), { key: key.key });
    const other = await h.post(update(7, { updateId: 'deploy-2024-07:web-8' }), { key: key.key });
    expect([first.status, retry.status, other.status]).toEqual([202, 202, 202]);
    expect((first.json as { ids: string[] }).ids).toEqual(['deploy-2024-07:web-7']);
    const messages = await h.drain();
    expect(messages).toHaveLength(3);
    expect(messages[0].messageId).toMatch(UUID_PATTERN);
    expect(messages[1].messageId).toBe(messages[0].messageId);
    expect(messages[1].envelope.id).toBe(messages[0].envelope.id);
    expect(messages[2].messageId).not.toBe(messages[0].messageId);
    expect((messages[0].envelope.payload as StatusUpdatePayload).updateId).toBe('deploy-2024-07:web-7');

    // The same update id under another key is another update.
    const otherKey = await h.createKey(['ingest']);
    await h.post(update(7, { updateId: 'deploy-2024-07:web-7' }), { key: otherKey.key });
    const [fromOther] = await h.drain();
    expect(fromOther.messageId).not.toBe(messages[0].messageId);
  });

  it('exposes accepted and refused counters and the publish latency histogram, without key ids', async () => {
    await h.post(update(1), { key: key.key });
    await h.post(update(1, { kind: 'vm' }), { key: key.key });
    const metrics = await h.request('GET', '/metrics');
    expect(metrics.text).toMatch(/fleetwatch_ingest_updates_accepted_total\{mode="single"\} [1-9]/);
    expect(metrics.text).toMatch(/fleetwatch_ingest_requests_refused_total\{route="updates",reason="invalid"\} [1-9]/);
    expect(metrics.text).toMatch(/fleetwatch_ingest_publish_duration_seconds_count\{kind="single"\} [1-9]/);
    // The API-key use gauge (IngestMetrics, set by ApiKeyUseReporter): on /metrics from the start, 0 with the bus up.
    expect(metrics.text).toMatch(
      /\n# TYPE fleetwatch_ingest_api_key_uses_unreported gauge\nfleetwatch_ingest_api_key_uses_unreported 0\n/,
    );
    expect(metrics.text).not.toContain(key.id);
    expect(metrics.text).not.toContain(key.key.slice(0, 12));
  });
});

describe('heartbeat pings', () => {
  let pg: Client;
  beforeAll(async () => {
    pg = new Client({ connectionString: testEnv().databaseUrl });
    await pg.connect();
  });
  afterAll(() => pg?.end());

  async function monitor(periodSeconds: number, graceSeconds: number, maxRuntimeSeconds: number | null) {
    const token = generatePingToken();
    const targetId = `monitor:${token.slice(0, 10)}`;
    const { rows } = await pg.query<{ id: string }>(
      `INSERT INTO heartbeat_monitors (target_id, name, token_hash, period_seconds, grace_seconds, max_runtime_seconds)
       VALUES ($1, 'nightly backup', $2, $3, $4, $5) RETURNING id`,
      [targetId, hashPingToken(token), periodSeconds, graceSeconds, maxRuntimeSeconds],
    );
    return { token, id: rows[0].id, targetId };
  }

  it('success, start and fail publish ping.received with the schedule, run id and body', async () => {
    const m = await monitor(3600, 300, 900);
    const start = await h.request('GET', `/ping/${m.token}/start?rid=run-1`);
    expect(start.status).toBe(200);
    expect(start.json).toEqual({ ok: true, signal: 'start' });
    const ok = await h.request(
      'POST',
      `/ping/${m.token}?rid=run-1`,
      { 'content-type': 'text/plain' },
      'backup done: 42 GB',
    );
    expect(ok.status).toBe(200);
    const fail = await h.request(
      'POST',
      `/ping/${m.token}/fail`,
      { 'content-type': 'application/json' },
      '{"not": "parsed"',
    );
    expect(fail.status).toBe(200);
    const messages = await h.drain();
    expect(messages.map((x) => x.envelope.type)).toEqual(['ping.received', 'ping.received', 'ping.received']);
    const payloads = messages.map((x) => x.envelope.payload as Record<string, unknown>);
    const schedule = {
      monitorId: m.id,
      targetId: m.targetId,
      periodSeconds: 3600,
      graceSeconds: 300,
      maxRuntimeSeconds: 900,
      name: 'nightly backup',
    };
    expect(payloads[0]).toEqual({ ...schedule, signal: 'start', runId: 'run-1', receivedAt: expect.any(String) });
    expect(payloads[1]).toEqual({
      ...schedule,
      signal: 'success',
      runId: 'run-1',
      body: 'backup done: 42 GB',
      receivedAt: expect.any(String),
    });
    expect(payloads[2]).toEqual({
      ...schedule,
      signal: 'fail',
      body: '{"not": "parsed"',
      receivedAt: expect.any(String),
    });
  });

  it('HEAD pings without a body; a long POST body is cut to 10,000 characters', async () => {
    const m = await monitor(60, 30, null);
    const head = await h.request('HEAD', `/ping/${m.token}`);
    expect(head.status).toBe(200);
    expect(head.text).toBe('');
    const long = await h.request(
      'POST',
      `/ping/${m.token}`,
      { 'content-type': 'application/octet-stream' },
      'x'.repeat(50_000),
    );
    expect(long.status).toBe(200);
    const [a, b] = await h.drain();
    expect(a.envelope.payload).toMatchObject({ signal: 'success', maxRuntimeSeconds: null, periodSeconds: 60 });
    expect((b.envelope.payload as { body: string }).body).toHaveLength(10_000);
  });

  it('unknown or malformed tokens get 404 JSON; a bad run id 400; nothing is published', async () => {
    for (const path of [
      `/ping/${generatePingToken()}`,
      `/ping/${generatePingToken()}/start`,
      '/ping/short',
      '/ping/%00%01bad-token-xxxxxxxxxxxxx',
    ]) {
      const res = await h.request('GET', path);
      expect(res.status).toBe(404);
      expect(errorOf(res).code).toBe('not_found');
    }
    const head = await h.request('HEAD', `/ping/${generatePingToken()}`);
    expect(head.status).toBe(404);
    const m = await monitor(60, 30, null);
    const bad = await h.request('GET', `/ping/${m.token}?rid=${'x'.repeat(200)}`);
    expect(bad.status).toBe(400);
    expect(errorOf(bad).issues).toEqual([{ path: 'rid', message: expect.any(String) }]);
    expect(await h.count()).toBe(0);
  });
});

describe('ingress pause / resume commands', () => {
  const source = { site: 'test-site', service: 'sync-orchestrator' as const };

  it('pauses with 503 + Retry-After until resumed, and a pause with `until` expires by itself', async () => {
    await h.publishCommand(
      RoutingKey.IngressPause,
      buildEnvelope(Messages.IngressPause.type, 1, source, { reason: 'rolling sync', operationId: 'op-1' }),
    );
    const paused = await waitFor(
      async () => {
        const r = await h.post(update(1), { key: key.key });
        return r.status === 503 ? r : null;
      },
      { timeoutMs: 5000, description: 'ingress to pause' },
    );
    expect(paused.headers.get('retry-after')).toBe('5');
    expect(errorOf(paused).message).toMatch(/paused \(rolling sync\)/);
    const m = generatePingToken();
    expect((await h.request('GET', `/ping/${m}`)).status).toBe(503);

    await h.publishCommand(
      RoutingKey.IngressResume,
      buildEnvelope(Messages.IngressResume.type, 1, source, { reason: 'done', operationId: 'op-1' }),
    );
    await waitFor(async () => (await h.post(update(1), { key: key.key })).status === 202, {
      timeoutMs: 5000,
      description: 'ingress to resume',
    });

    const until = new Date(Date.now() + 3_000).toISOString();
    await h.publishCommand(
      RoutingKey.IngressPause,
      buildEnvelope(Messages.IngressPause.type, 1, source, { reason: 'short', until }),
    );
    const short = await waitFor(
      async () => {
        const r = await h.post(update(1), { key: key.key });
        return r.status === 503 ? r : null;
      },
      { timeoutMs: 5000, description: 'ingress to pause' },
    );
    expect(Number(short.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(Number(short.headers.get('retry-after'))).toBeLessThanOrEqual(3);
    await waitFor(async () => (await h.post(update(1), { key: key.key })).status === 202, {
      timeoutMs: 5000,
      description: 'pause to expire',
    });
    const metrics = await h.request('GET', '/metrics');
    expect(metrics.text).toMatch(/fleetwatch_ingest_requests_refused_total\{route="updates",reason="paused"\} [1-9]/);
  });
});
