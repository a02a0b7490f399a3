import { randomUUID } from 'node:crypto';
import { ConflictError, UnavailableError } from '@fleetwatch/domain';
import { createIsolatedDatabase, type IsolatedDatabase } from '@fleetwatch/testing';
import { createPrismaClient, prismaOf, queryClient, runInTransaction, type DatabaseClient } from './database';
import { isForeignKeyViolation, rethrow } from './errors';
import { ProcessedMessagesRepository } from './processed-messages/processed-messages.repository';

// runInTransaction on a real Postgres: a statement that failed inside the transaction, caught by the callback.
let isolated: IsolatedDatabase;
const clients: DatabaseClient[] = [];

beforeAll(async () => {
  isolated = await createIsolatedDatabase();
  await queryClient(client()).$executeRawUnsafe('CREATE TABLE failed_tx (k int PRIMARY KEY, v text)');
});
afterAll(async () => {
  for (const c of clients) await c.$disconnect();
  await isolated?.dispose();
});
beforeEach(() => queryClient(clients[0]).$executeRawUnsafe('TRUNCATE failed_tx'));

/** One connection: a connection left in a failed transaction would fail the next test's statements. */
function client(): DatabaseClient {
  const c = createPrismaClient(isolated.databaseUrl, { poolSize: 1 });
  clients.push(c);
  return c;
}

const DUP_UPSERT = `INSERT INTO failed_tx (k, v) VALUES (1, 'a'), (1, 'b') ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v`;
const swallow = () => undefined;
const rows = (db: DatabaseClient) =>
  queryClient(db).$queryRawUnsafe<{ k: number }>('SELECT k FROM failed_tx ORDER BY k');
/** The SQLSTATE an error carries, as Prisma's raw queries, its model queries or its driver adapter give it. */
const sqlState = (e: unknown): unknown => {
  const err = e as {
    meta?: { driverAdapterError?: { cause?: { originalCode?: unknown } } };
    cause?: { originalCode?: unknown };
  };
  return e instanceof UnavailableError
    ? e.sqlState
    : (err.meta?.driverAdapterError?.cause?.originalCode ?? err.cause?.originalCode);
};
const outcome = <T>(run: Promise<T>): Promise<{ resolved: T } | { rejected: unknown }> =>
  run.then(
    (resolved) => ({ resolved }),
    (rejected: unknown) => ({ rejected }),
  );
/** Runs a statement that fails with a statement timeout (57014) inside `tx`. */
const timeOut = async (db: DatabaseClient, tx: Parameters<typeof queryClient>[1]) => {
  await queryClient(db, tx).$queryRawUnsafe("SELECT set_config('statement_timeout', '20ms', true)");
  await queryClient(db, tx).$queryRawUnsafe('SELECT pg_sleep(1)');
};

describe("Prisma's own interactive transaction (why runInTransaction watches its statements)", () => {
  it('resolves when a statement failed and the callback went on: Postgres rolled everything back', async () => {
    const db = client();
    const result = await prismaOf(db).$transaction(async (tx) => {
      await tx.$executeRawUnsafe('INSERT INTO failed_tx VALUES (7, $1)', 'lost');
      await tx.$executeRawUnsafe(DUP_UPSERT).catch(swallow);
      return 'done';
    });
    expect(result).toBe('done');
    expect(await rows(db)).toEqual([]);
  });
});

