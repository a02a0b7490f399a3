import { Counter, Gauge, Histogram, register, type Metric } from 'prom-client';

function lookup<M extends Metric<string>>(name: string, create: () => M): M {
  return (register.getSingleMetric(name) as M | undefined) ?? create();
}

/** The aggregator's own Prometheus metrics (labels bounded: message type, outcome — never ids). */
export class AggregatorMetrics {
  readonly observations = lookup(
    'fleetwatch_aggregator_observations_total',
    () =>
      new Counter({
        name: 'fleetwatch_aggregator_observations_total',
        help: 'Observations folded into history and live state, by message type.',
        labelNames: ['type'],
      }),
  );
  readonly setAside = lookup(
    'fleetwatch_aggregator_set_aside_total',
    () =>
      new Counter({
        name: 'fleetwatch_aggregator_set_aside_total',
        help: 'Observations that could not be stored alone and went to the dead-letter queue while the rest of their batch was stored, by message type.',
        labelNames: ['type'],
      }),
  );
  readonly projectionsSkipped = lookup(
    'fleetwatch_aggregator_live_projection_skipped_total',
    () =>
      new Counter({
        name: 'fleetwatch_aggregator_live_projection_skipped_total',
        help: "Target writes to live state (Redis) skipped because Redis refused that target's write for a reason other than an outage (the log names the target); Postgres keeps its state.",
      }),
  );
  readonly duplicates = lookup(
    'fleetwatch_aggregator_duplicates_total',
    () =>
      new Counter({
        name: 'fleetwatch_aggregator_duplicates_total',
        help: 'Redelivered observations skipped (already stored).',
      }),
  );
  readonly transitions = lookup(
    'fleetwatch_aggregator_status_events_total',
    () =>
      new Counter({
        name: 'fleetwatch_aggregator_status_events_total',
        help: 'Status transitions stored as status events, by source.',
        labelNames: ['source'],
      }),
  );
  readonly eventsPublished = lookup(
    'fleetwatch_aggregator_status_changed_published_total',
    () =>
      new Counter({
        name: 'fleetwatch_aggregator_status_changed_published_total',
        help: 'status.changed messages confirmed by the broker.',
      }),
  );
  readonly batchSeconds = lookup(
    'fleetwatch_aggregator_batch_seconds',
    () =>
      new Histogram({
        name: 'fleetwatch_aggregator_batch_seconds',
        help: 'Time to commit and project one batch of observations.',
        buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      }),
  );
  readonly rollupBuckets = lookup(
    'fleetwatch_aggregator_rollup_buckets_total',
    () =>
      new Counter({
        name: 'fleetwatch_aggregator_rollup_buckets_total',
        help: '1-minute rollup buckets recomputed from raw rows.',
      }),
  );
  readonly rollupMinutesSetAside = lookup(
    'fleetwatch_aggregator_rollup_minutes_set_aside_total',
    () =>
      new Counter({
        name: 'fleetwatch_aggregator_rollup_minutes_set_aside_total',
        help: '1-minute rollups set aside (retried later, their raw rows kept): one minute alone exceeded the statement timeout.',
        labelNames: ['kind'],
      }),
  );
  readonly retentionDeleted = lookup(
    'fleetwatch_aggregator_retention_deleted_rows_total',
    () =>
      new Counter({
        name: 'fleetwatch_aggregator_retention_deleted_rows_total',
        help: 'History rows deleted by retention, by table.',
        labelNames: ['table'],
      }),
  );
  readonly deadlineCacheMisses = lookup(
    'fleetwatch_aggregator_deadline_cache_misses_total',
    () =>
      new Counter({
        name: 'fleetwatch_aggregator_deadline_cache_misses_total',
        help: "Due deadlines found in Postgres that Redis's deadline set had lost (swept all the same).",
      }),
  );
  readonly deadlineCacheRefills = lookup(
    'fleetwatch_aggregator_deadline_cache_refills_total',
    () =>
      new Counter({
        name: 'fleetwatch_aggregator_deadline_cache_refills_total',
        help: "Refills of Redis's deadline set from Postgres (it held fewer deadlines).",
      }),
  );
  readonly rebuilds = lookup(
    'fleetwatch_aggregator_live_state_rebuilds_total',
    () =>
      new Counter({
        name: 'fleetwatch_aggregator_live_state_rebuilds_total',
        help: 'Rebuilds of live state from Postgres (empty or incomplete Redis).',
      }),
  );

