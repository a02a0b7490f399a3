/**
 * Delivery tags belong to one channel: after that channel closes the broker has
 * already requeued every unacked delivery, and acking an old tag on a new channel
 * would close it ("unknown delivery tag"). A `ChannelGeneration` marks which
 * channel a delivery came from; settling on a generation that is no longer live
 * is dropped (the broker redelivers, idempotency absorbs the repeat).
 */
export class ChannelGeneration {
  private live = true;
  private readonly tags = new PendingTags();
  private highest = 0;
  private readonly marks = new Set<DeliveryMark>();

  constructor(readonly id: number) {}

  get isLive(): boolean {
    return this.live;
  }

  /** Called when the channel (or its connection) closed. */
  retire(): void {
    this.live = false;
    this.tags.clear();
    this.marks.clear();
  }

  track(tag: number): void {
    this.tags.add(tag);
    if (tag > this.highest) this.highest = tag;
  }

  /** The highest delivery tag received on this channel (0: none yet). */
  get highestTag(): number {
    return this.highest;
  }

  /** The lowest delivery tag not settled yet (undefined: every delivery received is settled). */
  get lowestPending(): number | undefined {
    return this.tags.lowest;
  }

  /** Opens a mark over this channel's deliveries (see DeliveryMark). */
  mark(): DeliveryMark {
    const mark = new DeliveryMark(this);
    if (this.live) this.marks.add(mark);
    return mark;
  }

  /**
   * A delivery went back to its queue instead of being handled (requeued, or republished there as a fresh copy):
   * the marks it falls under no longer stand for "handled".
   */
  returned(tag: number): void {
    for (const mark of this.marks) mark.returned(tag);
  }

  /** @internal DeliveryMark.release */
  unwatch(mark: DeliveryMark): void {
    this.marks.delete(mark);
  }

  /** Plans how to settle `tags`; null when the generation is gone (drop them). */
  plan(tags: readonly number[]): SettlePlan | null {
    if (!this.live) return null;
    return this.tags.settle(tags);
  }

  get pending(): number {
    return this.tags.size;
  }
}

/**
 * A watermark over one channel's deliveries, to tell "everything received up to some point has been settled" under
 * continuous traffic, where a moment with nothing in flight may never come. Opened by ChannelGeneration.mark(); it
 * covers every delivery received until close() (the highest delivery tag then) and is `settled` once none of those
 * is still unsettled, whatever arrived after it. `broken` for good when its channel closed (the broker took the
 * unsettled ones back) or when a delivery it covers went back to the queue (requeued, or a fresh copy): those are
 * not handled, and will be delivered again under a later tag.
 */
export class DeliveryMark {
  private upTo: number | undefined;
  private broke = false;

  constructor(private readonly generation: ChannelGeneration) {}

  /** Stops the mark growing: it covers what was received until now. Idempotent. */
  close(): void {
    this.upTo ??= this.generation.highestTag;
  }

  get state(): 'open' | 'pending' | 'settled' | 'broken' {
    if (this.broke || !this.generation.isLive) return 'broken';
    if (this.upTo === undefined) return 'open';
    const lowest = this.generation.lowestPending;
    return lowest === undefined || lowest > this.upTo ? 'settled' : 'pending';
  }

  /** Stops watching for returns (its answer is no longer needed): call once done with it. */
  release(): void {
    this.generation.unwatch(this);
  }

  /** @internal ChannelGeneration.returned */
  returned(tag: number): void {
    if (this.upTo === undefined || tag <= this.upTo) this.broke = true;
  }
}

export type SettlePlan = { upTo: number; count: number } | { each: number[] };

/**
 * Unsettled delivery tags of one channel, ascending (the broker issues them in
 * increasing order). `settle` answers whether one `multiple=true` frame covers
 * exactly the given tags — only when no other unsettled tag lies below their
 * maximum; otherwise each is settled on its own, so a batch ack never sweeps up a
 * delivery that is still being handled or dead-lettered elsewhere.
 */
export class PendingTags {
  private tags: number[] = [];

  get size(): number {
    return this.tags.length;
  }

  /** The lowest unsettled tag, if any. */
  get lowest(): number | undefined {
    return this.tags[0];
  }

  add(tag: number): void {
    const last = this.tags[this.tags.length - 1];
    if (last === undefined || tag > last) this.tags.push(tag);
    else this.tags.splice(upperBound(this.tags, tag), 0, tag);
  }

  clear(): void {
    this.tags = [];
  }

  settle(tags: readonly number[]): SettlePlan {
    const wanted = [...new Set(tags)].filter((t) => this.has(t));
    if (wanted.length === 0) return { each: [] };
    let max = wanted[0];
    for (const t of wanted) if (t > max) max = t;
    const below = upperBound(this.tags, max);
    if (below === wanted.length) {
      this.tags.splice(0, below);
      return { upTo: max, count: below };
    }
    const drop = new Set(wanted);
    this.tags = this.tags.filter((t) => !drop.has(t));
    return { each: [...drop].sort((a, b) => a - b) };
  }

  private has(tag: number): boolean {
    const i = upperBound(this.tags, tag) - 1;
    return i >= 0 && this.tags[i] === tag;
  }
}

/** Index of the first element greater than `value` in an ascending array. */
function upperBound(sorted: readonly number[], value: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid] <= value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
