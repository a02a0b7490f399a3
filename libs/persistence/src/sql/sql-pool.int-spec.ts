import { UnavailableError } from '@fleetwatch/domain';
import type { Pool, PoolClient } from 'pg';
import { createIsolatedDatabase, type IsolatedDatabase } from '@fleetwatch/testing';
import { createPrismaClient } from '../database';
import {
  closeSqlPool,
  createSqlPool,
  preparedSql,
  runInSqlTransaction,
  sqlExecute,
  sqlQuery,
  type SqlPool,
  type SqlTransaction,
} from './sql-pool';

// PreparedSql on a real Postgres: parsed once per connection as a named statement, or plain when the pool says so.
let isolated: IsolatedDatabase;
const pools: SqlPool[] = [];

beforeAll(async () => {
  isolated = await createIsolatedDatabase();
});
afterAll(async () => {
  for (const p of pools) await closeSqlPool(p);
  await isolated?.dispose();
});

function pool(preparedStatements?: boolean): SqlPool {
  const p = createSqlPool(isolated.databaseUrl, { max: 1, preparedStatements });
  pools.push(p);
  return p;
}

const ECHO = preparedSql('SELECT $1::int + 1 AS n');
const named = (tx: SqlTransaction) =>
  sqlQuery<{ name: string; statement: string }>(tx, 'SELECT name, statement FROM pg_prepared_statements');

describe('preparedSql', () => {
  it('names a statement by its text: same text, same name; another text, another name', () => {
    expect(preparedSql('SELECT $1::int + 1 AS n')).toEqual(ECHO);
    expect(ECHO.name).toMatch(/^fw_[0-9a-f]{24}$/);
    expect(preparedSql('SELECT $1::int + 2 AS n').name).not.toBe(ECHO.name);
  });

  it('runs as a named prepared statement, kept on the connection and reused', async () => {
    const p = pool();
    const seen = await runInSqlTransaction(p, async (tx) => {
      expect(await sqlQuery<{ n: number }>(tx, ECHO, [41])).toEqual([{ n: 42 }]);
      return named(tx);
    });
    expect(seen).toEqual([{ name: ECHO.name, statement: ECHO.text }]);
    // The next transaction on the (one) connection reuses it, and a pool query outside a transaction too.
    expect(await sqlQuery<{ n: number }>(p, ECHO, [1])).toEqual([{ n: 2 }]);
    const again = await runInSqlTransaction(p, async (tx) => {
      expect(await sqlQuery<{ n: number }>(tx, ECHO, [2])).toEqual([{ n: 3 }]);
      return named(tx);
    });
    expect(again).toHaveLength(1);
  });

  it('sqlExecute counts the rows of a prepared statement', async () => {
    const p = pool();
    await sqlExecute(p, 'CREATE TABLE IF NOT EXISTS prepared_probe (n int)');
    const insert = preparedSql('INSERT INTO prepared_probe SELECT unnest($1::int[])');
    expect(await sqlExecute(p, insert, [[1, 2, 3]])).toBe(3);
    expect(await runInSqlTransaction(p, (tx) => sqlExecute(tx, insert, [[4]]))).toBe(1);
  });

  it('runs as a plain statement on a pool created with preparedStatements: false (poolers in transaction mode)', async () => {
    const p = pool(false);
    const seen = await runInSqlTransaction(p, async (tx) => {
      expect(await sqlQuery<{ n: number }>(tx, ECHO, [41])).toEqual([{ n: 42 }]);
      return named(tx);
    });
    expect(seen).toEqual([]);
    expect(await sqlQuery<{ n: number }>(p, ECHO, [9])).toEqual([{ n: 10 }]);
    expect(await runInSqlTransaction(p, named)).toEqual([]);
  });

  // A named statement is planned against the schema as it was: a migration changing the type of a column it returns
  // (or anything dropping the statement from the connection) fails it with 0A000 (26000) at every later execution on
  // that connection. Inside a transaction the client went back to the pool after the ROLLBACK, so every retry of
  // the commit on it failed the same way (an UnavailableError, retried forever).
  it('a connection whose statement no longer fits the schema is discarded: the retry prepares it anew', async () => {
    const p = pool();
    await sqlExecute(p, 'CREATE TABLE prepared_drift (id int, v int)');
    await sqlExecute(p, 'INSERT INTO prepared_drift VALUES (1, 7)');
    const read = preparedSql('SELECT d.v FROM (SELECT * FROM prepared_drift) d');
    const inTx = () => runInSqlTransaction(p, (tx) => sqlQuery<{ v: unknown }>(tx, read));
    expect(await inTx()).toEqual([{ v: 7 }]);
    await sqlExecute(p, 'ALTER TABLE prepared_drift ALTER COLUMN v TYPE text');
    const failed = await inTx().catch((err: unknown) => err);
    expect(failed).toBeInstanceOf(UnavailableError);
    expect((failed as UnavailableError).sqlState).toBe('0A000');
    expect(await inTx()).toEqual([{ v: '7' }]);
  });

  it('a connection that lost its prepared statements (DEALLOCATE) is discarded: the retry prepares them anew', async () => {
    const p = pool();
    const inTx = () => runInSqlTransaction(p, (tx) => sqlQuery<{ n: number }>(tx, ECHO, [1]));
    expect(await inTx()).toEqual([{ n: 2 }]);
    await runInSqlTransaction(p, (tx) => sqlExecute(tx, 'DEALLOCATE ALL'));
    const failed = await inTx().catch((err: unknown) => err);
    expect((failed as UnavailableError).sqlState).toBe('26000');
    expect(await inTx()).toEqual([{ n: 2 }]);
  });
});

