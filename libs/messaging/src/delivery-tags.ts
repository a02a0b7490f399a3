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

  constructor(readonly id: number) {}

  get isLive(): boolean {
    return this.live;
  }

  /** Called when the channel (or its connection) closed. */
  retire(): void {
    this.live = false;
    this.tags.clear();
  }

  track(tag: number): void {
    this.tags.add(tag);
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
