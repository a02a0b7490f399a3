import { Counter, Gauge, Histogram, register, type Metric } from 'prom-client';
import { CHECK_TYPES, type CheckType } from '@fleetwatch/contracts';
import type { SkipReason } from './scheduler/check-scheduler';
import type { DropReason } from './spool/spool';
import type { RunOutcome } from './runner/check-runner';

// The collector's check series on /metrics. Labels are bounded: check type, outcome,
// skip/drop reason — never a check id, name or target (10,000 checks would be 10,000 series).

function lookup<M extends Metric<string>>(name: string, create: () => M): M {
  return (register.getSingleMetric(name) as M | undefined) ?? create();
}

export interface SpoolGaugeSource {
  readonly stats: { bytes: number; records: number };
}

export class ChecksMetrics {
  readonly assigned = lookup(
    'fleetwatch_collector_checks_assigned',
    () =>
      new Gauge({
        name: 'fleetwatch_collector_checks_assigned',
        help: 'Checks in this collector’s assignment (paused ones are not assigned), by type.',
        labelNames: ['type'],
      }),
  );
  readonly runs = lookup(
    'fleetwatch_collector_check_runs_total',
    () =>
      new Counter({
        name: 'fleetwatch_collector_check_runs_total',
        help: 'Check runs finished, by type and outcome (up, down, error = the probe itself failed).',
        labelNames: ['type', 'outcome'],
      }),
  );
  readonly lag = lookup(
    'fleetwatch_collector_schedule_lag_seconds',
    () =>
      new Histogram({
        name: 'fleetwatch_collector_schedule_lag_seconds',
        help: 'Actual start minus planned start of check runs.',
        buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      }),
  );
  readonly skipped = lookup(
    'fleetwatch_collector_check_slots_skipped_total',
    () =>
      new Counter({
        name: 'fleetwatch_collector_check_slots_skipped_total',
        help: 'Planned runs not made: overlap = the check’s previous run was still going or waiting; behind = the slot passed while the process could not run it.',
        labelNames: ['reason'],
      }),
  );
  readonly spoolDropped = lookup(
    'fleetwatch_collector_spool_dropped_total',
    () =>
      new Counter({
        name: 'fleetwatch_collector_spool_dropped_total',
        help: 'Results dropped from the offline spool before the broker confirmed them (full: oldest first), by reason.',
        labelNames: ['reason'],
      }),
  );
  readonly published = lookup(
    'fleetwatch_collector_results_published_total',
    () =>
      new Counter({
        name: 'fleetwatch_collector_results_published_total',
        help: 'Check results confirmed by the broker (from the spool).',
      }),
  );
  private spoolSource: SpoolGaugeSource | undefined;
  readonly spoolBytes = lookup(
    'fleetwatch_collector_spool_bytes',
    () =>
      new Gauge({
        name: 'fleetwatch_collector_spool_bytes',
        help: 'Bytes of the offline spool on disk.',
        collect() {
          ChecksMetrics.current?.collectSpool(this, 'bytes');
        },
      }),
  );
  readonly spoolRecords = lookup(
    'fleetwatch_collector_spool_records',
    () =>
      new Gauge({
        name: 'fleetwatch_collector_spool_records',
        help: 'Results in the offline spool not yet confirmed by the broker.',
        collect() {
          ChecksMetrics.current?.collectSpool(this, 'records');
        },
      }),
  );
  readonly assignmentInfo = lookup(
    'fleetwatch_collector_assignment_version',
    () =>
      new Gauge({
        name: 'fleetwatch_collector_assignment_version',
        help: 'Config version of the assignment running, by where it came from (bus, disk).',
        labelNames: ['origin'],
      }),
  );

  /** The instance whose spool the gauges read (a gauge's collect() has no other way to it). */
  private static current: ChecksMetrics | undefined;

  private readonly runChildren = new Map<string, Counter.Internal>();
  private readonly overlap = this.skipped.labels('overlap');
  private readonly behind = this.skipped.labels('behind');

  constructor() {
    ChecksMetrics.current = this;
  }

  watchSpool(source: SpoolGaugeSource | undefined): void {
    this.spoolSource = source;
  }

  countRun(type: CheckType, outcome: RunOutcome): void {
    const key = `${type}|${outcome}`;
    let child = this.runChildren.get(key);
    if (!child) {
      child = this.runs.labels(type, outcome);
      this.runChildren.set(key, child);
    }
    child.inc();
  }

  observeLag(ms: number): void {
    this.lag.observe(Math.max(0, ms) / 1000);
  }

  countSkipped(reason: SkipReason, slots: number): void {
    (reason === 'overlap' ? this.overlap : this.behind).inc(slots);
  }

  countDropped(reason: DropReason, records: number): void {
    this.spoolDropped.labels(reason).inc(records);
  }

  setAssigned(checks: readonly { type: CheckType }[]): void {
    const counts = new Map<CheckType, number>(CHECK_TYPES.map((t) => [t, 0]));
    for (const c of checks) counts.set(c.type, (counts.get(c.type) ?? 0) + 1);
    for (const [type, n] of counts) this.assigned.labels(type).set(n);
  }

  setAssignment(version: number, origin: 'bus' | 'disk'): void {
    this.assignmentInfo.reset();
    this.assignmentInfo.labels(origin).set(version);
  }

  private collectSpool(gauge: Gauge, field: 'bytes' | 'records'): void {
    gauge.set(this.spoolSource ? this.spoolSource.stats[field] : 0);
  }
}
