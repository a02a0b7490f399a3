// How fast the spool drain publishes (spool-drain.ts): batch size and confirm timeout,
// adapted to what the link to the broker lets through. A batch that timed out is still on
// its way: a copy sent at once, as big and with the same deadline, queues behind it and
// times out too. A smaller batch with a longer deadline gets through after it.

/** The most the confirm timeout grows to on a slow link, as a multiple of the configured one. */
export const MAX_TIMEOUT_FACTOR = 12;

/**
 * Batch size and confirm timeout of the drain, adapted to the link: a timeout
 * halves the batch to what the broker confirmed in time (a quarter of it when it confirmed nothing) and
 * doubles the timeout; a batch confirmed whole doubles the batch again, up to `maxBatch`, and sets the
 * timeout to four times what it took, never under `baseTimeoutMs` nor over MAX_TIMEOUT_FACTOR × it.
 */
export class PublishPace {
  batchSize: number;
  timeoutMs: number;
  private readonly maxTimeoutMs: number;

  constructor(
    private readonly maxBatch: number,
    private readonly baseTimeoutMs: number,
  ) {
    this.batchSize = maxBatch;
    this.timeoutMs = baseTimeoutMs;
    this.maxTimeoutMs = baseTimeoutMs * MAX_TIMEOUT_FACTOR;
  }

  /** The batch timed out after the broker confirmed its first `confirmed` messages (in time, in order). */
  timedOut(confirmed: number): void {
    this.batchSize = Math.max(
      1,
      Math.floor(confirmed > 0 ? Math.min(confirmed, this.batchSize) / 2 : this.batchSize / 4),
    );
    this.timeoutMs = Math.min(this.maxTimeoutMs, this.timeoutMs * 2);
  }

  /** The whole batch was confirmed, in `tookMs`. */
  confirmed(tookMs: number): void {
    this.batchSize = Math.min(this.maxBatch, this.batchSize * 2);
    this.timeoutMs = Math.min(this.maxTimeoutMs, Math.max(this.baseTimeoutMs, Math.min(this.timeoutMs, 4 * tookMs)));
  }
}
