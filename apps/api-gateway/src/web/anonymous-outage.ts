import type { Logger } from '@nestjs/common';
import { UnavailableError } from '@fleetwatch/domain';

/**
 * The 503 of an answer to someone not (yet) known, in place of an outage's own words: logged by AnonymousOutages, so
 * not an `outage` to the global error filter — its once-per-10-s line, shared by every route, would be spent on this
 * message instead of the words.
 */
export class AnonymousOutageError extends UnavailableError {
  override readonly outage = false;
}

/**
 * Answers to callers not (yet) known — a public status page, a sign-in, any request before its credential is checked:
 * an outage's message is its dependency's own words (the database's: `relation "users" does not exist`, a role or
 * database name; Redis's), an operator's business. They go to `logger` (at most once per `intervalMs`, with a count
 * of the answers since), and the caller gets a 503 saying only what is unavailable, with the same Retry-After.
 */
export class AnonymousOutages {
  private last = Number.NEGATIVE_INFINITY;
  private since = 0;

  constructor(
    private readonly logger: Pick<Logger, 'warn'>,
    /** What answered, for the log line (`public status page`). */
    private readonly what: string,
    private readonly intervalMs = 10_000,
  ) {}

  /** `error` as such a caller may see it: an outage (an UnavailableError that is one) as `message`; any other as is. */
  hide(error: unknown, message: string): unknown {
    if (!(error instanceof UnavailableError) || !error.outage) return error;
    this.since++;
    const now = Date.now();
    if (now - this.last >= this.intervalMs) {
      const sqlState = error.sqlState ? ` (SQLSTATE ${error.sqlState})` : '';
      this.logger.warn(
        `${this.what} answered 503: ${error.message}${sqlState}; ${this.since} such answer(s) since the last line`,
      );
      this.last = now;
      this.since = 0;
    }
    return new AnonymousOutageError(message, error.retryAfterSeconds);
  }
}
