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
 *
 * Status reports have a share of their own (REPORT_RESERVE_FRACTION: an eighth, 8 MiB of the default 64 MiB): snapshots
 * and flow ('bulk' answers) together hold at most the rest (bulkLimit), while a report may take any byte of the budget.
 * A report is what a member's health, STALE flag and the failover view are read from, and the poll fails without it: a
 * few members with big snapshots filling the whole budget made the small reports of other members fail, and those
 * members read as unreachable. Reports are a few KB each: the default 8 MiB reserve holds those of every member in
 * flight (FLEET_POLL_CONCURRENCY, 50 by default) many times over. The total held still never passes `limit`.
 *
 * One report holds at most `reportLimit` (a quarter of that share, at most MAX_REPORT_BYTES: 1 MiB by default): a
 * member streaming an 8 MiB report (the per-answer cap), slowly or not, held the whole share until its member timeout,
 * and every other member's report that came meanwhile failed on a full budget — those members read as unreachable. A
 * report past its limit fails at that chunk (ReportTooLargeError) and its bytes are given back at once.
 */
export class ByteBudget {
  private held = 0;
  private bulkHeld = 0;
  private peak = 0;
  /** The bytes snapshots and flow may hold together: the budget less the reports' reserved share. */
  readonly bulkLimit: number;
  /** The bytes one status report may hold: a quarter of the reports' share, at most MAX_REPORT_BYTES. */
  readonly reportLimit: number;

  constructor(
    /** The budget in bytes. */
    readonly limit: number,
  ) {
    this.bulkLimit = limit - Math.floor(limit * REPORT_RESERVE_FRACTION);
    this.reportLimit = Math.min(MAX_REPORT_BYTES, Math.floor((limit - this.bulkLimit) / REPORTS_PER_SHARE));
  }

  /** The bytes of answers held now. */
  get heldBytes(): number {
    return this.held;
  }

  /** The most bytes of answers held at once so far. */
  get peakHeldBytes(): number {
    return this.peak;
  }

  /** The most bytes one answer of `part` could ever hold: a larger one can never fit. */
  limitOf(part: BudgetPart): number {
    return part === 'report' ? this.reportLimit : this.bulkLimit;
  }

  /** One answer's share: what it takes is given back by its release(). A report may use the reserved share. */
  open(part: BudgetPart = 'bulk'): BudgetLease {
    return new BudgetLease(this, part);
  }

  /** @internal Takes `bytes` if they fit; false (nothing taken) if they do not. */
  take(bytes: number, part: BudgetPart): boolean {
    if (this.held + bytes > this.limit) return false;
    if (part === 'bulk' && this.bulkHeld + bytes > this.bulkLimit) return false;
    this.held += bytes;
    if (part === 'bulk') this.bulkHeld += bytes;
    if (this.held > this.peak) this.peak = this.held;
    return true;
  }

  /** @internal */
  giveBack(bytes: number, part: BudgetPart): void {
    this.held -= bytes;
    if (part === 'bulk') this.bulkHeld -= bytes;
  }
}

/** The share of the budget only status reports may use (see ByteBudget). */
export const REPORT_RESERVE_FRACTION = 1 / 8;
/** The most bytes one status report may hold, whatever the budget: reports are a few KB (2 KB with 40 components). */
export const MAX_REPORT_BYTES = 1024 * 1024;
/** Reports at their limit that the reports' share holds at once: one alone can never fill it. */
const REPORTS_PER_SHARE = 4;

/** A status report ('report': may use the reserved share) or a snapshot or flow answer ('bulk'). */
export type BudgetPart = 'report' | 'bulk';

/** One answer's bytes in the budget: each chunk is taken with take(), and all of them given back once, by release(). */
export class BudgetLease {
  private taken = 0;
  private released = false;

  constructor(
    private readonly budget: ByteBudget,
    readonly part: BudgetPart = 'bulk',
  ) {}

  /** The bytes this answer holds. */
  get bytes(): number {
    return this.taken;
  }

  /**
   * Takes a chunk's `bytes`; throws BudgetFullError (nothing taken) when the budget has no room for them, and
   * ReportTooLargeError when a report would pass its own limit.
   */
  take(bytes: number): void {
    if (this.released) throw new Error('budget lease already released');
    if (this.part === 'report' && this.taken + bytes > this.budget.reportLimit)
      throw new ReportTooLargeError(this.budget.reportLimit);
    if (!this.budget.take(bytes, this.part))
      throw new BudgetFullError(this.budget.limit, this.part, this.budget.bulkLimit);
    this.taken += bytes;
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    this.budget.giveBack(this.taken, this.part);
  }
}

export class BudgetFullError extends Error {
  constructor(
    readonly limit: number,
    readonly part: BudgetPart = 'report',
    bulkLimit = limit,
  ) {
    super(
      `the poll cycle's in-flight byte budget (${limit} bytes, FLEET_POLL_MAX_INFLIGHT_BYTES${part === 'bulk' ? `; ${bulkLimit} of them for snapshots and flow, the rest kept for status reports` : ''}) is full: answer dropped, read again next cycle`,
    );
  }
}

export class ReportTooLargeError extends Error {
  constructor(readonly limit: number) {
    super(
      `the status report exceeded ${limit} bytes (one report's limit: a quarter of the share of FLEET_POLL_MAX_INFLIGHT_BYTES kept for reports, at most ${MAX_REPORT_BYTES}): answer dropped`,
    );
  }
}