describe('runInTransaction: a statement that failed inside the transaction, caught by the callback', () => {
  it('a callback that catches a failure and returns: rejected with that failure (21000, a data error), nothing written', async () => {
    const db = client();
    const out = await outcome(
      runInTransaction(db, async (tx) => {
        await queryClient(db, tx).$executeRawUnsafe('INSERT INTO failed_tx VALUES (7, $1)', 'lost');
        await queryClient(db, tx).$executeRawUnsafe(DUP_UPSERT).catch(swallow);
        return 'done';
      }),
    );
    expect(out).toHaveProperty('rejected');
    const e = (out as { rejected: unknown }).rejected;
    expect(e).not.toBeInstanceOf(UnavailableError);
    expect(sqlState(e)).toBe('21000');
    expect(await rows(db)).toEqual([]);
    // Rolled back, and the one connection serves the next transaction.
    await runInTransaction(db, (tx) =>
      queryClient(db, tx).$executeRawUnsafe('INSERT INTO failed_tx VALUES (2, $1)', 'x'),
    );
    expect(await rows(db)).toEqual([{ k: 2 }]);
  });

  it('a statement timeout (57014) caught, then a statement that fails with 25P02: rejected as the outage (UnavailableError 57014)', async () => {
    const db = client();
    const e = await runInTransaction(db, async (tx) => {
      await timeOut(db, tx).catch(swallow);
      // A model query, classified by the repository as repositories do.
      await queryClient(db, tx)
        .user.count()
        .catch((err: unknown) => rethrow(err));
    }).catch((err: unknown) => err);
    expect(e).toBeInstanceOf(UnavailableError);
    expect(sqlState(e)).toBe('57014');
  });

  it('the same through a raw query (P2010 25P02)', async () => {
    const db = client();
    const e = await runInTransaction(db, async (tx) => {
      await timeOut(db, tx).catch(swallow);
      await queryClient(db, tx).$queryRawUnsafe('SELECT 1');
    }).catch((err: unknown) => err);
    expect(e).toBeInstanceOf(UnavailableError);
    expect(sqlState(e)).toBe('57014');
  });

  it('a statement timeout caught and the callback returns: rejected as the outage, not resolved', async () => {
    const db = client();
    const e = await runInTransaction(db, async (tx) => {
      await queryClient(db, tx).$executeRawUnsafe('INSERT INTO failed_tx VALUES (7, $1)', 'lost');
      await timeOut(db, tx).catch(swallow);
      return 'done';
    }).catch((err: unknown) => err);
    expect(e).toBeInstanceOf(UnavailableError);
    expect(sqlState(e)).toBe('57014');
    expect(await rows(db)).toEqual([]);
  });

  it('a consumer (ProcessedMessagesRepository.runOnce) whose side effect swallowed a failure: rejected, no claim committed', async () => {
    const db = client();
    const processed = new ProcessedMessagesRepository(db);
    const id = randomUUID();
    const out = await outcome(
      processed.runOnce('test.failed-tx', id, async (tx) => {
        await queryClient(db, tx).$executeRawUnsafe(DUP_UPSERT).catch(swallow);
      }),
    );
    // Resolved, the consumer would ack a message whose effect and claim were both rolled back.
    expect(out).toHaveProperty('rejected');
    expect(await processed.isProcessed('test.failed-tx', id)).toBe(false);
  });

  it('a failure the callback lets through, and a caught one that did not reach Postgres, are as before', async () => {
    const db = client();
    const e = await runInTransaction(db, (tx) => queryClient(db, tx).$executeRawUnsafe(DUP_UPSERT)).catch(
      (err: unknown) => err,
    );
    // Prisma's own error, as the callback threw it.
    expect(e).toMatchObject({ code: 'P2010' });
    expect(sqlState(e)).toBe('21000');
    // Record not found (P2025): Prisma's finding, no statement failed; the transaction commits.
    await runInTransaction(db, async (tx) => {
      await queryClient(db, tx)
        .user.delete({ where: { id: randomUUID() } })
        .catch(swallow);
      await queryClient(db, tx).$executeRawUnsafe('INSERT INTO failed_tx VALUES (3, $1)', 'kept');
    });
    expect(await rows(db)).toEqual([{ k: 3 }]);
  });

  it("a transaction of the client's own that the callback starts (a batch) and that fails is not the callback's", async () => {
    const db = createPrismaClient(isolated.databaseUrl, { poolSize: 2 });
    clients.push(db);
    const done = await runInTransaction(db, async (tx) => {
      const batch = [prismaOf(db).$executeRawUnsafe(DUP_UPSERT), prismaOf(db).$executeRawUnsafe('SELECT 1')];
      expect(
        sqlState(
          await prismaOf(db)
            .$transaction(batch)
            .catch((err: unknown) => err),
        ),
      ).toBe('21000');
      await queryClient(db, tx).$executeRawUnsafe('INSERT INTO failed_tx VALUES (5, $1)', 'kept');
      return 'done';
    });
    expect(done).toBe('done');
    expect(await rows(db)).toEqual([{ k: 5 }]);
  });

  it('a nested runInTransaction (its own transaction) that swallows a failure fails alone', async () => {
    const db = createPrismaClient(isolated.databaseUrl, { poolSize: 2 });
    clients.push(db);
    const out = await runInTransaction(db, async (tx) => {
      await queryClient(db, tx).$executeRawUnsafe('INSERT INTO failed_tx VALUES (4, $1)', 'outer');
      return outcome(
        runInTransaction(db, async (inner) => {
          await queryClient(db, inner).$executeRawUnsafe(DUP_UPSERT).catch(swallow);
        }),
      );
    });
    expect(out).toHaveProperty('rejected');
    expect(await rows(db)).toEqual([{ k: 4 }]);
  });
});

