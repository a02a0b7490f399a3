import { ConflictError, NotFoundError, UnavailableError } from '@fleetwatch/domain';
import { Prisma } from './generated/prisma/client';

// Repositories translate Prisma failures into the domain's typed errors, so services
// and transports never see Prisma error classes.

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Ids of uuid columns: a malformed one cannot match a row (Postgres would reject it). */
export function isUuid(value: string): boolean {
  return UUID.test(value);
}

/** Postgres/Prisma error codes meaning "the database is away", worth retrying. */
const UNAVAILABLE = new Set(['P1001', 'P1002', 'P1008', 'P1017', 'P2024', 'P2028']);

export function isUniqueViolation(err: unknown): boolean {
  return err instanceof Prisma.PrismaClientKnownRequestError && err.code === 'P2002';
}

/** A row refers to one that is not there (or no longer: deleted meanwhile). */
export function isForeignKeyViolation(err: unknown): boolean {
  return err instanceof Prisma.PrismaClientKnownRequestError && err.code === 'P2003';
}

export function isRecordNotFound(err: unknown): boolean {
  return err instanceof Prisma.PrismaClientKnownRequestError && err.code === 'P2025';
}

/** The way to the database failing, in a driver's message or code. */
const UNAVAILABLE_TEXT =
  /ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|Connection terminated|DatabaseNotReachable|too many clients|the database system is (starting up|shutting down)|Client was closed and is not queryable/i;

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
  if (isUnavailable(err)) throw new UnavailableError('database unavailable', 5);
  throw err;
}
