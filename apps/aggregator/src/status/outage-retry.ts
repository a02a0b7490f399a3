import { UnavailableError } from '@fleetwatch/domain';
import { backoffDelay, type BackoffOptions } from '@fleetwatch/messaging';
import { isDependencyOutage } from '@fleetwatch/observability';

/**
 * Beyond what every service counts as a dependency outage (observability's isDependencyOutage: what ioredis rejects a
 * command with while Redis is away or silent, Redis's "not now" replies, socket errors): an ACL that does not let this
 * user at the keys — the operator's to fix, as an outage is; from a script Redis 7 says so as `ERR The user executing
 * the script can't access …`.
 */
const REDIS_ACL = /^(NOAUTH|NOPERM)\b|^ERR The user executing the script can't access/;
/** Sockets' and Postgres clients' words for an outage, wherever they sit in an error (driver, pool, Prisma). */
const TRANSIENT =
  /ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|EHOSTUNREACH|ENETUNREACH|ENOTFOUND|EAI_AGAIN|ECONNABORTED|EADDRNOTAVAIL|MaxRetriesPerRequest|Connection terminated|Timed out fetching a new connection|Transaction API error|database unavailable|the database system is (starting up|shutting down)|too many clients/i;

/**
 * A dependency outage (database, Redis) rather than a problem with the data: worth
 * waiting out. Postgres errors arrive classified by the repositories (rethrowSql
 * turns outages, lock conflicts and a schema out of step with the code into
 * UnavailableError); any other Postgres error is about the rows themselves.
 */
export function isTransient(error: unknown): boolean {
  if (error instanceof UnavailableError) return true;
  const e = error as { message?: unknown; code?: unknown; name?: unknown; severity?: unknown } | null;
  if (typeof e?.severity === 'string') return false;
  // A Node system error (DNS, sockets) is the way to a dependency failing.
  if (typeof (e as { syscall?: unknown } | null)?.syscall === 'string') return true;
  if (isDependencyOutage(error)) return true;
  if (e?.name === 'ReplyError' && typeof e.message === 'string' && REDIS_ACL.test(e.message)) return true;
  return TRANSIENT.test(`${String(e?.name ?? '')} ${String(e?.message ?? '')} ${String(e?.code ?? '')}`);
}

/**
 * The database refused for the size of the work, not for an outage nor for a row:
 * a statement timeout (57014) or out of memory (53200). A smaller commit may pass,
 * so a commit of several observations is split rather than retried as it is.
 */
export function isTooLarge(error: unknown): boolean {
  return error instanceof UnavailableError && (error.sqlState === '57014' || error.sqlState === '53200');
}

/** One line for logs and dead-letter reasons: the message, with the SQLSTATE where there is one. */
export function errorText(error: unknown): string {
  const e = error as { message?: unknown; code?: unknown } | null;
  const message = typeof e?.message === 'string' ? e.message : String(error);
  return typeof e?.code === 'string' && e.code ? `${message} (${e.code})` : message;
}

export interface RetryOptions {
  /** Stop retrying (and rethrow) once this says so, e.g. during shutdown. */
  stopping: () => boolean;
  onRetry?: (error: unknown, attempt: number, delayMs: number) => void;
  backoff?: Partial<BackoffOptions>;
  /** Overrides the classification (e.g. every broker error while dead-lettering is an outage). */
  treatAsTransient?: (error: unknown) => boolean;
}

/**
 * Runs `job` until it succeeds, waiting out transient failures with backoff
 * (the messages stay unacked meanwhile, so an outage never burns their delivery
 * limit into the dead-letter queue). Other errors are rethrown at once.
 */
export async function retryTransient<T>(job: () => Promise<T>, options: RetryOptions): Promise<T> {
  const transient = options.treatAsTransient ?? isTransient;
  for (let attempt = 1; ; attempt++) {
    try {
      return await job();
    } catch (e) {
      if (!transient(e) || options.stopping()) throw e;
      const delay = backoffDelay(attempt, { initialDelayMs: 100, maxDelayMs: 5_000, ...options.backoff });
      options.onRetry?.(e, attempt, delay);
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}
