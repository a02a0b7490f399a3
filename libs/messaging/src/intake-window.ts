/**
 * What a consumer may hold, besides RabbitMQ's prefetch (which counts messages
 * only): one `status.update.batch` message carries up to 1000 updates, so a
 * prefetch of 1000 could hold a million. Units are what `weigh` counts (updates).
 */
export interface IntakeBudget {
  /** Units held (received, not yet settled). Intake pauses above it and resumes at half. */
  maxUnits?: number;
  /** Bytes of message bodies held. Intake pauses above it and resumes at half. */
  maxBytes?: number;
  /**
   * Expected units of the largest message, before any was seen: sizes the first
   * prefetch (maxUnits / this), so a backlog of maximal messages cannot flood a
   * consumer that just started. Default 1.
   */
  unitsPerMessageHint?: number;
  /** Expected bytes of the largest message, before any was seen. Default 1024. */
  bytesPerMessageHint?: number;
  /**
   * The largest message the producers may send (e.g. a 1000-update batch of a
   * maximal body). When set, the prefetch never widens past what fits the budget
   * with messages this large, however small the recent ones were: the budget then
   * holds under any load, not only after a pause has taken effect (a burst of
   * maximal messages after a quiet spell of small ones would otherwise arrive a
   * whole window at once).
   */
  worstCase?: { units: number; bytes: number };
}

/** Deliveries after which the oldest peak observations are forgotten (two buckets of this size). */
const PEAK_WINDOW = 256;

/**
 * Book-keeping of one consumer's budget: what is held, whether intake must
 * pause or may resume, and which prefetch keeps `prefetch × largest recent
 * message` within the budget. Pure: the subscription acts on its answers.
 */
export class IntakeWindow {
  private units = 0;
  private bytes = 0;
  private count = 0;
  private peakUnits: [number, number];
  private peakBytes: [number, number];
  private seenInBucket = 0;
  readonly maxUnits: number;
  readonly maxBytes: number;
  private readonly worstCase: { units: number; bytes: number } | undefined;

  constructor(
    /** The configured prefetch: the window never opens wider. */
    readonly maxPrefetch: number,
    budget: IntakeBudget,
  ) {
    this.maxUnits = budget.maxUnits ?? Number.POSITIVE_INFINITY;
    this.maxBytes = budget.maxBytes ?? Number.POSITIVE_INFINITY;
    if (!(this.maxUnits >= 1) || !(this.maxBytes >= 1))
      throw new RangeError('budget.maxUnits and budget.maxBytes must be ≥ 1');
    const hintUnits = Math.max(1, budget.unitsPerMessageHint ?? 1);
    const hintBytes = Math.max(1, budget.bytesPerMessageHint ?? 1024);
    this.peakUnits = [hintUnits, hintUnits];
    this.peakBytes = [hintBytes, hintBytes];
    this.worstCase = budget.worstCase;
  }

  get held(): { units: number; bytes: number; messages: number } {
    return { units: this.units, bytes: this.bytes, messages: this.count };
  }

  add(units: number, bytes: number): void {
    this.units += units;
    this.bytes += bytes;
    this.count++;
    if (this.seenInBucket++ >= PEAK_WINDOW) {
      this.peakUnits = [this.peakUnits[1], 0];
      this.peakBytes = [this.peakBytes[1], 0];
      this.seenInBucket = 1;
    }
    if (units > this.peakUnits[1]) this.peakUnits[1] = units;
    if (bytes > this.peakBytes[1]) this.peakBytes[1] = bytes;
  }

  remove(units: number, bytes: number): void {
    this.units = Math.max(0, this.units - units);
    this.bytes = Math.max(0, this.bytes - bytes);
    this.count = Math.max(0, this.count - 1);
  }

  /** The channel closed: the broker took everything back. Peaks are kept. */
  reset(): void {
    this.units = 0;
    this.bytes = 0;
    this.count = 0;
  }

  /** Holding more than the budget: stop intake. */
  get overBudget(): boolean {
    return this.units > this.maxUnits || this.bytes > this.maxBytes;
  }

  /** Down to half the budget: intake may resume (hysteresis, so it does not flap per message). */
  get canResume(): boolean {
    return this.units <= this.maxUnits / 2 && this.bytes <= this.maxBytes / 2;
  }

  /** The prefetch at which a full window of the largest recent messages (or of the worst case, when given) fits the budget. */
  targetPrefetch(): number {
    const units = Math.max(this.peakUnits[0], this.peakUnits[1], this.worstCase?.units ?? 1, 1);
    const bytes = Math.max(this.peakBytes[0], this.peakBytes[1], this.worstCase?.bytes ?? 1, 1);
    const fit = Math.min(Math.floor(this.maxUnits / units), Math.floor(this.maxBytes / bytes));
    return Math.max(1, Math.min(this.maxPrefetch, fit));
  }
}
