/**
 * Group commit for the ingest hot path. Requests are sent at once while fewer than
 * `maxInFlight` publishes wait for their broker confirm; beyond that, concurrent
 * requests queue and leave together as one bus message (up to `maxItems` updates)
 * when a slot frees. An idle service adds no latency; a busy one sends far fewer,
 * larger messages — each update keeps its own id, so idempotency downstream is
 * unchanged. Every request settles with the outcome of the message that carried
 * it: resolved after the confirm, rejected (→ 503) if it was not confirmed.
 *
 * The queue is bounded: a request that would take it past `maxQueuedItems` or
 * `maxQueuedBytes` is refused at once, and one that waited `maxWaitMs` for a slot
 * is refused then (CoalescerOverloadedError, → 503 + Retry-After). So a slow
 * broker costs clients a retry, never the service its memory.
 */
export interface CoalescerOptions {
  maxInFlight: number;
  maxItems: number;
  /**
   * Bytes (as the caller weighs them) one grouped message may carry: grouping never
   * makes a message larger than one request could (a lone request may exceed it).
   * Keeps messages within the broker's frame limits and the consumer's budget.
   */
  maxGroupBytes?: number;
  /** Items waiting for a slot, at most (a lone request larger than this still queues when nothing else waits). */
  maxQueuedItems?: number;
  /** Bytes (as the caller weighs them) waiting for a slot, at most. */
  maxQueuedBytes?: number;
  /** Longest wait for a slot before the request is refused. */
  maxWaitMs?: number;
}

/** The queue is full or the request waited too long: nothing of it was sent. */
export class CoalescerOverloadedError extends Error {
  constructor(
    message: string,
    readonly reason: 'full' | 'wait',
  ) {
    super(message);
    this.name = 'CoalescerOverloadedError';
  }
}

interface Waiting<T> {
  items: T[];
  bytes: number;
  deadline: number;
  resolve: () => void;
  reject: (error: unknown) => void;
}

export class UpdateCoalescer<T> {
  private waiting: Waiting<T>[] = [];
  private inFlight = 0;
  private queuedItems = 0;
  private queuedBytes = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private timerDeadline = 0;
  private readonly maxQueuedItems: number;
  private readonly maxQueuedBytes: number;
  private readonly maxWaitMs: number;

  constructor(
    /** Sends one message; `bytes` is what its requests weighed (as the caller weighed them on submit). */
    private readonly send: (items: T[], bytes: number) => Promise<void>,
    private readonly options: CoalescerOptions,
  ) {
    if (options.maxInFlight < 1 || options.maxItems < 1) throw new RangeError('maxInFlight and maxItems must be ≥ 1');
    this.maxQueuedItems = options.maxQueuedItems ?? Number.POSITIVE_INFINITY;
    this.maxQueuedBytes = options.maxQueuedBytes ?? Number.POSITIVE_INFINITY;
    this.maxWaitMs = options.maxWaitMs ?? Number.POSITIVE_INFINITY;
  }

  /**
   * Resolves once the message carrying `items` was confirmed. Order across calls is
   * kept. Rejects with CoalescerOverloadedError when the queue is full or the wait too long.
   */
  submit(items: T[], bytes = 0, now: number = Date.now()): Promise<void> {
    // Something already waits, so this would wait too: refuse it if the queue cannot take it.
    if (
      this.waiting.length > 0 &&
      (this.queuedItems + items.length > this.maxQueuedItems || this.queuedBytes + bytes > this.maxQueuedBytes)
    ) {
      return Promise.reject(
        new CoalescerOverloadedError(
          `${this.queuedItems} updates (${this.queuedBytes} bytes) already wait for the broker; retry later`,
          'full',
        ),
      );
    }
    return new Promise<void>((resolve, reject) => {
      this.waiting.push({ items, bytes, deadline: now + this.maxWaitMs, resolve, reject });
      this.queuedItems += items.length;
      this.queuedBytes += bytes;
      this.pump();
      this.armTimer();
    });
  }

  /** Requests waiting for a slot. */
  get queued(): number {
    return this.waiting.length;
  }

  /** Updates and bytes waiting for a slot. */
  get backlog(): { items: number; bytes: number } {
    return { items: this.queuedItems, bytes: this.queuedBytes };
  }

  private shift(): Waiting<T> {
    const w = this.waiting.shift() as Waiting<T>;
    this.queuedItems -= w.items.length;
    this.queuedBytes -= w.bytes;
    return w;
  }

