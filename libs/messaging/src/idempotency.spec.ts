import type { Envelope } from '@fleetwatch/contracts';
import type { DeliveryContext } from './delivery';
import { exactlyOnce, idempotent, idempotentBatch, InMemoryIdempotencyStore } from './idempotency';

const env = (id: string): Envelope => ({
  id,
  type: 'check.result',
  schemaVersion: 1,
  occurredAt: '2025-01-01T00:00:00.000Z',
  source: { site: 's', service: 'tool' },
  correlationId: id,
  payload: {},
});
const ctx = { queue: 'q' } as DeliveryContext;

describe('InMemoryIdempotencyStore', () => {
  it('claims once per (id, consumer)', async () => {
    const s = new InMemoryIdempotencyStore();
    expect(await s.claim('a', 'c1')).toBe(true);
    expect(await s.claim('a', 'c1')).toBe(false);
    expect(await s.claim('a', 'c2')).toBe(true);
    expect(await s.seen('a', 'c1')).toBe(true);
    await s.release('a', 'c1');
    expect(await s.seen('a', 'c1')).toBe(false);
  });

  it('evicts the least recently used beyond its capacity', async () => {
    const s = new InMemoryIdempotencyStore(2);
    await s.claim('a', 'c');
    await s.claim('b', 'c');
    await s.seen('a', 'c'); // a is now the most recent
    await s.claim('d', 'c');
    expect(s.size).toBe(2);
    expect(await s.seen('b', 'c')).toBe(false);
    expect(await s.seen('a', 'c')).toBe(true);
  });
});

describe('idempotent()', () => {
  it('runs the handler once per id and skips repeats', async () => {
    const calls: string[] = [];
    const h = idempotent(async (e) => void calls.push(e.id), new InMemoryIdempotencyStore(), 'c');
    await h(env('1'), ctx);
    await h(env('1'), ctx);
    await h(env('2'), ctx);
    expect(calls).toEqual(['1', '2']);
  });

  it('releases the claim when the handler fails, so the retry runs it', async () => {
    let fail = true;
    const calls: string[] = [];
    const h = idempotent(
      async (e) => {
        calls.push(e.id);
        if (fail) throw new Error('db down');
      },
      new InMemoryIdempotencyStore(),
      'c',
    );
    await expect(h(env('1'), ctx)).rejects.toThrow('db down');
    fail = false;
    await h(env('1'), ctx);
    expect(calls).toEqual(['1', '1']);
  });

  it('concurrent duplicates run once', async () => {
    let runs = 0;
    const h = idempotent(
      async () => {
        runs++;
        await new Promise((r) => setTimeout(r, 5));
      },
      new InMemoryIdempotencyStore(),
      'c',
    );
    await Promise.all([h(env('x'), ctx), h(env('x'), ctx)]);
    expect(runs).toBe(1);
  });
});

describe('idempotentBatch()', () => {
  it('passes only unseen envelopes (deduplicated within the batch) and releases them on failure', async () => {
    const store = new InMemoryIdempotencyStore();
    await store.claim('1', 'c');
    const got: string[][] = [];
    let fail = true;
    const h = idempotentBatch(
      async (envs) => {
        got.push(envs.map((e) => e.id));
        if (fail) throw new Error('x');
      },
      store,
      'c',
    );
    await expect(h([env('1'), env('2'), env('2'), env('3')], [ctx, ctx, ctx, ctx])).rejects.toThrow();
    fail = false;
    await h([env('2'), env('3')], [ctx, ctx]);
    await h([env('1')], [ctx]);
    expect(got).toEqual([
      ['2', '3'],
      ['2', '3'],
    ]);
  });
});

describe('exactlyOnce()', () => {
  /** Shaped like persistence's ProcessedMessagesRepository.runOnce. */
  class FakeRepository {
    readonly rows = new Set<string>();
    async runOnce<T>(
      consumer: string,
      messageId: string,
      fn: (tx: string) => Promise<T>,
    ): Promise<{ duplicate: true } | { duplicate: false; result: T }> {
      const key = `${consumer}/${messageId}`;
      if (this.rows.has(key)) return { duplicate: true };
      const result = await fn('tx-1'); // a throw rolls the claim back: the row is never added
      this.rows.add(key);
      return { duplicate: false, result };
    }
  }

  it("runs the side effect in the claim's transaction, once per id", async () => {
    const repo = new FakeRepository();
    const effects: string[] = [];
    const h = exactlyOnce(repo, 'history', async (e, tx) => void effects.push(`${e.id}@${tx}`));
    await h(env('1'), ctx);
    await h(env('1'), ctx);
    expect(effects).toEqual(['1@tx-1']);
  });

  it('a failed side effect leaves no claim, so the redelivery runs it', async () => {
    const repo = new FakeRepository();
    let fail = true;
    const h = exactlyOnce(repo, 'history', async () => {
      if (fail) throw new Error('constraint');
    });
    await expect(h(env('1'), ctx)).rejects.toThrow('constraint');
    fail = false;
    await h(env('1'), ctx);
    expect(repo.rows.has('history/1')).toBe(true);
  });
});