describe('runInTransaction: a constraint violation the callback caught keeps its meaning for the caller', () => {
  /** A model query's unique violation (P2002 to the callback; 23505 from Postgres), caught; the callback goes on. */
  const takenUsername = async (db: DatabaseClient) => {
    const username = `taken-${randomUUID()}`;
    await prismaOf(db).user.create({ data: { username, passwordHash: 'x', role: 'viewer' } });
    return runInTransaction(db, async (tx) => {
      await queryClient(db, tx)
        .user.create({ data: { username, passwordHash: 'y', role: 'viewer' } })
        .catch(swallow);
      return 'done';
    }).catch((err: unknown) => err);
  };

  it('a unique violation (23505) swallowed: rethrow with a conflict mapping answers ConflictError (409), not a 500', async () => {
    const db = client();
    const e = await takenUsername(db);
    expect(sqlState(e)).toBe('23505');
    let mapped: unknown;
    try {
      rethrow(e, { conflict: 'username is taken' });
    } catch (err) {
      mapped = err;
    }
    expect(mapped).toBeInstanceOf(ConflictError);
    expect((mapped as Error).message).toBe('username is taken');
    // No conflict mapping: the data error it is, rethrown as it came (neither a conflict nor an outage).
    let unmapped: unknown;
    try {
      rethrow(e);
    } catch (err) {
      unmapped = err;
    }
    expect(unmapped).toBe(e);
  });

  it('a foreign-key violation (23503) swallowed: still a foreign-key violation (a repository answers NotFoundError)', async () => {
    const db = client();
    const e = await runInTransaction(db, async (tx) => {
      await queryClient(db, tx)
        .session.create({
          data: { userId: randomUUID(), tokenHash: randomUUID(), expiresAt: new Date(Date.now() + 60_000) },
        })
        .catch(swallow);
    }).catch((err: unknown) => err);
    expect(sqlState(e)).toBe('23503');
    expect(isForeignKeyViolation(e)).toBe(true);
  });
});

describe('rethrow (errors.ts) on what Prisma model queries reject with', () => {
  it('a statement timeout (57014) of a model query, outside any transaction: the outage it is (UnavailableError 57014)', async () => {
    const db = createPrismaClient(isolated.databaseUrl, { poolSize: 1, statementTimeoutMs: 100 });
    clients.push(db);
    // Another session holds the table: the count waits for it until its statement timeout.
    const holder = client();
    const e = await prismaOf(holder)
      .$transaction(async (tx) => {
        await tx.$executeRawUnsafe('LOCK TABLE users IN ACCESS EXCLUSIVE MODE');
        return prismaOf(db)
          .user.count()
          .catch((err: unknown) => rethrow(err))
          .catch((err: unknown) => err);
      })
      .catch((err: unknown) => err);
    expect(e).toBeInstanceOf(UnavailableError);
    expect(sqlState(e)).toBe('57014');
  });
});