describe('runInSqlTransaction: BEGIN goes with the first statement', () => {
  /** The texts the pool's connections are sent (by client.query), in order. */
  function recording(): { p: SqlPool; sent: string[] } {
    const p = pool();
    const sent: string[] = [];
    (p as unknown as Pool).on('connect', (client: PoolClient) => {
      const original = client.query.bind(client) as (...a: unknown[]) => unknown;
      (client as unknown as { query: (...a: unknown[]) => unknown }).query = (...a: unknown[]) => {
        const c = a[0] as string | { text: string };
        sent.push(typeof c === 'string' ? c : c.text);
        return original(...a);
      };
    });
    return { p, sent };
  }
  const xid = (tx: SqlTransaction, params?: unknown[]) =>
    params
      ? sqlQuery<{ x: string }>(tx, 'SELECT pg_current_xact_id()::text AS x, $1::int AS n', params)
      : sqlQuery<{ x: string }>(tx, 'SELECT pg_current_xact_id()::text AS x');

  it('a first statement without parameters travels with BEGIN: one round trip, and it runs in the transaction', async () => {
    const { p, sent } = recording();
    const [a, b] = await runInSqlTransaction(p, async (tx) => [await xid(tx), await xid(tx, [1])]);
    // Both statements see one transaction id: the first ran inside the block BEGIN opened.
    expect(a).toEqual([{ x: expect.stringMatching(/^\d+$/) }]);
    expect(b[0].x).toBe(a[0].x);
    expect(sent).toEqual([
      'BEGIN;\nSELECT pg_current_xact_id()::text AS x',
      'SELECT pg_current_xact_id()::text AS x, $1::int AS n',
      'COMMIT',
    ]);
  });

  it('a first statement with parameters is preceded by its own BEGIN', async () => {
    const { p, sent } = recording();
    const [a, b] = await runInSqlTransaction(p, async (tx) => [await xid(tx, [1]), await xid(tx)]);
    expect(b[0].x).toBe(a[0].x);
    expect(sent).toEqual([
      'BEGIN',
      'SELECT pg_current_xact_id()::text AS x, $1::int AS n',
      'SELECT pg_current_xact_id()::text AS x',
      'COMMIT',
    ]);
  });

  it('a transaction that runs no statement sends nothing', async () => {
    const { p, sent } = recording();
    await expect(runInSqlTransaction(p, async () => 7)).resolves.toBe(7);
    await expect(runInSqlTransaction(p, async () => Promise.reject(new Error('before any statement')))).rejects.toThrow(
      'before any statement',
    );
    expect(sent).toEqual([]);
  });

  it('a first statement with parameters is sent at once: a transaction that fails while it runs rolls it back, and statements keep their order', async () => {
    const p = pool();
    await sqlExecute(p, 'CREATE TABLE IF NOT EXISTS begin_with_params (n int)');
    // A statement the callback started but did not wait for (Promise.all with a sibling that fails at once): it
    // must run inside the transaction, before the ROLLBACK, never after it on the released connection (autocommit).
    await expect(
      runInSqlTransaction(p, async (tx) => {
        await Promise.all([
          sqlExecute(tx, 'INSERT INTO begin_with_params VALUES ($1)', [1]),
          Promise.reject(new Error('refused at once')),
        ]);
      }),
    ).rejects.toThrow('refused at once');
    await new Promise((r) => setTimeout(r, 50)); // anything still queued on the connection has run by now
    expect(await sqlQuery<{ n: number }>(p, 'SELECT n FROM begin_with_params')).toEqual([]);
    // Statements started together run in the order they were started.
    const order = await runInSqlTransaction(p, async (tx) => {
      await Promise.all([
        sqlExecute(tx, 'INSERT INTO begin_with_params VALUES ($1)', [10]),
        sqlExecute(tx, 'INSERT INTO begin_with_params VALUES ($1)', [11]),
      ]);
      return sqlQuery<{ n: number }>(tx, 'SELECT n FROM begin_with_params ORDER BY ctid');
    });
    expect(order).toEqual([{ n: 10 }, { n: 11 }]);
  });

  it('what the first statement wrote is rolled back with the rest when the transaction fails', async () => {
    const p = pool();
    await sqlExecute(p, 'CREATE TABLE IF NOT EXISTS begin_with_first (n int)');
    await expect(
      runInSqlTransaction(p, async (tx) => {
        await sqlExecute(tx, 'INSERT INTO begin_with_first VALUES (1)');
        await sqlExecute(tx, 'INSERT INTO begin_with_first VALUES ($1)', [2]);
        throw new Error('refused');
      }),
    ).rejects.toThrow('refused');
    // A first statement that fails: the block BEGIN opened is rolled back, and the connection serves the next one.
    await expect(
      runInSqlTransaction(p, (tx) => sqlExecute(tx, 'INSERT INTO begin_with_first VALUES (1 / 0)')),
    ).rejects.toThrow(/division by zero/);
    expect(await runInSqlTransaction(p, (tx) => sqlExecute(tx, 'INSERT INTO begin_with_first VALUES (3)'))).toBe(1);
    expect(await sqlQuery<{ n: number }>(p, 'SELECT n FROM begin_with_first ORDER BY n')).toEqual([{ n: 3 }]);
  });
});

