import { UnavailableError } from '@fleetwatch/domain';

const TRANSIENT = /ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|EHOSTUNREACH|Connection is closed|MaxRetriesPerRequest|Stream isn't writeable|Connection terminated|Timed out fetching a new connection|Transaction API error|database unavailable|the database system is (starting up|shutting down)|too many clients/i;

/**
 * SQLSTATEs worth waiting out rather than blaming the data: connection exceptions
 * (08), resources (53), operator intervention (57P0x), serialization failure and
 * deadlock (40001, 40P01), lock not available (55P03) — and what a deploy gets
 * wrong for every row alike (42: a missing table or column, 3D/3F: database or
 * schema, 28: credentials): splitting a batch would set aside every message of it.
 */
const TRANSIENT_SQLSTATE = /^(08|53|57P0|40001|40P01|55P03|42|3D|3F|28)/;

/** A dependency outage (database, Redis) rather than a problem with the data: worth waiting out. */
export function isTransient(error: unknown): boolean {
  if (error instanceof UnavailableError) return true;
  const e = error as { message?: unknown; code?: unknown; name?: unknown; severity?: unknown } | null;
  // A Postgres error (pg's DatabaseError carries a severity): classify by its SQLSTATE, not its words.
  if (typeof e?.severity === 'string' && typeof e.code === 'string') return TRANSIENT_SQLSTATE.test(e.code);
  return TRANSIENT.test(`${String(e?.name ?? '')} ${String(e?.message ?? '')} ${String(e?.code ?? '')}`);
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
  maxDelayMs?: number;
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
      const delay = Math.min(options.maxDelayMs ?? 5000, 100 * 2 ** Math.min(attempt, 6));
      options.onRetry?.(e, attempt, delay);
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}
