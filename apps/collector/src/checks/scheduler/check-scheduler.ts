import { systemClock, type Clock } from './clock';
import { nextSlotAtOrAfter, phaseOf } from './phase';
import { SlotHeap, type HeapItem } from './slot-heap';

// The collector's scheduler, without I/O: time comes from a Clock, work is a `run`
// callback, so unit tests drive thousands of simulated intervals with a ManualClock.
//
// - Each check runs on its own grid `phase + k·interval` (phase.ts): spread over the
//   interval, stable across restarts. The next planned instant is always the previous
//   planned one plus the interval — never "when the last run ended" + interval — so a
//   slow run or a busy event loop delays one start (lag) but never shifts the grid (drift).
// - At most `concurrency` runs at once; due slots beyond that wait in FIFO order.
// - A check never runs twice at once: a slot that comes due while the check's previous
//   slot is still waiting or running is skipped and reported ('overlap'); slots that
//   passed entirely while the process could not look (an event-loop stall) are skipped too
//   ('behind'), and only the latest one runs — no catch-up burst.
// - A step back of the wall clock (an NTP step) moves the whole plan back with it: each check
//   runs on at its pace. Planned on the wall clock alone, every check waited out the step
//   (10 min for a 10 min step) before its next run, and went STALE meanwhile. A step forward
//   moves it forward alike (else every check came due at once). Each moved slot is put back on
//   the grid (the nearest slot): a plan made with a wrong clock runs on the shared grid once the
//   clock is right, not off it by the clock's error for good.
// - The set of checks changes while running: an added check gets its first slot within
//   one interval, a removed one stops (a run in flight finishes), a changed one runs with
//   its new definition from its next start (same slot grid while its interval is unchanged).

export interface SchedulableCheck {
  readonly id: string;
  readonly intervalSeconds: number;
}

export interface SlotTiming {
  /** The grid instant this run belongs to (epoch ms). */
  plannedAt: number;
  /** When it actually started (epoch ms); `startedAt - plannedAt` is the schedule lag. */
  startedAt: number;
}

export type SkipReason = 'overlap' | 'behind';

export interface SchedulerHooks<C extends SchedulableCheck> {
  /** One run of `check`. Expected never to reject (the runner turns failures into results); a rejection goes to onError. */
  run(check: C, slot: SlotTiming): Promise<void>;
  onStart?(check: C, lagMs: number): void;
  onSkip?(check: C, reason: SkipReason, slots: number): void;
  onError?(check: C, error: unknown): void;
}

export interface SchedulerOptions {
  /** Runs at once at most. */
  concurrency: number;
  clock?: Clock;
  /**
   * When the process started (epoch ms). Checks placed before start() — the assignment
   * the collector boots with — plan from this instant instead of from now: a slot that
   * fell while the process was still starting runs as soon as the scheduler starts
   * (late, counted as lag) instead of being missed, so after a restart every check runs
   * within one interval of the process start, boot time included.
   */
  catchUpFrom?: number;
}

type EntryState = 'idle' | 'queued' | 'running';

/** A step of the wall clock (back or forward) smaller than this (against the monotonic clock, between two reads) is not one. */
export const STEP_BACK_TOLERANCE_MS = 1_000;

/** The longest the scheduler sleeps without reading the wall clock (so it sees a step within this long). */
export const CLOCK_READ_MS = 10_000;

interface Entry<C> extends HeapItem {
  check: C;
  intervalMs: number;
  phaseMs: number;
  state: EntryState;
  /** Left the set while queued or running: forgotten once that ends (unless added back meanwhile). */
  removed: boolean;
  /** The slot a queued entry waits to run for. */
  slotAt: number;
}

/**
 * The grid slot (`phase + k·interval`) nearest `at` (a tie: the earlier): where a slot moved by a step of the wall
 * clock runs. The check's last run before the step was about an interval before `at` in real time, so its next one
 * comes between half an interval and one and a half after it: never twice in one slot (the grid slot nearest that run
 * is the one before), no slot skipped (the one after it is the nearest to `at`).
 */
export function regridded(at: number, intervalMs: number, phaseMs: number): number {
  return nextSlotAtOrAfter(at - intervalMs / 2, intervalMs, phaseMs);
}