describe('a transaction left open with nothing sent (idle_in_transaction_session_timeout)', () => {
  it('is ended by the server after idleInTransactionTimeoutMs, and its row locks go with it', async () => {
    const frozen = createSqlPool(isolated.databaseUrl, { max: 1, idleInTransactionTimeoutMs: 1000 });
    const other = createSqlPool(isolated.databaseUrl, { max: 1 });
    pools.push(frozen, other);
    await sqlExecute(other, 'CREATE TABLE idle_tx_rows (id int PRIMARY KEY, n int NOT NULL)');
    await sqlExecute(other, 'INSERT INTO idle_tx_rows VALUES (1, 0)');
    // A holder that takes a row lock, then goes silent mid-transaction (a frozen or cut-off replica).
    const held = (frozen as unknown as Pool).connect();
    const client: PoolClient = await held;
    await client.query('BEGIN');
    await client.query('SELECT n FROM idle_tx_rows WHERE id = 1 FOR SHARE');
    const started = Date.now();
    // The writer waits for the lock only until the server has ended the silent session (not for keep-alive's hours).
    await runInSqlTransaction(other, async (tx) => {
      await sqlQuery(tx, `SELECT set_config('lock_timeout', '15000', true)`);
      await sqlExecute(tx, 'UPDATE idle_tx_rows SET n = n + 1 WHERE id = 1');
    });
    const waited = Date.now() - started;
    expect(waited).toBeGreaterThanOrEqual(500);
    expect(waited).toBeLessThan(10_000);
    // The silent session is gone: its next statement fails, and its uncommitted transaction never commits.
    await expect(client.query('SELECT 1')).rejects.toThrow();
    client.release(true);
    expect(await sqlQuery<{ n: number }>(other, 'SELECT n FROM idle_tx_rows WHERE id = 1')).toEqual([{ n: 1 }]);
  });

  it("is 60 s unless configured, on every session of a pool — the SqlPool's and the Prisma client's", async () => {
    const p = pool();
    const setting = `SELECT current_setting('idle_in_transaction_session_timeout') AS t`;
    expect(await sqlQuery<{ t: string }>(p, setting)).toEqual([{ t: '1min' }]);
    const prisma = createPrismaClient(isolated.databaseUrl, { idleInTransactionTimeoutMs: 5000 });
    try {
      expect(await sqlQuery<{ t: string }>(prisma, setting)).toEqual([{ t: '5s' }]);
    } finally {
      await prisma.$disconnect();
    }
  });
});