  private static instance: AggregatorMetrics | undefined;

  readonly shardChanges = lookup(
    'fleetwatch_aggregator_shard_changes_total',
    () =>
      new Counter({
        name: 'fleetwatch_aggregator_shard_changes_total',
        help: 'Observation shards taken, released (handed over in order) or lost (lock connection gone) by this replica.',
        labelNames: ['change'],
      }),
  );
  private shardsHeld: () => number = () => 0;
  readonly shardsHeldGauge = lookup(
    'fleetwatch_aggregator_shards_held',
    () =>
      new Gauge({
        name: 'fleetwatch_aggregator_shards_held',
        help: 'Observation shards this replica consumes now.',
        collect() {
          this.set(AggregatorMetrics.get().shardsHeld());
        },
      }),
  );

  /** The source of fleetwatch_aggregator_shards_held (the shard coordinator). */
  trackShards(held: () => number): void {
    this.shardsHeld = held;
  }

  readonly catchUpHolds = lookup(
    'fleetwatch_aggregator_catch_up_holds_total',
    () =>
      new Counter({
        name: 'fleetwatch_aggregator_catch_up_holds_total',
        help: "Holds on a shard's deadline expiry until its consumer caught up with the queue that ended, by cause (taken: since the shard was taken at start or on a hand-over; behind: its consumer fell behind its queue since — a store away, a backlog) and how they ended: caught_up, time_limit (SWEEP_CATCH_UP_MAX_MS ran out first), shard_left (the shard was stopped or lost first).",
        labelNames: ['cause', 'ended'],
      }),
  );
  private catchingUp: () => number = () => 0;
  readonly shardsCatchingUpGauge = lookup(
    'fleetwatch_aggregator_shards_catching_up',
    () =>
      new Gauge({
        name: 'fleetwatch_aggregator_shards_catching_up',
        help: 'Observation shards this replica holds whose deadline expiry is held back until their consumer has caught up with the queue: since the take, or behind it since.',
        collect() {
          this.set(AggregatorMetrics.get().catchingUp());
        },
      }),
  );

  /** The source of fleetwatch_aggregator_shards_catching_up (the observations handler). */
  trackCatchingUp(count: () => number): void {
    this.catchingUp = count;
  }

  private hostConflicts: () => number = () => 0;
  readonly hostConflictsGauge = lookup(
    'fleetwatch_aggregator_host_conflicts',
    () =>
      new Gauge({
        name: 'fleetwatch_aggregator_host_conflicts',
        help: "Hosts whose samples come from two or more reporters at once (two collectors or cloned machines sending one host id; the host's `conflict` in the hosts API names since when), among the hosts of the shards this replica holds.",
        collect() {
          this.set(AggregatorMetrics.get().hostConflicts());
        },
      }),
  );

  /** The source of fleetwatch_aggregator_host_conflicts (HostConflicts). */
  trackHostConflicts(count: () => number): void {
    this.hostConflicts = count;
  }

  static get(): AggregatorMetrics {
    // Recreate when someone cleared the registry (tests).
    if (
      !AggregatorMetrics.instance ||
      register.getSingleMetric('fleetwatch_aggregator_observations_total') !== AggregatorMetrics.instance.observations
    ) {
      AggregatorMetrics.instance = new AggregatorMetrics();
    }
    return AggregatorMetrics.instance;
  }
}
