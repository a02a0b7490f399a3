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
  /** When each unsettled delivery was published (epoch ms; see HandledWatermark). */
  private readonly publishedAt = new Map<number, number>();

  constructor(readonly id: number) {}

  get isLive(): boolean {
    return this.live;
  }

  /** Called when the channel (or its connection) closed. */
  retire(): void {
    this.live = false;
    this.tags.clear();
    this.marks.clear();
    this.publishedAt.clear();
  }

  /** A delivery received; `publishedAt`: when it was published (epoch ms), when known. */
  track(tag: number, publishedAt?: number): void {
    this.tags.add(tag);
    if (publishedAt !== undefined) this.publishedAt.set(tag, publishedAt);
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

  /**
   * The earliest publish time of the unsettled deliveries, as tracked (undefined: none tracked). The broker delivers
   * a queue in order, so whatever was published before the oldest of them has been delivered before them and settled
   * since. (The earliest, not the lowest tag's: a fresh copy of an old message arrives behind newer ones.)
   */
  get oldestPendingPublishedAt(): number | undefined {
    let oldest: number | undefined;
    for (const at of this.publishedAt.values()) if (oldest === undefined || at < oldest) oldest = at;
    return oldest;
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
    const plan = this.tags.settle(tags);
    if (this.publishedAt.size > 0) for (const t of tags) this.publishedAt.delete(t);
    return plan;
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

/** What a consumer looks like at one moment, for HandledWatermark.observe. */
export interface ConsumerFacts {
  /**
   * Which registration of the consumer with the broker is in force (a new one after every consume: a channel
   * reopened, intake resumed); undefined while not registered (no channel, or intake paused).
   */
  registration: number | undefined;
  /** Deliveries received and not settled yet. */
  pending: number;
  /** When the oldest of them was published (ChannelGeneration.oldestPendingPublishedAt). */
  oldestPendingPublishedAt: number | undefined;
  /**
   * The broker's answer about the queue, asked at this look (a passive declare sent at its time, `ready` = messages
   * ready for delivery, `consumers` = consumers registered); undefined when not asked or not answered.
   */
  queue?: { ready: number; consumers: number };
}

/**
 * How far a consumer has handled its queue: a time such that every message published to the queue before it has
 * been received and settled — the consumer is not behind on anything older. Looked at periodically (observe):
 * - deliveries in hand: the earliest publish time among them (the broker delivers a queue in order, a message given
 *   back first again — a quorum queue's returns — so everything published before them was delivered before them,
 *   and is no longer in hand: settled). No broker round trip;
 * - nothing in hand, and the previous look (under the same registration) found nothing in hand either while the
 *   broker said the queue had nothing ready and no consumer but this one: that look's time. What was delivered but
 *   not yet read then (in flight, or sent later than the answer on another channel) has had a whole interval to
 *   arrive — and is in hand, or settled, now. Nothing in hand alone tells nothing: after the last acks a quorum queue
 *   may take a while (its log) before it delivers more, so the broker is asked — only for a consumer with nothing
 *   in hand, and answered on the consumer's own connection;
 * - otherwise (no channel, a new registration with nothing in yet, no answer): what the last look found.
 * A delivery given back to the queue (requeued, or republished to its tail as a fresh copy) holds the watermark at
 * its publish time until it is received again (or the consumer is found caught up since). Undefined until known.
 * Publish times are the publisher's AMQP `timestamp` (whole seconds, so rounded down: never later than the truth),
 * or the receipt time where a message carries none.
 */
export class HandledWatermark {
  private known: number | undefined;
  /** The last look: when, under which registration, and whether it found the consumer caught up (see observe). */
  private last: { at: number; registration: number | undefined; drained: boolean } | undefined;
  /** Deliveries given back and not received again since: their publish time, and when they went back. */
  private readonly returns = new Map<string, { publishedAt: number; at: number }>();
  private anonymousReturn: { publishedAt: number; at: number } | undefined;

  /** A delivery went back to the queue (requeued, or a fresh copy at its tail). */
  returned(messageId: string | undefined, publishedAt: number, at = Date.now()): void {
    if (messageId === undefined) {
      const prev = this.anonymousReturn;
      this.anonymousReturn = { publishedAt: Math.min(prev?.publishedAt ?? publishedAt, publishedAt), at };
    } else this.returns.set(messageId, { publishedAt, at });
  }

  /** A delivery arrived: if it was one given back, it is in hand again (the oldest in hand tells from now on). */
  received(messageId: string | undefined): void {
    if (messageId !== undefined && this.returns.size > 0) this.returns.delete(messageId);
  }

  /**
   * The watermark now (epoch ms, at most `now`), from what the consumer looks like; see the class. `now`: when the
   * look began (before the broker was asked); the facts are read once its answer is in.
   */
  observe(now: number, facts: ConsumerFacts): number | undefined {
    const idle = facts.registration !== undefined && facts.pending === 0;
    const drained = idle && facts.queue !== undefined && facts.queue.ready === 0 && facts.queue.consumers <= 1;
    let handled: number | undefined;
    if (facts.pending > 0 && facts.oldestPendingPublishedAt !== undefined) handled = facts.oldestPendingPublishedAt;
    else if (idle && this.last?.drained && this.last.registration === facts.registration) {
      handled = this.last.at;
      this.forgetReturnsBefore(this.last.at);
    } else handled = this.known;
    if (handled !== undefined) {
      for (const r of this.returns.values()) handled = Math.min(handled, r.publishedAt);
      if (this.anonymousReturn) handled = Math.min(handled, this.anonymousReturn.publishedAt);
      handled = Math.min(handled, now);
    }
    this.known = handled;
    this.last = { at: now, registration: facts.registration, drained };
    return handled;
  }

  /** Found caught up as of `at`: what went back before it has been received again and settled since. */
  private forgetReturnsBefore(at: number): void {
    for (const [id, r] of this.returns) if (r.at < at) this.returns.delete(id);
    if (this.anonymousReturn && this.anonymousReturn.at < at) this.anonymousReturn = undefined;
  }
}

/** A message's publish time from its AMQP `timestamp` property (whole seconds), if it carries a plausible one. */
export function publishedAtOf(timestamp: unknown): number | undefined {
  return typeof timestamp === 'number' && Number.isFinite(timestamp) && timestamp > 0 ? timestamp * 1000 : undefined;
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
