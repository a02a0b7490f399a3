import { UnavailableError } from '@fleetwatch/domain';

const TRANSIENT = /ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|EHOSTUNREACH|Connection is closed|MaxRetriesPerRequest|Stream isn't writeable|Connection terminated|Timed out fetching a new connection|Transaction API error|database unavailable|the database system is (starting up|shutting down)|too many clients/i;

/** A dependency outage (database, Redis) rather than a problem with the data: worth waiting out. */
export function isTransient(error: unknown): boolean {
  if (error instanceof UnavailableError) return true;
  const e = error as { message?: unknown; code?: unknown; name?: unknown } | null;
  return TRANSIENT.test(`${String(e?.name ?? '')} ${String(e?.message ?? '')} ${String(e?.code ?? '')}`);
}

export interface RetryOptions {
  /** Stop retrying (and rethrow) once this says so, e.g. during shutdown. */
  stopping: () => boolean;
  onRetry?: (error: unknown, attempt: number, delayMs: number) => void;
  maxDelayMs?: number;
}

/**
 * Runs `job` until it succeeds, waiting out transient failures with backoff
 * (the messages stay unacked meanwhile, so an outage never burns their delivery
 * limit into the dead-letter queue). Other errors are rethrown at once.
 */
export async function retryTransient<T>(job: () => Promise<T>, options: RetryOptions): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await job();
    } catch (e) {
      if (!isTransient(e) || options.stopping()) throw e;
      const delay = Math.min(options.maxDelayMs ?? 5000, 100 * 2 ** Math.min(attempt, 6));
      options.onRetry?.(e, attempt, delay);
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}
