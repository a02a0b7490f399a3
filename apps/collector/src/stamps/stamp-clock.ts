/** Where a stamp clock reads time: the wall clock (epoch ms) and a monotonic one (ms from any origin). */
export interface TimeSources {
  wall(): number;
  monotonic(): number;
}

export const systemTime: TimeSources = { wall: () => Date.now(), monotonic: () => performance.now() };

/**
 * The pace of the stamps, against the monotonic clock, while the wall clock is behind them. At the monotonic clock's
 * own pace (1) the wall clock would never catch up after a step back that corrected a clock running ahead: the stamps
 * would stay that far ahead for the life of the process — and of the next ones, through the stamp file. At half pace
 * it catches up after twice the step (a 10 min step: 20 min, stamps half as far apart as the runs meanwhile; a slow
 * clock after a reboot is usually stepped forward by NTP within a minute, and a step forward is followed at once).
 */
export const RIDE_OUT_PACE = 0.5;

/**
 * The largest step back of the wall clock that stamps ride out. A bigger one is followed: a clock that was more than
 * this far ahead was wrong before the step, not after it, and riding it out would keep every stamp that wrong for as
 * long (the aggregator holds a collector's stamps to its own clock + 60 s anyway).
 */
export const MAX_RIDE_OUT_MS = 60 * 60_000;

/** Steps back smaller than this are ridden out without a word (the two clocks read a moment apart, NTP's own). */
export const STEP_REPORT_MS = 1_000;

export type StepEvent =
  /** The wall clock is `ms` behind the stamps: they go on from the last one at RIDE_OUT_PACE until it catches up. */
  | { kind: 'riding'; ms: number }
  /** The wall clock is back at (or past) the stamps: they follow it again. */
  | { kind: 'caught-up' }
  /** The wall clock stepped back more than MAX_RIDE_OUT_MS (or a stored floor lies that far ahead): followed. */
  | { kind: 'followed'; ms: number };

export interface StampClockOptions {
  time?: TimeSources;
  /** The last stamp of the previous process (the stamp file): stamps start from it when the wall clock is behind it. */
  floor?: number;
  /** Told when the wall clock steps back STEP_REPORT_MS or more (once per step) and when it has caught up again. */
  onStep?(event: StepEvent): void;
}

/**
 * The times this collector puts on what it sends (a result's start, a host sample's time): never before the previous
 * one, though the wall clock may step back (an NTP step, a reboot with a slow RTC). A stamp is the wall clock, or,
 * when that is later, the last stamp the wall clock gave plus the monotonic time since it at RIDE_OUT_PACE: a step
 * back is ridden out — stamps go on, slower, until the wall clock is back past them — and a step forward is followed
 * at once. The aggregator orders a location's observations by these stamps: one stamped before the state it holds
 * does not change its status.
 */
export class StampClock {
  private readonly time: TimeSources;
  private readonly onStep: ((event: StepEvent) => void) | undefined;
  /** The stamp carried from (the last one the wall clock gave, or the stored floor) and the monotonic time then. */
  private anchor = { stamp: -Infinity, monotonic: 0 };
  /** A step back was reported and the wall clock has not caught up since. */
  private riding = false;
  private latest: number | undefined;
  /** The floor given, when taken (not more than MAX_RIDE_OUT_MS ahead of the wall clock then). */
  readonly floor: number | undefined;

  constructor(options: StampClockOptions = {}) {
    this.time = options.time ?? systemTime;
    this.onStep = options.onStep;
    if (options.floor !== undefined && Number.isFinite(options.floor)) {
      const ahead = options.floor - this.time.wall();
      if (ahead > MAX_RIDE_OUT_MS) this.onStep?.({ kind: 'followed', ms: ahead });
      else {
        this.floor = Math.floor(options.floor);
        this.anchor = { stamp: this.floor, monotonic: this.time.monotonic() };
      }
    }
  }

  /** The next stamp (epoch ms, whole): at or after every earlier one (unless a step back beyond MAX_RIDE_OUT_MS). */
  now(): number {
    const wall = Math.floor(this.time.wall());
    const monotonic = this.time.monotonic();
    const carried = Math.floor(this.anchor.stamp + (monotonic - this.anchor.monotonic) * RIDE_OUT_PACE);
    let stamp: number;
    if (wall >= carried) {
      stamp = wall;
      this.anchor = { stamp: wall, monotonic };
      if (this.riding) this.onStep?.({ kind: 'caught-up' });
      this.riding = false;
    } else if (carried - wall > MAX_RIDE_OUT_MS) {
      stamp = wall;
      this.anchor = { stamp: wall, monotonic };
      this.onStep?.({ kind: 'followed', ms: carried - wall });
      this.riding = false;
    } else {
      // Carried from the anchor, not from the previous stamp: whole-ms stamps taken often lose no time.
      // (Without a step, the carry stays behind the wall clock: it runs at half its pace from the same start.)
      stamp = carried;
      if (!this.riding && carried - wall >= STEP_REPORT_MS) {
        this.riding = true;
        this.onStep?.({ kind: 'riding', ms: carried - wall });
      }
    }
    this.latest = stamp;
    return stamp;
  }

  /** The last stamp given (undefined before the first). */
  get last(): number | undefined {
    return this.latest;
  }
}