describe('a transaction whose COMMIT or ROLLBACK fails gives its connection back (Prisma never does: it skips commit())', () => {
  /** One connection, and a query that finds none free fails after 1 s instead of waiting its 5 s. */
  const single = () => {
    const db = createPrismaClient(isolated.databaseUrl, { poolSize: 1, connectionTimeoutMs: 1000 });
    clients.push(db);
    return db;
  };
  const pidOf = async (db: DatabaseClient, tx: Parameters<typeof queryClient>[1]) =>
    (await queryClient(db, tx).$queryRawUnsafe<{ pid: number }[]>('SELECT pg_backend_pid() AS pid'))[0].pid;
  /** Ends `pid`'s session from another one, and waits until it is gone. */
  const terminate = async (pid: number) => {
    const killer = client();
    await queryClient(killer).$queryRawUnsafe('SELECT pg_terminate_backend($1::int, 5000)', pid);
  };
  const SELECT_ONE = 'SELECT 1::int AS one';

  beforeAll(() =>
    queryClient(clients[0]).$executeRawUnsafe(
      'CREATE TABLE deferred_tx (k int CONSTRAINT deferred_tx_k UNIQUE DEFERRABLE INITIALLY DEFERRED)',
    ),
  );

  it('COMMIT fails (a deferred unique constraint): rejected with it, and the one connection serves the next query', async () => {
    const db = single();
    const e = await runInTransaction(db, (tx) =>
      queryClient(db, tx).$executeRawUnsafe('INSERT INTO deferred_tx VALUES (1), (1)'),
    ).catch((err: unknown) => err);
    expect(sqlState(e)).toBe('23505');
    expect(await queryClient(db).$queryRawUnsafe(SELECT_ONE)).toEqual([{ one: 1 }]);
    expect(await queryClient(db).$queryRawUnsafe('SELECT count(*)::int AS n FROM deferred_tx')).toEqual([{ n: 0 }]);
  });

  it("the same through Prisma's own batch $transaction([...]) (of two statements: one alone runs without BEGIN)", async () => {
    const db = single();
    const batch = [
      prismaOf(db).$executeRawUnsafe('INSERT INTO deferred_tx VALUES (2), (2)'),
      prismaOf(db).$executeRawUnsafe(SELECT_ONE),
    ];
    expect(
      sqlState(
        await prismaOf(db)
          .$transaction(batch)
          .catch((err: unknown) => err),
      ),
    ).toBe('23505');
    expect(await queryClient(db).$queryRawUnsafe(SELECT_ONE)).toEqual([{ one: 1 }]);
  });

  it('the connection lost before COMMIT: rejected as an outage, and a new connection serves the next query', async () => {
    const db = single();
    const e = await runInTransaction(db, async (tx) => {
      await terminate(await pidOf(db, tx));
    }).catch((err: unknown) => err);
    expect(e).toBeInstanceOf(Error);
    expect(() => rethrow(e)).toThrow(UnavailableError);
    expect(await queryClient(db).$queryRawUnsafe(SELECT_ONE)).toEqual([{ one: 1 }]);
  });

  it('the connection lost mid-transaction (its ROLLBACK fails too): the next query is served', async () => {
    const db = single();
    const e = await runInTransaction(db, async (tx) => {
      await terminate(await pidOf(db, tx));
      await queryClient(db, tx).$queryRawUnsafe(SELECT_ONE);
    }).catch((err: unknown) => err);
    expect(() => rethrow(e)).toThrow(UnavailableError);
    expect(await queryClient(db).$queryRawUnsafe(SELECT_ONE)).toEqual([{ one: 1 }]);
  });
});
