import { ConflictError, UnavailableError } from '@fleetwatch/domain';
import { rethrow } from './errors';
import { Prisma } from './generated/prisma/client';

const thrown = (err: unknown, what?: { conflict?: string }): unknown => {
  try {
    rethrow(err, what);
  } catch (e) {
    return e;
  }
  throw new Error('rethrow returned');
};

/** A pg error as the driver throws it: the SQLSTATE in `code`. */
const pgError = (code: string, message = 'x') => Object.assign(new Error(message), { code, severity: 'FATAL' });

/** What Prisma's pg driver adapter makes of one: its own P code, the SQLSTATE in `meta`. */
const prismaError = (code: string, message: string) =>
  new Prisma.PrismaClientKnownRequestError(message, {
    code: 'P2010',
    clientVersion: '6',
    meta: { driverAdapterError: { cause: { originalCode: code, originalMessage: message } } },
  });

/**
 * What a Prisma model query rejects with for a SQLSTATE Prisma has no P code of its own for (57014, 40P01, 25P02 …):
 * the driver adapter's error itself, the SQLSTATE in its `cause`.
 */
const adapterError = (code: string, message: string) =>
  Object.assign(new Error(message), {
    name: 'DriverAdapterError',
    cause: { kind: 'postgres', originalCode: code, originalMessage: message, code, severity: 'ERROR', message },
  });

describe('rethrow: Prisma and pg errors → domain errors', () => {
  // A database restarted by its operator, a pool past max_connections, a failover: every request alike — a 503 with
  // Retry-After, as rethrowSql answers them, not a 500.
  it.each([
    ['administrator command (57P01)', '57P01', 'terminating connection due to administrator command'],
    ['reserved connection slots (53300)', '53300', 'remaining connection slots are reserved for superuser connections'],
    ['connection failure (08006)', '08006', 'connection failure'],
    ['read-only after a failover (25006)', '25006', 'cannot execute UPDATE in a read-only transaction'],
    ['statement timeout (57014)', '57014', 'canceling statement due to statement timeout'],
  ])('%s is unavailable, from pg and through Prisma', (_name, code, message) => {
    expect(thrown(pgError(code, message))).toBeInstanceOf(UnavailableError);
    expect(thrown(prismaError(code, message))).toBeInstanceOf(UnavailableError);
    expect(thrown(adapterError(code, message))).toMatchObject({ sqlState: code, kind: 'unavailable' });
  });

  it.each([
    ['the connection lost under a transaction', 'Client has encountered a connection error and is not queryable'],
    ['the connection lost during a statement', 'Connection terminated unexpectedly'],
    // The raw path's words, read by rethrow too (one list): a host or route away, a pool that could not connect.
    ['the database host unreachable', 'connect EHOSTUNREACH 10.0.0.7:5432'],
    ['its name not resolved', 'getaddrinfo ENOTFOUND db.internal'],
    ['no connection within the pool timeout', 'timeout exceeded when trying to connect'],
  ])("%s (pg's own error, as a Prisma transaction passes it on) is unavailable", (_name, message) => {
    expect(thrown(new Error(message))).toBeInstanceOf(UnavailableError);
  });

  it.each([
    ['a schema out of step (42703)', '42703', 'column "retired_at" does not exist'],
    ['statement timeout (57014)', '57014', 'canceling statement due to statement timeout'],
  ])('%s says which: the SQLSTATE and the database words, not a bare "database unavailable"', (_n, code, message) => {
    // Prisma's own message is its invocation text (the query's arguments included): the adapter's original is kept.
    const invocation = new Prisma.PrismaClientKnownRequestError(
      `Invalid \`prisma.user.findMany()\` invocation: ${message}`,
      {
        code: 'P2010',
        clientVersion: '6',
        meta: { driverAdapterError: { cause: { originalCode: code, originalMessage: message } } },
      },
    );
    for (const err of [pgError(code, message), prismaError(code, message), invocation]) {
      const e = thrown(err) as UnavailableError;
      expect(e).toBeInstanceOf(UnavailableError);
      expect(e.sqlState).toBe(code);
      expect(e.message).toBe(`database unavailable: ${message} (${code})`);
    }
  });

  it.each([
    ['check constraint (23514)', '23514'],
    ['invalid text (22P02)', '22P02'],
    ['index row too large (54000)', '54000'],
    ['cardinality violation: an upsert given one key twice (21000)', '21000'],
    ['in a failed transaction (25P02): an earlier error was the cause', '25P02'],
  ])('%s blames the rows: passed on as it is', (_name, code) => {
    const pg = pgError(code);
    expect(thrown(pg)).toBe(pg);
    const prisma = prismaError(code, 'x');
    expect(thrown(prisma)).toBe(prisma);
    const adapter = adapterError(code, 'x');
    expect(thrown(adapter)).toBe(adapter);
  });

  it('a unique violation is a conflict when the caller names one', () => {
    const dup = new Prisma.PrismaClientKnownRequestError('dup', { code: 'P2002', clientVersion: '6' });
    expect(thrown(dup, { conflict: 'taken' })).toBeInstanceOf(ConflictError);
  });
});
