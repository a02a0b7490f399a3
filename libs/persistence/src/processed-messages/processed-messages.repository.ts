import { Inject, Injectable } from '@nestjs/common';
import { InvalidError } from '@fleetwatch/domain';
import {
  DatabaseClient,
  DatabaseTransaction,
  prismaOf,
  queryClient,
  runInTransaction,
  TransactionOptions,
} from '../database';
import { isUuid, rethrow } from '../errors';
import { DATABASE_CLIENT } from '../tokens';

// Consumer idempotency (SPEC §3: at-least-once delivery, idempotent consumers). A
// consumer claims a message id in the SAME transaction as its side effect:
//
//   const outcome = await processed.runOnce('aggregator.history', envelope.id, async (tx) => {
//     await history.insert(rows, tx);
//   });
//   ack(); // both on first delivery and on a duplicate
//
// A redelivery after a crash before commit finds no claim and runs again; after
// commit it finds the claim and is a no-op. The claim is INSERT … ON CONFLICT DO
// NOTHING, so a duplicate never aborts the surrounding transaction, and two
// concurrent deliveries of one id serialise on the row: one runs, one sees a duplicate.

export type RunOnceOutcome<T> = { duplicate: false; result: T } | { duplicate: true };

function assertIds(ids: readonly string[]): void {
  const bad = ids.find((id) => !isUuid(id));
  if (bad !== undefined)
    throw new InvalidError(`message id ${JSON.stringify(bad)} is not a UUID`, [
      { path: 'id', message: 'must be a UUID' },
    ]);
}

@Injectable()
export class ProcessedMessagesRepository {
  constructor(@Inject(DATABASE_CLIENT) private readonly db: DatabaseClient) {}

  /**
   * Claims `messageId` for `consumer` inside `tx`. True: first time — go on with the side
   * effect in the same transaction. False: already processed — do nothing, ack.
   */
  async claim(tx: DatabaseTransaction, consumer: string, messageId: string): Promise<boolean> {
    assertIds([messageId]);
    const { count } = await queryClient(this.db, tx)
      .processedMessage.createMany({ data: [{ consumer, messageId }], skipDuplicates: true })
      .catch((err: unknown) => rethrow(err));
    return count === 1;
  }

  /**
   * Batch form for consumers that commit many messages at once (history batching):
   * returns the ids claimed now; the others were processed before (or appear twice).
   */
  async claimMany(tx: DatabaseTransaction, consumer: string, messageIds: readonly string[]): Promise<Set<string>> {
    if (messageIds.length === 0) return new Set();
    assertIds(messageIds);
    const unique = [...new Set(messageIds.map((id) => id.toLowerCase()))];
    const rows = await queryClient(this.db, tx).$queryRaw<Array<{ message_id: string }>>`
        INSERT INTO processed_messages (consumer, message_id)
        SELECT ${consumer}, unnest(${unique}::uuid[])
        ON CONFLICT DO NOTHING
        RETURNING message_id::text`.catch((err: unknown) => rethrow(err));
    return new Set(rows.map((r) => r.message_id));
  }

  /** Runs `fn` in a transaction that also claims the message; skips it for a duplicate. */
  async runOnce<T>(
    consumer: string,
    messageId: string,
    fn: (tx: DatabaseTransaction) => Promise<T>,
    options?: TransactionOptions,
  ): Promise<RunOnceOutcome<T>> {
    assertIds([messageId]);
    return runInTransaction(
      this.db,
      async (tx): Promise<RunOnceOutcome<T>> => {
        if (!(await this.claim(tx, consumer, messageId))) return { duplicate: true };
        return { duplicate: false, result: await fn(tx) };
      },
      options,
    );
  }

  async isProcessed(consumer: string, messageId: string): Promise<boolean> {
    if (!isUuid(messageId)) return false;
    const row = await prismaOf(this.db)
      .processedMessage.findUnique({ where: { consumer_messageId: { consumer, messageId } } })
      .catch((err: unknown) => rethrow(err));
    return row !== null;
  }

  /**
   * Retention: forgets claims older than `before`, in batches of `batchSize` so no
   * statement holds locks for long. Keep claims longer than any redelivery can take
   * (the raw-history window, 7 days, is plenty).
   */
  async deleteOlderThan(before: Date, batchSize = 5000): Promise<number> {
    const client = prismaOf(this.db);
    let total = 0;
    for (;;) {
      const deleted = await client.$executeRaw`
        DELETE FROM processed_messages WHERE ctid IN (
          SELECT ctid FROM processed_messages WHERE processed_at < ${before} LIMIT ${batchSize})`.catch(
        (err: unknown) => rethrow(err),
      );
      total += deleted;
      if (deleted < batchSize) return total;
    }
  }
}
