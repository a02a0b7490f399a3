/** Time as the scheduler sees it: wall-clock ms and one-shot timers. Tests drive a ManualClock instead. */
export interface Clock {
  now(): number;
  /** A clock that never steps (ms from any origin): timers run on it; it tells a step of the wall clock. */
  monotonic(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/**
 * The process clock. Wall time, not a monotonic one, because planned instants sit on an
 * epoch-anchored grid that must survive restarts; a step of it (back or forward) moves the plan
 * with it (CheckScheduler), so runs go on at their pace instead of waiting out the step or all
 * coming due at once.
 */
export const systemClock: Clock = {
  now: () => Date.now(),
  monotonic: () => performance.now(),
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
 * "takes" 3 s of manual time) runs exactly as it would, minus the waiting. `step(ms)`
 * moves the wall clock alone (an NTP step): timers, like real ones, keep to the monotonic one.
 */
export class ManualClock implements Clock {
  /** The monotonic time; the wall clock is it plus `offset`. */
  private current: number;
  private offset = 0;
  private seq = 0;
  private readonly timers: ManualTimer[] = [];

  constructor(start = 0) {
    this.current = start;
  }

  now(): number {
    return this.current + this.offset;
  }

  monotonic(): number {
    return this.current;
  }

  /** Steps the wall clock by `ms` (negative: back), firing nothing. */
  step(ms: number): void {
    this.offset += ms;
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