describe('runInSqlTransaction: a 25P02 (in_failed_sql_transaction) answers with the failure that caused it', () => {
  const DUP_UPSERT = `INSERT INTO failed_tx (k, v) VALUES (1, 'a'), (1, 'b') ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v`;
  const setUp = async (p: SqlPool) => {
    await sqlExecute(p, 'CREATE TABLE IF NOT EXISTS failed_tx (k int PRIMARY KEY, v text)');
    await sqlExecute(p, 'TRUNCATE failed_tx');
  };
  /** What the transaction rejected with. */
  const failure = async (p: SqlPool, fn: (tx: SqlTransaction) => Promise<unknown>): Promise<unknown> =>
    runInSqlTransaction(p, fn).then(
      () => {
        throw new Error('the transaction resolved');
      },
      (e: unknown) => e,
    );
  const swallow = () => undefined;

  it.each([
    ['the first statement', false],
    ['a later statement', true],
  ])(
    'a cardinality violation (21000) of %s, caught by the callback: rejected as the 21000, a data error',
    async (_n, later) => {
      const p = pool();
      await setUp(p);
      const e = await failure(p, async (tx) => {
        if (later) await sqlExecute(tx, 'INSERT INTO failed_tx VALUES ($1, $2)', [5, 'kept?']);
        await sqlExecute(tx, DUP_UPSERT).catch(swallow);
        await sqlQuery(tx, 'SELECT count(*) FROM failed_tx');
      });
      expect(e).not.toBeInstanceOf(UnavailableError);
      expect(e).toMatchObject({ code: '21000' });
      // Rolled back whole, and the connection serves the next transaction.
      expect(
        await runInSqlTransaction(p, (tx) => sqlExecute(tx, 'INSERT INTO failed_tx VALUES ($1, $2)', [2, 'x'])),
      ).toBe(1);
      expect(await sqlQuery<{ k: number }>(p, 'SELECT k FROM failed_tx ORDER BY k')).toEqual([{ k: 2 }]);
    },
  );

  it('a statement timeout (57014) caught by the callback: rejected as the outage it is (UnavailableError 57014)', async () => {
    const p = pool();
    const e = await failure(p, async (tx) => {
      await sqlQuery(tx, "SELECT set_config('statement_timeout', '20ms', true)");
      await sqlQuery(tx, 'SELECT pg_sleep(1)').catch(swallow);
      await sqlQuery(tx, 'SELECT 1');
    });
    expect(e).toBeInstanceOf(UnavailableError);
    expect((e as UnavailableError).sqlState).toBe('57014');
  });

  it('a callback that catches a failure and returns: its COMMIT (answered ROLLBACK) rejects with that failure, nothing written', async () => {
    const p = pool();
    await setUp(p);
    const e = await failure(p, async (tx) => {
      await sqlExecute(tx, 'INSERT INTO failed_tx VALUES ($1, $2)', [7, 'lost']);
      await sqlExecute(tx, DUP_UPSERT).catch(swallow);
      return 'done';
    });
    expect(e).toMatchObject({ code: '21000' });
    expect(await sqlQuery(p, 'SELECT k FROM failed_tx')).toEqual([]);
  });

  it('a connection handed over inside a failed transaction: an outage (retried), and the connection discarded', async () => {
    const p = pool();
    // Left aborted behind the pool's back (no ROLLBACK): the next transaction's first statement gets 25P02.
    const raw = await (p as unknown as Pool).connect();
    await raw.query('BEGIN');
    const [{ pid: leftPid }] = (await raw.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows;
    await raw.query('SELECT 1 / 0').catch(swallow);
    raw.release();
    const e = await failure(p, (tx) => sqlQuery(tx, 'SELECT $1::int AS n', [1]));
    expect(e).toBeInstanceOf(UnavailableError);
    expect((e as UnavailableError).sqlState).toBe('25P02');
    // The pool's one connection is a new one: the left one was closed, not rolled back and handed out again.
    const next = await runInSqlTransaction(p, (tx) => sqlQuery<{ pid: number }>(tx, 'SELECT pg_backend_pid() AS pid'));
    expect(next).toHaveLength(1);
    expect(next[0].pid).not.toBe(leftPid);
  });
});

describe('runInSqlTransaction: a failed COMMIT, or a connection lost mid-transaction, gives the connection back', () => {
  /** One connection, and a query that finds none free fails after 1 s instead of waiting its 5 s. */
  const single = () => {
    const p = createSqlPool(isolated.databaseUrl, { max: 1, connectionTimeoutMs: 1000 });
    pools.push(p);
    return p;
  };
  const pidOf = async (tx: SqlTransaction) =>
    (await sqlQuery<{ pid: number }>(tx, 'SELECT pg_backend_pid() AS pid', [])).map((r) => r.pid)[0];
  /** Ends `pid`'s session from another one, and waits until it is gone. */
  const terminate = (pid: number) => sqlQuery(pool(), 'SELECT pg_terminate_backend($1::int, 5000)', [pid]);

  it('COMMIT fails (a deferred unique constraint): rejected with it, and the one connection serves the next query', async () => {
    const p = single();
    await sqlExecute(
      p,
      'CREATE TABLE deferred_tx (k int CONSTRAINT deferred_tx_k UNIQUE DEFERRABLE INITIALLY DEFERRED)',
    );
    const e = await runInSqlTransaction(p, (tx) =>
      sqlExecute(tx, 'INSERT INTO deferred_tx VALUES ($1), ($1)', [1]),
    ).catch((err: unknown) => err);
    expect(e).toMatchObject({ code: '23505' });
    expect(await sqlQuery(p, 'SELECT count(*)::int AS n FROM deferred_tx')).toEqual([{ n: 0 }]);
  });

  it.each([
    ['before COMMIT', false],
    ['mid-transaction (its ROLLBACK fails too)', true],
  ])('the connection lost %s: an outage, and a new connection serves the next query', async (_n, more) => {
    const p = single();
    const e = await runInSqlTransaction(p, async (tx) => {
      await terminate(await pidOf(tx));
      if (more) await sqlQuery(tx, 'SELECT 1');
    }).catch((err: unknown) => err);
    expect(e).toBeInstanceOf(UnavailableError);
    expect(await sqlQuery(p, 'SELECT 1::int AS one')).toEqual([{ one: 1 }]);
  });
});
