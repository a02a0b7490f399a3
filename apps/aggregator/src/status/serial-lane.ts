import { Injectable } from '@nestjs/common';

/**
 * Runs the aggregator's state-changing work one job at a time: observation
 * batches, deadline sweeps, live-state rebuilds and the outbox relay. Each job
 * reads target state, commits, then projects it to Redis; serialising them keeps
 * the Redis projection in commit order (one replica consumes the queue).
 */
@Injectable()
export class SerialLane {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(job: () => Promise<T>): Promise<T> {
    const result = this.tail.then(job, job);
    this.tail = result.catch(() => undefined);
    return result;
  }

  /** Resolves once every job queued so far has finished. */
  idle(): Promise<void> {
    return this.tail.then(() => undefined);
  }
}
