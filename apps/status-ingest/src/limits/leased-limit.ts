import type { RateDecision } from './rate-limiter';
import type { SharedLimit, SharedRateLimiter } from './shared-rate-limiter';

export interface LeaseOptions {
  /** How long tokens taken ahead stay usable; unused ones are then dropped (never given back). */
  leaseMs: number;
  /** Most tokens taken ahead in one call, as a fraction of the burst. */
  maxAheadFraction: number;
}

export const DEFAULT_LEASE: LeaseOptions = { leaseMs: 100, maxAheadFraction: 0.1 };

interface Waiter {
  cost: number;
  resolve: (decision: RateDecision) => void;
}

interface KeyLease {
  /** Tokens taken from the shared bucket and not yet spent. */
  tokens: number;
  expiresAt: number;
  /** Requests waiting for tokens, in arrival order. */
  queue: Waiter[];
  calling: boolean;
  /** Tokens spent in the current and the previous period of `leaseMs` (the demand a call takes ahead for). */
  periodStart: number;
  spent: number;
  spentBefore: number;
}

const ALLOWED: RateDecision = Object.freeze({ allowed: true, retryAfterSeconds: 0 });

/**
 * One shared limit (token buckets in Redis, one per key) charged without a Redis round trip per request under
 * load. Each call to Redis takes, besides what the waiting requests cost, up to what this key spent on this
 * replica in the last `leaseMs` (at most `maxAheadFraction` of the burst) — tokens this replica then spends
 * within `leaseMs` without asking again; whatever it has not spent by then is dropped. So the limit stays one
 * budget over every replica, never looser: tokens are spent only after the shared bucket gave them, and a
 * lease's leftovers are lost to the budget, not given twice. What it costs: another replica of the same key may
 * be refused while this one holds a lease (at most a tenth of the burst, for at most `leaseMs`), and a key
 * limited at its rate loses a lease's leftovers each time it stops. A key that spent nothing here in the last
 * two periods takes nothing ahead (its request asks Redis for its own cost, as before); once a lease is below
 * half of what it takes ahead, the next one is asked for before requests have to wait for it.
 *
 * Per key, one call to Redis at a time; requests queue behind it in order (FIFO: a later request never takes
 * tokens an earlier one waits for). Falls back to the replica's own buckets while Redis is away (SharedRateLimiter).
 */
export class LeasedLimit {
  private readonly leases = new Map<string, KeyLease>();
  private readonly maxAhead: number;

  constructor(
    readonly limit: SharedLimit,
    private readonly shared: SharedRateLimiter,
    private readonly options: LeaseOptions = DEFAULT_LEASE,
  ) {
    this.maxAhead = Math.floor(limit.burst * options.maxAheadFraction);
  }

  take(key: string, cost: number, now: number = Date.now()): Promise<RateDecision> {
    let lease = this.leases.get(key);
    if (!lease) {
      lease = { tokens: 0, expiresAt: 0, queue: [], calling: false, periodStart: now, spent: 0, spentBefore: 0 };
      this.leases.set(key, lease);
    }
    if (lease.queue.length === 0 && now < lease.expiresAt && lease.tokens >= cost) {
      this.spend(lease, cost, now);
      // Below half of what it takes ahead: the next lease is asked for now, before the requests must wait for it.
      if (!lease.calling && lease.tokens < this.ahead(lease, now) / 2)
        this.call(key, lease, 1, this.ahead(lease, now), now);
      return Promise.resolve(ALLOWED);
    }
    return new Promise<RateDecision>((resolve) => {
      (lease as KeyLease).queue.push({ cost, resolve });
      this.pump(key, lease as KeyLease);
    });
  }

  /** Tokens held for `key` and still usable (tests, metrics). */
  held(key: string, now: number = Date.now()): number {
    const lease = this.leases.get(key);
    return lease && now < lease.expiresAt ? lease.tokens : 0;
  }

  /** Forgets idle keys whose lease ran out. */
  sweep(now: number = Date.now()): void {
    for (const [key, lease] of this.leases)
      if (!lease.calling && lease.queue.length === 0 && now >= lease.expiresAt) this.leases.delete(key);
  }

  private spend(lease: KeyLease, cost: number, now: number): void {
    lease.tokens -= cost;
    if (now - lease.periodStart >= this.options.leaseMs) {
      // The period before is the one just ended only when it was not followed by an idle one.
      lease.spentBefore = now - lease.periodStart < 2 * this.options.leaseMs ? lease.spent : 0;
      lease.spent = 0;
      lease.periodStart = now;
    }
    lease.spent += cost;
  }

  private pump(key: string, lease: KeyLease): void {
    if (lease.calling) return;
    const now = Date.now();
    if (now >= lease.expiresAt) lease.tokens = 0;
    while (lease.queue.length > 0 && lease.tokens >= lease.queue[0].cost) {
      const w = lease.queue.shift() as Waiter;
      this.spend(lease, w.cost, now);
      w.resolve(ALLOWED);
    }
    if (lease.queue.length === 0) return;
    const min = lease.queue[0].cost - lease.tokens;
    let waiting = 0;
    for (const w of lease.queue) waiting += w.cost;
    this.call(key, lease, min, Math.max(min, waiting - lease.tokens + this.ahead(lease, now)), now);
  }

  /** Tokens to take ahead: what the key spent here in the last period (or the one before), within maxAhead. */
  private ahead(lease: KeyLease, now: number): number {
    if (now - lease.periodStart >= 2 * this.options.leaseMs) return 0;
    return Math.min(this.maxAhead, Math.max(lease.spent, lease.spentBefore));
  }

  private call(key: string, lease: KeyLease, min: number, max: number, now: number): void {
    lease.calling = true;
    // A call made for the first in line refuses it when the bucket cannot serve it; one made ahead refuses no one.
    const head: Waiter | undefined = lease.queue[0];
    this.shared.takeUpTo(this.limit, key, min, max, now).then(
      (d) => {
        lease.calling = false;
        now = Date.now();
        if (d.allowed) {
          lease.tokens = (now < lease.expiresAt ? lease.tokens : 0) + d.granted;
          lease.expiresAt = now + this.options.leaseMs;
        } else if (head !== undefined && lease.queue[0] === head) {
          // The first in line cannot be served: refused (tokens held stay for those behind it).
          lease.queue.shift();
          head.resolve({ allowed: false, retryAfterSeconds: d.retryAfterSeconds });
        }
        this.pump(key, lease);
      },
      () => {
        // takeUpTo falls back locally rather than fail; should it throw anyway, nothing waits forever.
        lease.calling = false;
        for (const w of lease.queue.splice(0)) w.resolve({ allowed: false, retryAfterSeconds: 1 });
      },
    );
  }
}
