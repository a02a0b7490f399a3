export interface RefreshingSetOptions {
  /** A set older than this is reloaded in the background on its next use. */
  maxAgeMs: number;
  /** A value not in the set reloads it (awaited) only if the last load is older than this. */
  missRefreshMs: number;
  now?: () => number;
}

/**
 * A set of values loaded from the database and kept fresh lazily, so that a
 * lookup of an unknown value costs no query: at most one load per
 * `missRefreshMs`, however many unknown values arrive. Concurrent loads are
 * shared. Used for the credentials issued before checksums (legacy API-key
 * prefixes, ping-token hashes): their shape alone cannot tell a real one from
 * a random one.
 */
export class RefreshingSet {
  private values: ReadonlySet<string> | null = null;
  private lastAttemptAt = Number.NEGATIVE_INFINITY;
  private lastError: unknown = null;
  private loading: Promise<void> | null = null;
  private readonly now: () => number;

  constructor(
    private readonly load: () => Promise<Iterable<string>>,
    private readonly options: RefreshingSetOptions,
  ) {
    this.now = options.now ?? Date.now;
  }

  /** Throws the load's error when no set was ever loaded. */
  async has(value: string): Promise<boolean> {
    const now = this.now();
    const age = now - this.lastAttemptAt;
    if (!this.values) {
      // Never loaded: try, but no more often than on a miss, so an outage is not hammered.
      if (age >= this.options.missRefreshMs || this.loading) await this.refresh();
      if (!this.values) throw this.lastError;
    } else if (age >= this.options.maxAgeMs) {
      void this.refresh().catch(() => undefined);
    }
    const values = this.values as ReadonlySet<string>;
    if (values.has(value)) return true;
    if (now - this.lastAttemptAt < this.options.missRefreshMs && !this.loading) return false;
    await this.refresh().catch(() => undefined);
    return (this.values as ReadonlySet<string>).has(value);
  }

  /** Forgets the set: the next lookup loads it again. */
  clear(): void {
    this.values = null;
    this.lastAttemptAt = Number.NEGATIVE_INFINITY;
  }

  get size(): number {
    return this.values?.size ?? 0;
  }

  private refresh(): Promise<void> {
    if (this.loading) return this.loading;
    this.lastAttemptAt = this.now();
    this.loading = this.load()
      .then(
        (values) => {
          this.values = new Set(values);
          this.lastError = null;
        },
        (err: unknown) => {
          this.lastError = err;
          throw err;
        },
      )
      .finally(() => {
        this.loading = null;
      });
    return this.loading;
  }
}
