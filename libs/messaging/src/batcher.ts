export interface BatchOptions {
  /** Hand a batch over once it holds this many items. */
  maxSize: number;
  /** …or once its oldest item has waited this long. */
  maxWaitMs: number;
  /** …or once its items weigh this much (the batcher's `weigh`, e.g. updates per message). A single heavier item still goes alone. */
  maxUnits?: number;
  /**
   * Leading edge: `maxWaitMs` counts from the previous hand-over instead of from the
   * oldest item, so an item arriving after a quiet spell (no batch handed over for
   * `maxWaitMs`) goes at once (after the current I/O turn, so what arrived together
   * goes together), while under load batches are still handed over at most every
   * `maxWaitMs` and grow with the load. An idle consumer adds no latency.
   */
  leading?: boolean;
}

/**
 * Collects items into batches of at most `maxSize` items (and `maxUnits` of
 * weight), flushed when full or after `maxWaitMs`, and hands them to `onBatch`
 * one batch at a time (never two concurrently, so a consumer's commits stay in
 * delivery order). Items arriving while a batch is being handled wait for the next one.
 */
export class Batcher<T> {
  private buffer: T[] = [];
  private timer: ReturnType<typeof setTimeout> | null = null;
  private due = false;
  private busy: Promise<void> | null = null;
  private flushRequested = false;
  private idleWaiters: Array<() => void> = [];
  private units = 0;
  private lastHandover = Number.NEGATIVE_INFINITY;
  private readonly maxUnits: number;

  constructor(
    private readonly options: BatchOptions,
    private readonly onBatch: (items: T[]) => Promise<void>,
    private readonly weigh: (item: T) => number = () => 1,
  ) {
    if (!Number.isInteger(options.maxSize) || options.maxSize < 1)
      throw new RangeError('batch.maxSize must be a positive integer');
    if (!(options.maxWaitMs >= 0)) throw new RangeError('batch.maxWaitMs must be ≥ 0');
    if (options.maxUnits !== undefined && !(options.maxUnits >= 1)) throw new RangeError('batch.maxUnits must be ≥ 1');
    this.maxUnits = options.maxUnits ?? Number.POSITIVE_INFINITY;
  }

  get size(): number {
    return this.buffer.length;
  }

  get isIdle(): boolean {
    return this.buffer.length === 0 && this.busy === null;
  }

  add(item: T): void {
    this.buffer.push(item);
    this.units += this.weigh(item);
    if (this.full()) {
      this.due = true;
      this.kick();
    } else if (this.timer === null && !this.due) {
      this.arm();
    }
  }

  /** Removes buffered (not yet handed over) items, e.g. deliveries of a closed channel. */
  discard(predicate: (item: T) => boolean): T[] {
    const gone = this.buffer.filter(predicate);
    if (gone.length > 0) {
      this.buffer = this.buffer.filter((i) => !predicate(i));
      for (const g of gone) this.units -= this.weigh(g);
    }
    if (this.buffer.length === 0) this.disarm();
    this.settleIdle();
    return gone;
  }

  /** Hands over everything buffered now and resolves when every batch has been handled. */
  async flush(): Promise<void> {
    this.flushRequested = true;
    this.kick();
    await this.whenIdle();
  }

  whenIdle(): Promise<void> {
    if (this.isIdle) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private arm(): void {
    const wait = this.options.leading
      ? Math.max(0, Math.min(this.options.maxWaitMs, this.lastHandover + this.options.maxWaitMs - Date.now()))
      : this.options.maxWaitMs;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.due = true;
      this.kick();
    }, wait);
  }

  private disarm(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  private kick(): void {
    if (this.busy !== null) return;
    if (this.buffer.length === 0) {
      this.due = false;
      this.settleIdle();
      return;
    }
    if (!this.due && !this.flushRequested) return;
    const batch = this.take();
    this.lastHandover = Date.now();
    this.due = this.full();
    if (this.buffer.length === 0) this.disarm();
    else if (this.timer === null) this.arm();
    this.busy = this.onBatch(batch)
      .catch(() => undefined)
      .then(() => {
        this.busy = null;
        this.kick();
      });
  }

  private full(): boolean {
    return this.buffer.length >= this.options.maxSize || this.units >= this.maxUnits;
  }

  /** The next batch: up to maxSize items and maxUnits of weight, at least one item. */
  private take(): T[] {
    let n = 0;
    let units = 0;
    while (n < this.buffer.length && n < this.options.maxSize) {
      const w = this.weigh(this.buffer[n]);
      if (n > 0 && units + w > this.maxUnits) break;
      units += w;
      n++;
    }
    this.units -= units;
    return this.buffer.splice(0, n);
  }

  private settleIdle(): void {
    if (!this.isIdle) return;
    this.flushRequested = false;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }
}
