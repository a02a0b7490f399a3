import { Injectable } from '@nestjs/common';

/**
 * Orders the aggregator's state-changing work. Each observation shard has its own
 * lane (`runIn`): its batches commit one at a time, in delivery order, while other
 * shards' lanes commit concurrently — a target lives in one shard, so its
 * observations never race. Jobs that may touch any target — live-state rebuilds,
 * the outbox relay, the legacy (un-sharded) queues — run exclusively (`run`): after
 * every lane's queued work, and before any work queued after them.
 */
@Injectable()
export class SerialLane {
  private readonly tails = new Map<string | number, Promise<unknown>>();
  /** The last exclusive job (settled): a lane opened later starts behind it. */
  private barrier: Promise<unknown> = Promise.resolve();

  /** Runs `job` in the lane of `key` (a shard), after that lane's earlier jobs and the last exclusive job. */
  runIn<T>(key: string | number, job: () => Promise<T>): Promise<T> {
    const tail = this.tails.get(key) ?? this.barrier;
    const result = tail.then(job);
    this.tails.set(
      key,
      result.catch(() => undefined),
    );
    return result;
  }

  /** Runs `job` alone: after everything queued in every lane, and before anything queued after it. */
  run<T>(job: () => Promise<T>): Promise<T> {
    const result = Promise.all([this.barrier, ...this.tails.values()]).then(job);
    const settled = result.catch(() => undefined);
    this.barrier = settled;
    for (const key of this.tails.keys()) this.tails.set(key, settled);
    return result;
  }

  /** Resolves once every job queued so far has finished. */
  idle(): Promise<void> {
    return Promise.all([this.barrier, ...this.tails.values()]).then(() => undefined);
  }
}
