// The benchmark's workload, shaped like the raw reference chain's (../shared/perf/raw-chain/lib.js):
// update number `seq` goes to target `seq % targets` (10,000 by default), and is DOWN when
// `seq % 17 === 0`, else UP. Since 10,000 is not a multiple of 17, every target sees DOWN in about
// one of its 17 updates, so about 2 in 17 updates change their target's status (a status event and
// a live fan-out); the others only refresh it.
import { Redis } from 'ioredis';

const UP = 'running';
const DOWN = 'exited';
/** What the aggregator derives from the lifecycle states sent (libs/domain lifecycle.ts). */
const CLASS = { [UP]: 'UP', [DOWN]: 'DOWN' };

/** `downEvery`: every n-th update reports DOWN (17: the raw chain's); 0: never, every update repeats its target's status. */
export function updateOf(seq, targets, downEvery = 17) {
  const t = seq % targets;
  return {
    instanceId: `bench-${t}`,
    kind: 'container',
    status: downEvery > 0 && seq % downEvery === 0 ? DOWN : UP,
    labels: { app: 'bench', shard: String(t % 16) },
    message: 'benchmark',
  };
}

export const targetIdOf = (update) => `instance:${update.instanceId}`;

/**
 * POST → live state, timed on the updates that change their target's status: from sending the
 * POST to the aggregator's `live:status` fan-out of that target with the new status (published
 * after the live-state write). Every `verifyEvery`-th match is also read back from the target's
 * live-state hash, to check the new status is visible there.
 */
export class LiveStateTracker {
  constructor({ redisUrl, prefix, verifyEvery = 10 }) {
    this.prefix = prefix;
    this.sub = new Redis(redisUrl, { lazyConnect: true });
    this.reader = new Redis(redisUrl, { lazyConnect: true });
    this.verifyEvery = verifyEvery;
    /** targetId → status class of the last update sent for it. */
    this.last = new Map();
    /** targetId → { t, to, record } of a status change sent and not yet seen. */
    this.pending = new Map();
    this.reset();
    this.sub.on('message', (_channel, raw) => this.onFanOut(raw));
  }

  reset() {
    this.latencies = [];
    this.changesSent = 0;
    this.matched = 0;
    /** A newer change of the same target was sent before the older one was seen. */
    this.overtaken = 0;
    this.unexpected = 0;
    this.verified = 0;
    this.notVisible = 0;
  }

  async start() {
    await Promise.all([this.sub.connect(), this.reader.connect()]);
    await this.sub.subscribe(`${this.prefix}live:status`);
  }

  /** Call just before sending each update; `record` says whether its latency counts in the figures. */
  sent(update, t, record) {
    const id = targetIdOf(update);
    const to = CLASS[update.status];
    const before = this.last.get(id);
    this.last.set(id, to);
    if (before === undefined || before === to) return;
    if (this.pending.has(id)) this.overtaken++;
    this.pending.set(id, { t, to, record });
    if (record) this.changesSent++;
  }

  onFanOut(raw) {
    const now = performance.now();
    let m;
    try {
      m = JSON.parse(raw);
    } catch {
      return;
    }
    const p = this.pending.get(m.targetId);
    if (!p || p.to !== m.to) {
      this.unexpected++;
      return;
    }
    this.pending.delete(m.targetId);
    if (!p.record) return;
    this.matched++;
    this.latencies.push(now - p.t);
    if (this.matched % this.verifyEvery === 0) {
      this.reader.hget(`${this.prefix}t:${m.targetId}`, 'status').then(
        (status) => {
          // A newer update of the target may have landed meanwhile: only judge when none was sent.
          if (status === m.to) this.verified++;
          else if (this.last.get(m.targetId) === m.to && !this.pending.has(m.targetId)) this.notVisible++;
        },
        () => undefined,
      );
    }
  }

  /** Figures for the recorded changes; waits up to `graceMs` for the last fan-outs. */
  async figures(graceMs = 5000) {
    const deadline = performance.now() + graceMs;
    const outstanding = () => [...this.pending.values()].filter((p) => p.record).length;
    while (outstanding() > 0 && performance.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const sorted = Float64Array.from(this.latencies).sort();
    const q = (p) =>
      sorted.length ? round(sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)]) : null;
    const missing = outstanding();
    for (const [id, p] of this.pending) if (p.record) this.pending.set(id, { ...p, record: false });
    return {
      n: sorted.length,
      p50: q(0.5),
      p90: q(0.9),
      p99: q(0.99),
      max: q(1),
      changesSent: this.changesSent,
      notSeen: missing,
      overtaken: this.overtaken,
      verifiedInRedis: this.verified,
      notVisibleInRedis: this.notVisible,
    };
  }

  close() {
    this.sub.disconnect();
    this.reader.disconnect();
  }
}

const round = (x) => Math.round(x * 100) / 100;

export function percentiles(values) {
  const s = Float64Array.from(values).sort();
  const q = (p) => (s.length ? round(s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)]) : null);
  return { n: s.length, p50: q(0.5), p90: q(0.9), p99: q(0.99), max: q(1) };
}
