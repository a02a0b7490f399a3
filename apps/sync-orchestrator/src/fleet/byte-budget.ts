/**
 * The bytes of members' answers a poll cycle may hold at once, read and not yet parsed (FLEET_POLL_MAX_INFLIGHT_BYTES).
 * Each answer is capped on its own (MAX_ANSWER_BYTES), but 50 members × 3 endpoints in flight could hold over 1 GB
 * together — the leader's memory, not the members, then set the limit.
 *
 * Bytes are counted as they arrive: each chunk of a body is taken from the budget as it is read, and everything an
 * answer took is given back (once) when it is parsed or dropped. A member that stalls mid-body holds only what it sent.
 * A chunk that does not fit is not taken, and its answer fails at once (BudgetFullError): an answer never waits while
 * holding bytes, so no two can wait on each other (no deadlock), and what is held never passes the limit — the memory
 * bound is the budget plus the one chunk each reader has in hand.
 */
export class ByteBudget {
  private held = 0;
  private peak = 0;

  constructor(
    /** The budget in bytes. */
    readonly limit: number,
  ) {}

  /** The bytes of answers held now. */
  get heldBytes(): number {
    return this.held;
  }

  /** The most bytes of answers held at once so far. */
  get peakHeldBytes(): number {
    return this.peak;
  }

  /** One answer's share: what it takes is given back by its release(). */
  open(): BudgetLease {
    return new BudgetLease(this);
  }

  /** @internal Takes `bytes` if they fit; false (nothing taken) if they do not. */
  take(bytes: number): boolean {
    if (this.held + bytes > this.limit) return false;
    this.held += bytes;
    if (this.held > this.peak) this.peak = this.held;
    return true;
  }

  /** @internal */
  giveBack(bytes: number): void {
    this.held -= bytes;
  }
}

/** One answer's bytes in the budget: each chunk is taken with take(), and all of them given back once, by release(). */
export class BudgetLease {
  private taken = 0;
  private released = false;

  constructor(private readonly budget: ByteBudget) {}

  /** The bytes this answer holds. */
  get bytes(): number {
    return this.taken;
  }

  /** Takes a chunk's `bytes`; throws BudgetFullError (nothing taken) when the budget has no room for them. */
  take(bytes: number): void {
    if (this.released) throw new Error('budget lease already released');
    if (!this.budget.take(bytes)) throw new BudgetFullError(this.budget.limit);
    this.taken += bytes;
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    this.budget.giveBack(this.taken);
  }
}

export class BudgetFullError extends Error {
  constructor(readonly limit: number) {
    super(
      `the poll cycle's in-flight byte budget (${limit} bytes, FLEET_POLL_MAX_INFLIGHT_BYTES) is full: answer dropped, read again next cycle`,
    );
  }
}
