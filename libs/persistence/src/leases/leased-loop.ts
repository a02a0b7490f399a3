/** What the loop needs of a lease (AdvisoryLease). */
export interface Lease {
  readonly isHeld: boolean;
  /** True when this process holds the lease now; never throws. */
  tryAcquire(): Promise<boolean>;
  release(): Promise<void>;
}

/** One job of a leased loop: run once per tick, by the lease holder only. */
export interface LeasedJob {
  /** For logs and metrics. */
  readonly name: string;
  run(now: number): Promise<unknown>;
}

export interface LeasedLoopOptions {
  lease: Lease;
  intervalMs: number;
  /** Run in this order each tick. */
  jobs: readonly LeasedJob[];
  /** A job threw: the jobs after it still run, and it runs again next tick. */
  onJobError?: (job: string, err: unknown) => void;
}

/**
 * Singleton jobs of a site (SPEC §8): every `intervalMs` the loop confirms or
 * takes the lease and, only while it holds it, runs its jobs one after the
 * other. A replica without the lease keeps trying each tick, so it takes over
 * within one interval of the holder's death. Ticks never overlap: the next is
 * scheduled when one ends, and `tick()` called from outside queues behind the
 * running one.
 */
export class LeasedLoop {
  private timer: NodeJS.Timeout | undefined;
  private chain: Promise<unknown> = Promise.resolve();
  private started = false;
  private stopped = false;

  constructor(private readonly options: LeasedLoopOptions) {}

  get lease(): Lease {
    return this.options.lease;
  }

  /** First tick at once, then every interval. */
  start(): void {
    if (this.started || this.stopped) return;
    this.started = true;
    this.schedule(0);
  }

  /** Stops scheduling, waits for the tick in progress (it skips the jobs it has not started), then releases the lease. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.chain;
    await this.options.lease.release();
  }

  /** One tick; resolves with whether the lease was held (also used by tests). */
  tick(now?: number): Promise<boolean> {
    const run = this.chain.then(() => this.runOnce(now ?? Date.now()));
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async runOnce(now: number): Promise<boolean> {
    if (this.stopped || !(await this.options.lease.tryAcquire())) return false;
    for (const job of this.options.jobs) {
      if (this.stopped) break;
      try {
        await job.run(now);
      } catch (e) {
        this.options.onJobError?.(job.name, e);
      }
    }
    return true;
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      void this.tick()
        .catch(() => false)
        .finally(() => this.schedule(this.options.intervalMs));
    }, delayMs);
    this.timer.unref();
  }
}