export class CheckScheduler<C extends SchedulableCheck> {
  private readonly clock: Clock;
  private readonly concurrency: number;
  /** catchUpFrom on the monotonic clock: a step of the wall clock during the boot does not move it (see place). */
  private readonly catchUpFromMonotonic: number | undefined;
  private readonly entries = new Map<string, Entry<C>>();
  private readonly heap = new SlotHeap<Entry<C>>();
  private queue: Entry<C>[] = [];
  private queueHead = 0;
  private runningCount = 0;
  private timer: unknown;
  private timerAt = Number.NaN;
  private started = false;
  private stopped = false;
  /** The last read of the clocks (wall, monotonic): a step back shows as the wall clock gaining less. */
  private lastRead: { wall: number; monotonic: number } | undefined;
  private idleWaiters: Array<() => void> = [];

  constructor(
    private readonly hooks: SchedulerHooks<C>,
    options: SchedulerOptions,
  ) {
    if (!Number.isInteger(options.concurrency) || options.concurrency < 1)
      throw new RangeError(`concurrency must be a positive integer, got ${options.concurrency}`);
    this.concurrency = options.concurrency;
    this.clock = options.clock ?? systemClock;
    this.catchUpFromMonotonic =
      options.catchUpFrom === undefined ? undefined : this.clock.monotonic() - (this.clock.now() - options.catchUpFrom);
  }

  /** Checks scheduled (removed ones still finishing a run are not counted). */
  get size(): number {
    return this.heap.size;
  }

  get running(): number {
    return this.runningCount;
  }

  /** Slots due and waiting for a free run. */
  get queued(): number {
    return this.queue.length - this.queueHead;
  }

  has(id: string): boolean {
    const e = this.entries.get(id);
    return e !== undefined && !e.removed;
  }

  /** The next planned start of `id` (epoch ms), for tests and diagnostics. */
  nextPlannedAt(id: string): number | undefined {
    const e = this.entries.get(id);
    return e && !e.removed ? e.plannedAt : undefined;
  }

  /** Adds a check or replaces its definition (used from its next start). */
  upsert(check: C): void {
    this.place(check);
    this.arm();
  }

  remove(id: string): void {
    this.unplace(id);
    this.arm();
  }

  /** Makes the scheduled set exactly `checks` (adds, replaces, removes) with one timer change. */
  replaceAll(checks: Iterable<C>): void {
    const keep = new Set<string>();
    for (const c of checks) {
      keep.add(c.id);
      this.place(c);
    }
    for (const [id, e] of this.entries) if (!e.removed && !keep.has(id)) this.unplace(id);
    this.arm();
  }

  start(): void {
    if (this.started || this.stopped) return;
    this.started = true;
    this.arm();
  }

