import { createIsolatedVhost, TcpProxy, testEnv, waitFor } from '@fleetwatch/testing';
import type { StatusUpdatePayload } from '@fleetwatch/contracts';
import { errorOf, IngestHarness, OBSERVATIONS, update, type HttpAnswer } from './int-spec.helpers';
import { PublishGate } from './ingress/publish-gate.service';

// SPEC §6: broker away → 503 with Retry-After; and at-least-once from the edge:
// nothing that got a 202 is lost. A TcpProxy sits between status-ingest and
// RabbitMQ; clients keep posting (singles and batches) while the broker link is
// cut for two seconds, retrying refused updates with the same updateId.

let h: IngestHarness;
let proxy: TcpProxy;
let key: string;

beforeAll(async () => {
  const vhost = await createIsolatedVhost('ingest-outage');
  proxy = TcpProxy.forUrl(vhost.amqpUrl);
  await proxy.start();
  h = await IngestHarness.start(
    { vhost, databaseUrl: testEnv().databaseUrl },
    { INGEST_PUBLISH_TIMEOUT_MS: '2000', INGEST_RETRY_AFTER_SECONDS: '2' },
    { amqpUrl: (url) => proxy.rewriteUrl(url) },
  );
  key = (await h.createKey(['ingest'])).key;
});
afterAll(async () => {
  await h?.stop();
  await proxy?.stop();
});

interface Outcome {
  updateIds: string[];
  answer: HttpAnswer;
}

