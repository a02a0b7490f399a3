/**
 * What /readyz shows of a database check's failure (observability's ReadinessReason, the words it reads from a
 * `readinessReason` on the error; this lib does not import observability): `unreachable` when there is no connection
 * (refused, reset, closed under the query, name not resolved), `timeout` when none came or no answer did in time.
 * Anything else (a refused password, a missing database, a server starting up) is left to /readyz's `unavailable`.
 * Read from the error's code (pg's, Node's), the driver adapter's kind (a Prisma raw query's error keeps only that:
 * `Code: N/A`), and, where pg gives no code at all (`Connection terminated unexpectedly`), its message.
 */
export type DatabaseReadinessReason = 'unreachable' | 'timeout';

const UNREACHABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
  'ECONNABORTED',
  'EADDRNOTAVAIL',
]);
/** Prisma's pg adapter's error kinds (its mapping of the codes above). */
const UNREACHABLE_KINDS = new Set(['DatabaseNotReachable', 'ConnectionClosed']);
/** pg's errors that carry no code: the connect timeout, the client-side query timeout. */
const TIMEOUT_TEXT =
  /timeout exceeded when trying to connect|Connection terminated due to connection timeout|Query read timeout/i;
/** pg's errors that carry no code: the connection closed under a query or before it. */
const UNREACHABLE_TEXT =
  /Connection terminated unexpectedly|Client has encountered a connection error|Client was closed and is not queryable|Can't reach database server/i;

interface Classifiable {
  code?: unknown;
  kind?: unknown;
  message?: unknown;
  cause?: unknown;
  meta?: { driverAdapterError?: unknown };
}

/** The /readyz word for a database error (see DatabaseReadinessReason), or undefined (`unavailable`). */
export function databaseReadinessReason(error: unknown): DatabaseReadinessReason | undefined {
  const seen = new Set<unknown>();
  const queue: unknown[] = [error];
  while (queue.length && seen.size < 8) {
    const e = queue.shift();
    if (e === null || typeof e !== 'object' || seen.has(e)) continue;
    seen.add(e);
    const { code, kind, message, cause, meta } = e as Classifiable;
    if (code === 'ETIMEDOUT' || kind === 'SocketTimeout' || code === '57014') return 'timeout';
    if (typeof code === 'string' && (UNREACHABLE_CODES.has(code) || code.startsWith('08'))) return 'unreachable';
    if (typeof kind === 'string' && UNREACHABLE_KINDS.has(kind)) return 'unreachable';
    if (typeof message === 'string') {
      if (TIMEOUT_TEXT.test(message)) return 'timeout';
      if (UNREACHABLE_TEXT.test(message)) return 'unreachable';
    }
    queue.push(cause, meta?.driverAdapterError);
    // AggregateError (a host name that resolves to several addresses, each refused).
    if (Array.isArray((e as { errors?: unknown }).errors)) queue.push(...(e as { errors: unknown[] }).errors);
  }
  return undefined;
}

/** `error`, tagged with the `readinessReason` /readyz shows when databaseReadinessReason names one. */
export function withDatabaseReadinessReason<T>(error: T): T {
  const reason = databaseReadinessReason(error);
  if (reason && error !== null && typeof error === 'object') Object.assign(error, { readinessReason: reason });
  return error;
}
