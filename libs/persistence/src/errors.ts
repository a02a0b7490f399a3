import { ConflictError, NotFoundError, UnavailableError } from '@fleetwatch/domain';
import { Prisma } from './generated/prisma/client';
import { DATA_ERROR_CLASSES, sqlStateOf, UNAVAILABLE_TEXT } from './sql/sql-pool';

// Repositories translate Prisma failures into the domain's typed errors, so services
// and transports never see Prisma error classes.

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Ids of uuid columns: a malformed one cannot match a row (Postgres would reject it). */
export function isUuid(value: string): boolean {
  return UUID.test(value);
}

/** Postgres/Prisma error codes meaning "the database is away", worth retrying. */
const UNAVAILABLE = new Set(['P1001', 'P1002', 'P1008', 'P1017', 'P2024', 'P2028']);

// A constraint violation is told by Prisma's code (P2002/P2003: a model query, as the callback saw it) or by the
// SQLSTATE (23505/23503): a violation a transaction's callback caught and went on from comes back from
// runInTransaction as the driver adapter's bare error (the first failure, which aborted the transaction) — or a raw
// query's (P2010) — and must still read as the conflict (409) or missing row it is, not a 500.

/** Another row holds the unique value (a unique violation). */
export function isUniqueViolation(err: unknown): boolean {
  if (err instanceof Prisma.PrismaClientKnownRequestError && err.code === 'P2002') return true;
  return sqlStateOf(err) === '23505';
}

/** A row refers to one that is not there (or no longer: deleted meanwhile). */
export function isForeignKeyViolation(err: unknown): boolean {
  if (err instanceof Prisma.PrismaClientKnownRequestError && err.code === 'P2003') return true;
  return sqlStateOf(err) === '23503';
}

export function isRecordNotFound(err: unknown): boolean {
  return err instanceof Prisma.PrismaClientKnownRequestError && err.code === 'P2025';
}

// The way to the database failing, in a driver's message (UNAVAILABLE_TEXT), and the SQLSTATE classes that blame the
// rows (DATA_ERROR_CLASSES: 21, 22, 23, 54, P0 and 25P02) are sql-pool's: both paths classify alike. pg's own errors
// reach a Prisma caller as pg threw them ("Client has encountered a connection error and is not queryable" is a
// transaction's next statement after its connection was lost). Any SQLSTATE outside those classes — connection (08),
// resources (53), operator intervention (57, a statement timeout), system (58), lock conflicts (40, 55), read-only after
// a failover (25006), a schema out of step (42) — hits every request alike: a 503 with Retry-After, not a 500.

type DriverError = {
  message?: unknown;
  meta?: { message?: unknown; driverAdapterError?: { cause?: { originalMessage?: unknown } } };
} | null;

/** The database's own words: pg's message, or the one Prisma's driver adapter kept (not Prisma's invocation text). */
function databaseMessageOf(err: unknown): string {
  const e = err as DriverError;
  const text = e?.meta?.driverAdapterError?.cause?.originalMessage ?? e?.meta?.message ?? e?.message;
  return typeof text === 'string' ? text : '';
}

function isUnavailable(err: unknown): boolean {
  if (err instanceof Prisma.PrismaClientKnownRequestError)
    // A driver error Prisma has no code of its own for (a query timed out on the client's side, QueryTimeoutError,
    // or a connection closed under it) comes with the driver's code (ETIMEDOUT) and message instead of a P code.
    return UNAVAILABLE.has(err.code) || UNAVAILABLE_TEXT.test(err.message);
  if (err instanceof Prisma.PrismaClientInitializationError) return true;
  const text = err instanceof Error ? `${err.message} ${String((err as { code?: unknown }).code ?? '')}` : '';
  return UNAVAILABLE_TEXT.test(text);
}

/**
 * Rethrows `err` as a domain error when it has a meaning there (`conflict` names what
 * clashed), else unchanged. Always throws.
 */
export function rethrow(err: unknown, what: { conflict?: string; notFound?: string } = {}): never {
  if (what.conflict && isUniqueViolation(err)) throw new ConflictError(what.conflict);
  if (what.notFound && isRecordNotFound(err)) throw new NotFoundError(what.notFound);
  const state = sqlStateOf(err);
  // Said as rethrowSql says it, the database's words and the SQLSTATE: a 503 is not logged (the answer's message is all
  // there is), and a column missing after a skipped migration (42703) must not read as a bare "database unavailable";
  // sqlState is what callers tell a statement timeout (57014) by.
  if (state && !DATA_ERROR_CLASSES.test(state))
    throw new UnavailableError(`database unavailable: ${databaseMessageOf(err)} (${state})`, 5, state);
  if (isUnavailable(err)) throw new UnavailableError('database unavailable', 5);
  throw err;
}
