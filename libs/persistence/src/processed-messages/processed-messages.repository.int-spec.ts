import { randomUUID } from 'node:crypto';
import { InvalidError } from '@fleetwatch/domain';

import { testEnv } from '@fleetwatch/testing';
import { createPrismaClient, DatabaseClient, queryClient, runInTransaction } from '../database';
import { ProcessedMessagesRepository } from './processed-messages.repository';

let db: DatabaseClient;
let processed: ProcessedMessagesRepository;

beforeAll(() => {
  db = createPrismaClient(testEnv().databaseUrl, { poolSize: 12 });
  processed = new ProcessedMessagesRepository(db);
});
afterAll(() => db?.$disconnect());

const consumer = () => `test.${randomUUID().slice(0, 8)}`;

describe('ProcessedMessagesRepository', () => {
  it('runs the side effect once per (consumer, message id)', async () => {
    const c = consumer();
    const id = randomUUID();
    let runs = 0;
    expect(await processed.runOnce(c, id, async () => ++runs)).toEqual({ duplicate: false, result: 1 });
    expect(await processed.runOnce(c, id, async () => ++runs)).toEqual({ duplicate: true });
    expect(runs).toBe(1);
    expect(await processed.isProcessed(c, id)).toBe(true);
    // Another consumer of the same message claims it for itself.
    expect(await processed.runOnce(consumer(), id, async () => ++runs)).toEqual({ duplicate: false, result: 2 });
  });

  it('leaves no claim when the side effect fails, so a redelivery runs it again', async () => {
    const c = consumer();
    const id = randomUUID();
    await expect(
      processed.runOnce(c, id, async () => {
        throw new Error('side effect failed');
      }),
    ).rejects.toThrow('side effect failed');
    expect(await processed.isProcessed(c, id)).toBe(false);
    expect(await processed.runOnce(c, id, async () => 'ok')).toEqual({ duplicate: false, result: 'ok' });
  });

  it('lets exactly one of many concurrent deliveries run', async () => {
    const c = consumer();
    const id = randomUUID();
    let runs = 0;
    const outcomes = await Promise.all(
      Array.from({ length: 8 }, () =>
        processed.runOnce(c, id, async () => {
          runs++;
          await new Promise((r) => setTimeout(r, 50));
        }),
      ),
    );
    expect(runs).toBe(1);
    expect(outcomes.filter((o) => !o.duplicate)).toHaveLength(1);
  });

  it('commits the claim with the side effect in one transaction', async () => {
    const c = consumer();
    const id = randomUUID();
    await expect(
      runInTransaction(db, async (tx) => {
        expect(await processed.claim(tx, c, id)).toBe(true);
        expect(await processed.claim(tx, c, id)).toBe(false); // a duplicate does not abort the transaction
        await queryClient(db, tx).$executeRaw`SELECT 1`;
        throw new Error('rollback');
      }),
    ).rejects.toThrow('rollback');
    expect(await processed.isProcessed(c, id)).toBe(false);
  });

  it('claims batches and reports which ids are new', async () => {
    const c = consumer();
    const [a, b, d] = [randomUUID(), randomUUID(), randomUUID()];
    await processed.runOnce(c, a, async () => undefined);
    const claimed = await runInTransaction(db, (tx) => processed.claimMany(tx, c, [a, b, d, b]));
    expect(claimed).toEqual(new Set([b, d]));
    expect(await runInTransaction(db, (tx) => processed.claimMany(tx, c, []))).toEqual(new Set());
  });

  it('refuses ids that are not UUIDs', async () => {
    await expect(processed.runOnce(consumer(), 'msg-1', async () => undefined)).rejects.toBeInstanceOf(InvalidError);
    expect(await processed.isProcessed(consumer(), 'msg-1')).toBe(false);
  });

  it('forgets old claims in batches', async () => {
    const c = consumer();
    const ids = Array.from({ length: 5 }, () => randomUUID());
    await runInTransaction(db, async (tx) => {
      await processed.claimMany(tx, c, ids);
      await queryClient(db, tx)
        .$executeRaw`UPDATE processed_messages SET processed_at = '2000-01-01T00:00:00Z' WHERE consumer = ${c}`;
    });
    expect(await processed.deleteOlderThan(new Date('2000-01-02T00:00:00Z'), 2)).toBeGreaterThanOrEqual(5);
    expect(await processed.isProcessed(c, ids[0] as string)).toBe(false);
  });
});