describe('broker away', () => {
  it('answers 503 + Retry-After while the broker is away, and every update that got a 202 reaches the queue', async () => {
    const outcomes: Outcome[] = [];
    const accepted = new Set<string>();
    let running = true;
    let seq = 0;

    // 8 clients: half post single updates, half batches of 10; a refused update is retried (same updateId).
    const client = async (c: number) => {
      let pending: string[] = [];
      while (running) {
        if (pending.length === 0) pending = Array.from({ length: c % 2 ? 10 : 1 }, () => `c${c}-u${seq++}`);
        const body =
          pending.length === 1
            ? update(c, { updateId: pending[0] })
            : { updates: pending.map((id) => update(c, { updateId: id })) };
        const answer = await h.post(body, { key });
        outcomes.push({ updateIds: pending, answer });
        if (answer.status === 202) {
          expect((answer.json as { ids: string[] }).ids).toEqual(pending);
          for (const id of pending) accepted.add(id);
          pending = [];
        } else {
          await new Promise((r) => setTimeout(r, 50));
        }
      }
    };
    const clients = Array.from({ length: 8 }, (_, c) => client(c));

    await waitFor(() => accepted.size > 200, { timeoutMs: 10_000, description: 'traffic before the outage' });
    const beforeOutage = accepted.size;
    proxy.pause();
    proxy.cut(); // the broker is away: live connections drop, new ones are refused
    await waitFor(() => outcomes.filter((o) => o.answer.status === 503).length >= 20, {
      timeoutMs: 10_000,
      description: '503s during the outage',
    });
    await new Promise((r) => setTimeout(r, 1_500));
    const duringOutage = accepted.size;
    proxy.resume();
    await waitFor(() => accepted.size > duringOutage + 200, {
      timeoutMs: 20_000,
      description: 'traffic after the broker came back',
    });
    running = false;
    await Promise.all(clients);

    // Refusals were 503 with Retry-After and a JSON body; nothing else went wrong.
    const statuses = new Set(outcomes.map((o) => o.answer.status));
    expect([...statuses].sort()).toEqual([202, 503]);
    for (const o of outcomes.filter((x) => x.answer.status === 503)) {
      expect(Number(o.answer.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect(errorOf(o.answer).code).toBe('unavailable');
    }
    expect(beforeOutage).toBeGreaterThan(0);

    // Every id that got a 202 is in the queue (duplicates of maybe-delivered retries are allowed:
    // they carry the same message id, and the aggregator drops them).
    const messages = await h.drain();
    const queued = new Map<string, Set<string>>();
    for (const m of messages) {
      const updateId = (m.envelope.payload as StatusUpdatePayload).updateId;
      const ids = queued.get(updateId) ?? new Set<string>();
      ids.add(m.envelope.id);
      queued.set(updateId, ids);
    }
    const lost = [...accepted].filter((id) => !queued.has(id));
    expect(lost).toEqual([]);
    // One update id ↔ one message id, however often it was sent.
    for (const ids of queued.values()) expect(ids.size).toBe(1);
    const attempted = new Set(outcomes.flatMap((o) => o.updateIds));
    for (const id of queued.keys()) expect(attempted.has(id)).toBe(true);
  });

  it('on shutdown, requests already taken finish their confirms: every 202 is in the queue', async () => {
    await h.drain();
    let n = 0;
    const posts = Array.from({ length: 120 }, async () => {
      const updateIds = Array.from({ length: 5 }, () => `shutdown-${n++}`);
      const answer = await h
        .post({ updates: updateIds.map((id) => update(1, { updateId: id })) }, { key })
        .catch(() => null);
      return { updateIds, answer };
    });
    // Shut down while publishes are waiting for their confirms.
    const gate = h.service.app.get(PublishGate);
    await waitFor(() => gate.pending > 0, { timeoutMs: 5_000, intervalMs: 1, description: 'publishes in flight' });
    await h.service.shutdown('test');
    const results = await Promise.all(posts);
    const accepted = results.filter((r) => r.answer?.status === 202).flatMap((r) => r.updateIds);
    for (const r of results) if (r.answer) expect([202, 503]).toContain(r.answer.status);
    expect(accepted.length).toBeGreaterThan(0);
    const queued = new Set((await h.drain()).map((m) => (m.envelope.payload as StatusUpdatePayload).updateId));
    expect(accepted.filter((id) => !queued.has(id))).toEqual([]);
  });
});

describe('database away', () => {
  it('a key that is not cached gets 503 + Retry-After, a cached key keeps working', async () => {
    const dbProxy = TcpProxy.forUrl(testEnv().databaseUrl);
    await dbProxy.start();
    const ingest = await IngestHarness.start({
      vhost: await createIsolatedVhost('ingest-db-away'),
      databaseUrl: dbProxy.rewriteUrl(testEnv().databaseUrl),
    });
    try {
      const hot = await ingest.createKey(['ingest']);
      const cold = await ingest.createKey(['ingest']);
      expect((await ingest.post(update(1), { key: hot.key })).status).toBe(202);
      dbProxy.pause();
      dbProxy.cut();
      // Within the cache window the hot key does not need the database.
      expect((await ingest.post(update(2), { key: hot.key })).status).toBe(202);
      const res = await ingest.post(update(1), { key: cold.key });
      expect(res.status).toBe(503);
      expect(res.headers.get('retry-after')).toBeTruthy();
      expect(errorOf(res).code).toBe('unavailable');
    } finally {
      dbProxy.resume();
      await ingest.stop();
      await dbProxy.stop();
    }
  });
});

describe('a request the broker confirms only in part', () => {
  let partial: IngestHarness;
  beforeAll(async () => {
    partial = await IngestHarness.start({
      vhost: await createIsolatedVhost('ingest-partial'),
      databaseUrl: testEnv().databaseUrl,
    });
  });
  afterAll(() => partial?.stop());

  it('is a 503 that says part of it may be stored, not "nothing was accepted"', async () => {
    const { key } = await partial.createKey(['ingest']);
    // One shard's queue gone: what is published for that shard comes back unroutable, the other shards confirm.
    const gone = OBSERVATIONS[3] as string;
    const ch = await partial.amqp.createChannel();
    await ch.deleteQueue(gone);
    await ch.close();
    const updates = Array.from({ length: 64 }, (_, i) => update(`partial-${i}`));
    const res = await partial.post({ updates }, { key });
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).not.toBeNull();
    const stored = await partial.count(OBSERVATIONS.filter((q) => q !== gone));
    expect(stored).toBeGreaterThan(0); // the other shards' parts are on their queues: they will be stored
    const { message } = errorOf(res);
    expect(message).not.toMatch(/nothing was accepted/);
    expect(message).toMatch(/part of this request/);
    expect(message).toMatch(/updateId/);
  });
});