  private pump(): void {
    while (this.inFlight < this.options.maxInFlight && this.waiting.length > 0) {
      const group: Waiting<T>[] = [this.shift()];
      let count = group[0].items.length;
      let bytes = group[0].bytes;
      const maxGroupBytes = this.options.maxGroupBytes ?? Number.POSITIVE_INFINITY;
      while (
        this.waiting.length > 0 &&
        count + this.waiting[0].items.length <= this.options.maxItems &&
        bytes + this.waiting[0].bytes <= maxGroupBytes
      ) {
        const next = this.shift();
        count += next.items.length;
        bytes += next.bytes;
        group.push(next);
      }
      this.inFlight++;
      const items = group.length === 1 ? group[0].items : group.flatMap((g) => g.items);
      let sent: Promise<void>;
      try {
        sent = this.send(items, bytes);
      } catch (e) {
        sent = Promise.reject(e);
      }
      sent
        .then(
          () => {
            for (const g of group) g.resolve();
          },
          (error: unknown) => {
            for (const g of group) g.reject(error);
          },
        )
        .finally(() => {
          this.inFlight--;
          this.pump();
          this.armTimer();
        });
    }
  }

  /** One timer, for the oldest waiting request (FIFO: it has the earliest deadline). */
  private armTimer(): void {
    const head = this.waiting[0];
    if (!head || !Number.isFinite(head.deadline)) {
      if (this.timer) clearTimeout(this.timer);
      this.timer = undefined;
      return;
    }
    if (this.timer && this.timerDeadline === head.deadline) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerDeadline = head.deadline;
    this.timer = setTimeout(() => this.expire(), Math.max(0, head.deadline - Date.now()));
  }

  private expire(): void {
    this.timer = undefined;
    const now = Date.now();
    while (this.waiting.length > 0 && this.waiting[0].deadline <= now) {
      const w = this.shift();
      w.reject(
        new CoalescerOverloadedError(
          `waited ${this.maxWaitMs} ms for the broker to confirm earlier messages; nothing was sent, retry later`,
          'wait',
        ),
      );
    }
    this.armTimer();
  }
}

/**
 * The JSON size of a value, without serialising it, never below what JSON.stringify writes (UTF-8): what a queued
 * request costs in memory, for the coalescer's byte bound, and what a bus message of a group weighs against
 * BUS_BATCH_MAX_BYTES, which consumers size their prefetch by. Iterative. (Over by a byte per array element, and
 * by escapes written shorter than six bytes.)
 */
export function approximateJsonBytes(value: unknown): number {
  let bytes = 0;
  const stack: unknown[] = [value];
  while (stack.length > 0) {
    const v = stack.pop();
    if (typeof v === 'string') bytes += jsonStringBytes(v);
    // As written: 1 to 24 characters ("-1.2345678901234567e-300"); a flat 8 let number-heavy metadata make a message
    // three times BUS_BATCH_MAX_BYTES.
    else if (typeof v === 'number') bytes += String(v).length;
    else if (typeof v === 'boolean') bytes += 5;
    else if (v === null || v === undefined) bytes += 4;
    else if (Array.isArray(v)) {
      bytes += 2 + v.length;
      for (const x of v) stack.push(x);
    } else if (typeof v === 'object') {
      bytes += 2;
      for (const k in v) {
        bytes += jsonStringBytes(k) + 2;
        stack.push((v as Record<string, unknown>)[k]);
      }
    }
  }
  return bytes;
}

// Control characters are what this looks for: JSON escapes them.
// eslint-disable-next-line no-control-regex
const NEEDS_ESCAPE = /[\u0000-\u001f"\\]/;
// eslint-disable-next-line no-control-regex
const NEEDS_ESCAPE_ALL = /[\u0000-\u001f"\\]/g;

/**
 * Bytes of a string as JSON writes it: UTF-8 (CJK text takes three bytes a
 * character), quotes, and escapes — a control character becomes `\u00XX`, six
 * bytes — so a body full of them cannot pass for a small message.
 */
function jsonStringBytes(v: string): number {
  const escaped = NEEDS_ESCAPE.test(v) ? (v.match(NEEDS_ESCAPE_ALL) as RegExpMatchArray).length * 5 : 0;
  return Buffer.byteLength(v, 'utf8') + 2 + escaped;
}