  /** Stops planning and drops queued slots; resolves when the runs in flight have ended. */
  stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    for (let i = this.queueHead; i < this.queue.length; i++) this.afterSlot(this.queue[i]);
    this.queue = [];
    this.queueHead = 0;
    if (this.runningCount === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private place(check: C): void {
    const intervalMs = check.intervalSeconds * 1000;
    if (!(intervalMs > 0)) throw new RangeError(`check ${check.id}: intervalSeconds must be positive`);
    const e = this.entries.get(check.id);
    if (e) {
      const moved = e.intervalMs !== intervalMs || e.heapIndex < 0;
      e.check = check;
      e.removed = false;
      if (moved) {
        e.intervalMs = intervalMs;
        e.phaseMs = phaseOf(check.id, intervalMs);
        e.plannedAt = nextSlotAtOrAfter(this.now(), intervalMs, e.phaseMs);
        this.heap.update(e);
      }
      return;
    }
    const phaseMs = phaseOf(check.id, intervalMs);
    const now = this.now();
    // The process start on the wall clock as it reads now: a step while booting (NTP syncing as the assignment is
    // fetched) moved the wall clock, not the boot. Left in the old clock's terms, a step forward made every slot the
    // step passed a catch-up (every check at once at start, and 'behind' skips); a step back, none.
    const from =
      !this.started && this.catchUpFromMonotonic !== undefined
        ? Math.min(now, now - (this.clock.monotonic() - this.catchUpFromMonotonic))
        : now;
    const entry: Entry<C> = {
      check,
      intervalMs,
      phaseMs,
      plannedAt: nextSlotAtOrAfter(from, intervalMs, phaseMs),
      heapIndex: -1,
      state: 'idle',
      removed: false,
      slotAt: 0,
    };
    this.entries.set(check.id, entry);
    this.heap.push(entry);
  }

  /**
   * The wall clock, read once here for every plan: when it gained less than the monotonic clock since the last read
   * (by STEP_BACK_TOLERANCE_MS or more: it stepped back), every planned slot moves back by as much first, so the plan
   * stays where it was in real time; when it gained more (stepped forward), forward by as much. Left where they were
   * after a step forward, every slot the step passed came due at the first wake after it: every check of the
   * collector started at once (each again on its own slot within the interval), a burst on the targets and on the
   * concurrency queue, whose tail started late enough to skip its next slot. Each moved slot is then put on the grid
   * again (regridded): a plan made with a wrong clock (booted before NTP synced) sat off the grid by the clock's error,
   * and carried through the step it stayed off it for good — every run late or early against every other collector's
   * (the aggregator's peer bound, peerResultGraceMs, counts on the same instants).
   */
  private now(): number {
    const wall = this.clock.now();
    const monotonic = this.clock.monotonic();
    const last = this.lastRead;
    this.lastRead = { wall, monotonic };
    if (last !== undefined) {
      const back = monotonic - last.monotonic - (wall - last.wall);
      if (Math.abs(back) >= STEP_BACK_TOLERANCE_MS)
        // The armed timer no longer matches its slot (arm re-arms it).
        for (const e of this.entries.values()) {
          e.slotAt -= back;
          e.plannedAt = regridded(e.plannedAt - back, e.intervalMs, e.phaseMs);
          if (e.heapIndex >= 0) this.heap.update(e);
        }
    }
    return wall;
  }

  private unplace(id: string): void {
    const e = this.entries.get(id);
    if (!e || e.removed) return;
    this.heap.remove(e);
    e.removed = true;
    if (e.state === 'idle') this.entries.delete(id);
  }

  /** One timer, for the earliest planned slot. */
  private arm(): void {
    if (!this.started || this.stopped) return;
    const now = this.now(); // first: a step back moves the plan
    const top = this.heap.peek();
    if (!top) {
      if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
      this.timer = undefined;
      this.timerAt = Number.NaN;
      return;
    }
    if (this.timer !== undefined && this.timerAt === top.plannedAt) return;
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timerAt = top.plannedAt;
    // Never longer than CLOCK_READ_MS: the wake reads the clock, so a step is seen (and the plan moved) soon after it,
    // not at the next slot (a day on for a daily check) — which, after a step forward, ran late by the step.
    this.timer = this.clock.setTimeout(() => this.wake(), Math.min(CLOCK_READ_MS, Math.max(0, top.plannedAt - now)));
  }

  private wake(): void {
    this.timer = undefined;
    this.timerAt = Number.NaN;
    if (this.stopped) return;
    const now = this.now();
    for (;;) {
      const e = this.heap.peek();
      if (!e || e.plannedAt > now) break;
      let slot = e.plannedAt;
      const missed = Math.floor((now - slot) / e.intervalMs);
      if (missed > 0) {
        slot += missed * e.intervalMs;
        this.hooks.onSkip?.(e.check, 'behind', missed);
      }
      e.plannedAt = slot + e.intervalMs;
      this.heap.update(e);
      if (e.state !== 'idle') {
        this.hooks.onSkip?.(e.check, 'overlap', 1);
        continue;
      }
      e.state = 'queued';
      e.slotAt = slot;
      this.queue.push(e);
    }
    this.pump();
    this.arm();
  }

  private pump(): void {
    while (this.runningCount < this.concurrency && this.queueHead < this.queue.length && !this.stopped) {
      const e = this.queue[this.queueHead++];
      if (e.removed) {
        this.afterSlot(e);
        continue;
      }
      e.state = 'running';
      this.runningCount++;
      const startedAt = this.now();
      const check = e.check;
      this.hooks.onStart?.(check, startedAt - e.slotAt);
      let done: Promise<void>;
      try {
        done = this.hooks.run(check, { plannedAt: e.slotAt, startedAt });
      } catch (err) {
        done = Promise.reject(err);
      }
      done.then(
        () => this.finished(e),
        (err: unknown) => {
          this.hooks.onError?.(check, err);
          this.finished(e);
        },
      );
    }
    if (this.queueHead > 1024 && this.queueHead * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.queueHead);
      this.queueHead = 0;
    }
  }

  private finished(e: Entry<C>): void {
    this.runningCount--;
    this.afterSlot(e);
    if (this.runningCount === 0 && this.idleWaiters.length > 0) for (const w of this.idleWaiters.splice(0)) w();
    this.pump();
  }

  /** The entry's slot is over (ran or dropped): idle again, or forgotten if it left the set meanwhile. */
  private afterSlot(e: Entry<C>): void {
    e.state = 'idle';
    if (e.removed && this.entries.get(e.check.id) === e) this.entries.delete(e.check.id);
  }
}
