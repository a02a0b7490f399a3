import { MAX_CHECK_METRICS, type CheckMetric } from '@fleetwatch/contracts';
import { storable } from '../runner/result-metadata';

// The figures a service collector reports (the result's `metrics`, checkMetricSchema): what
// every such probe collects into. It keeps the contract's promises at the source, so a
// result is never refused downstream for its metrics: names and label names as the schema
// allows, label values storable (no NUL or lone surrogate, at most 256 characters), finite
// values only, and at most MAX_CHECK_METRICS figures — beyond that they are dropped and
// counted (`truncated`), never silently.

const NAME = /^[a-z_][a-z0-9_]*$/;
const MAX_LABELS = 8;

export class MetricBag {
  private readonly items: CheckMetric[] = [];
  /** Figures left out because the bag was full. */
  dropped = 0;

  constructor(private readonly limit = MAX_CHECK_METRICS) {}

  get size(): number {
    return this.items.length;
  }

  /** Room for `n` more figures. */
  hasRoom(n = 1): boolean {
    return this.items.length + n <= this.limit;
  }

  /** Adds one figure; a value that is not a finite number is left out (unknown is not zero). */
  add(name: string, value: number | null | undefined, labels?: Record<string, string>): void {
    if (typeof value !== 'number' || !Number.isFinite(value)) return;
    if (!NAME.test(name) || name.length > 128) throw new Error(`metric name "${name}" is not a valid name`);
    if (!this.hasRoom()) {
      this.dropped++;
      return;
    }
    const m: CheckMetric = { name, value };
    if (labels && Object.keys(labels).length > 0) {
      const entries = Object.entries(labels);
      if (entries.length > MAX_LABELS) throw new Error(`metric ${name} has more than ${MAX_LABELS} labels`);
      const out: Record<string, string> = {};
      for (const [k, v] of entries) {
        if (!NAME.test(k) || k.length > 64) throw new Error(`label name "${k}" of ${name} is not a valid name`);
        out[k] = storable(String(v), 256);
      }
      m.labels = out;
    }
    this.items.push(m);
  }

  /** The figures, each with its labels (`{}` when none), as conditions' metric() reads them. */
  samples(): Array<{ name: string; labels: Record<string, string>; value: number }> {
    return this.items.map((m) => ({ name: m.name, labels: m.labels ?? {}, value: m.value }));
  }

  /** The figures as the result carries them. */
  toArray(): CheckMetric[] {
    return this.items.slice();
  }
}

/** Milliseconds since `since` (performance.now()), to 0.01 ms. */
export function elapsedMs(since: number): number {
  return Math.round((performance.now() - since) * 100) / 100;
}

/** A message that might hold a secret (it never should) does not leave with it. */
export function redactSecrets(text: string, ...secrets: Array<string | undefined>): string {
  let out = text;
  for (const s of secrets) if (s) out = out.split(s).join('***');
  return out;
}
