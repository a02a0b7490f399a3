/**
 * Group commit for the ingest hot path. Requests are sent at once while fewer than
 * `maxInFlight` publishes wait for their broker confirm; beyond that, concurrent
 * requests queue and leave together as one bus message (up to `maxItems` updates)
 * when a slot frees. An idle service adds no latency; a busy one sends far fewer,
 * larger messages — each update keeps its own id, so idempotency downstream is
 * unchanged. Every request settles with the outcome of the message that carried
 * it: resolved after the confirm, rejected (→ 503) if it was not confirmed.
 */
export interface CoalescerOptions {
  maxInFlight: number;
  maxItems: number;
}

interface Waiting<T> {
  items: T[];
  resolve: () => void;
  reject: (error: unknown) => void;
}

export class UpdateCoalescer<T> {
  private readonly waiting: Waiting<T>[] = [];
  private inFlight = 0;

  constructor(
    private readonly send: (items: T[]) => Promise<void>,
    private readonly options: CoalescerOptions,
  ) {
    if (options.maxInFlight < 1 || options.maxItems < 1) throw new RangeError('maxInFlight and maxItems must be ≥ 1');
  }

  /** Resolves once the message carrying `items` was confirmed. Order across calls is kept. */
  submit(items: T[]): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.waiting.push({ items, resolve, reject });
      this.pump();
    });
  }

  get queued(): number {
    return this.waiting.length;
  }

  private pump(): void {
    while (this.inFlight < this.options.maxInFlight && this.waiting.length > 0) {
      const group: Waiting<T>[] = [this.waiting.shift() as Waiting<T>];
      let count = group[0].items.length;
      while (this.waiting.length > 0 && count + this.waiting[0].items.length <= this.options.maxItems) {
        const next = this.waiting.shift() as Waiting<T>;
        count += next.items.length;
        group.push(next);
      }
      this.inFlight++;
      const items = group.length === 1 ? group[0].items : group.flatMap((g) => g.items);
      let sent: Promise<void>;
      try {
        sent = this.send(items);
      } catch (e) {
        sent = Promise.reject(e);
      }
      sent.then(
        () => {
          for (const g of group) g.resolve();
        },
        (error: unknown) => {
          for (const g of group) g.reject(error);
        },
      ).finally(() => {
        this.inFlight--;
        this.pump();
      });
    }
  }
}
