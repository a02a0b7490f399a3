/** Time as the scheduler sees it: wall-clock ms and one-shot timers. Tests drive a ManualClock instead. */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/**
 * The process clock. Wall time, not a monotonic one, because planned instants sit on an
 * epoch-anchored grid that must survive restarts; a clock step forward shows up as
 * skipped ("behind") slots, a step back as a longer wait, never as a burst of runs.
 */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    // The HTTP server keeps a collector alive; a pending check timer alone must not keep a test process.
    t.unref();
    return t;
  },
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

interface ManualTimer {
  at: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

/**
 * A clock that moves only when told to: `advance(ms)` fires due timers in time order,
 * letting promises settle after each one, so code that awaits timers (a probe that
 * "takes" 3 s of manual time) runs exactly as it would, minus the waiting.
 */
export class ManualClock implements Clock {
  private current: number;
  private seq = 0;
  private readonly timers: ManualTimer[] = [];

  constructor(start = 0) {
    this.current = start;
  }

  now(): number {
    return this.current;
  }

  setTimeout(fn: () => void, ms: number): unknown {
    const timer: ManualTimer = { at: this.current + Math.max(0, ms), seq: this.seq++, fn, cancelled: false };
    this.timers.push(timer);
    return timer;
  }

  clearTimeout(handle: unknown): void {
    if (handle) (handle as ManualTimer).cancelled = true;
  }

  /** A promise resolved after `ms` of this clock's time. */
  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.setTimeout(resolve, ms));
  }

  /** Moves time forward by `ms`, firing every timer due on the way (including ones set while advancing). */
  async advance(ms: number): Promise<void> {
    const end = this.current + ms;
    for (;;) {
      await settle();
      const next = this.nextDue(end);
      if (!next) break;
      this.current = Math.max(this.current, next.at);
      next.cancelled = true;
      next.fn();
    }
    this.current = end;
    await settle();
  }

  /** Timers not yet fired or cancelled. */
  get pending(): number {
    return this.timers.filter((t) => !t.cancelled).length;
  }

  private nextDue(end: number): ManualTimer | undefined {
    let best: ManualTimer | undefined;
    for (let i = this.timers.length - 1; i >= 0; i--) {
      const t = this.timers[i];
      if (t.cancelled) {
        this.timers.splice(i, 1);
        continue;
      }
      if (t.at <= end && (!best || t.at < best.at || (t.at === best.at && t.seq < best.seq))) best = t;
    }
    return best;
  }
}

/** Lets every queued promise callback run: one macrotask turn drains the whole microtask queue, awaits chained. */
function settle(): Promise<void> {
  return new Promise<void>((r) => setImmediate(r));
}
