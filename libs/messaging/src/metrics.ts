import { Counter, Gauge, Histogram, Metric, register } from 'prom-client';

/**
 * Bus metrics on prom-client's default registry. Each metric is created on first
 * use and reused when already registered (tests and apps create many publishers
 * and consumers in one process); if someone clears the registry it is created
 * again. Labels are bounded (exchange, queue, message type, cause): never ids.
 */
function lookup<M extends Metric<string>>(name: string, create: () => M): M {
  return (register.getSingleMetric(name) as M | undefined) ?? create();
}

/**
 * Counter whose increments are summed in memory and handed to prom-client once
 * per event-loop turn (and at scrape time): prom-client hashes the label set on
 * every `inc`, which on the publish path cost as much as the rest of the
 * bookkeeping together.
 */
class BusCounter {
  private readonly pending = new Map<string, { labels: string[]; n: number }>();
  private scheduled = false;

  constructor(
    private readonly name: string,
    private readonly help: string,
    private readonly labelNames: readonly string[],
  ) {}

  inc(labelValues: readonly string[], n = 1): void {
    // Registered on first use (with a scrape-time flush), and again if the registry was cleared.
    if (register.getSingleMetric(this.name) === undefined) this.metric();
    const key = labelValues.length === 2 ? `${labelValues[0]}\u0000${labelValues[1]}` : labelValues.join('\u0000');
    const entry = this.pending.get(key);
    if (entry) entry.n += n;
    else this.pending.set(key, { labels: [...labelValues], n });
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  /** Moves the summed increments into the registered counter. */
  flush(): void {
    this.scheduled = false;
    if (this.pending.size === 0) return;
    const metric = this.metric();
    for (const entry of this.pending.values()) if (entry.n > 0) metric.labels(...entry.labels).inc(entry.n);
    this.pending.clear();
  }

  private metric(): Counter<string> {
    return lookup(
      this.name,
      () => new Counter({ name: this.name, help: this.help, labelNames: this.labelNames, collect: () => this.flush() }),
    );
  }
}

export class BusMetrics {
  /** labels: exchange, type */
  readonly published = new BusCounter(
    'fleetwatch_bus_messages_published_total',
    'Messages sent to the broker (before its confirm).',
    ['exchange', 'type'],
  );
  /** labels: exchange, type */
  readonly confirmed = new BusCounter(
    'fleetwatch_bus_messages_confirmed_total',
    'Messages the broker confirmed (basic.ack).',
    ['exchange', 'type'],
  );
  /** labels: exchange, type, error (error class name) */
  readonly publishFailed = new BusCounter(
    'fleetwatch_bus_publish_failures_total',
    'Publishes rejected with a typed error, by error class.',
    ['exchange', 'type', 'error'],
  );
  /** labels: queue, type */
  readonly consumed = new BusCounter('fleetwatch_bus_messages_consumed_total', 'Deliveries received by consumers.', [
    'queue',
    'type',
  ]);
  /** labels: queue, type */
  readonly acked = new BusCounter(
    'fleetwatch_bus_messages_acked_total',
    'Deliveries acknowledged after their handler committed.',
    ['queue', 'type'],
  );
  /** labels: queue, type */
  readonly nacked = new BusCounter(
    'fleetwatch_bus_messages_nacked_total',
    'Deliveries returned to their queue for a retry after a handler failure.',
    ['queue', 'type'],
  );
  /** labels: queue, type, how (requeued | fresh_copy) */
  readonly redelivered = new BusCounter(
    'fleetwatch_bus_messages_redelivered_total',
    'Deliveries given back for another consumer (not a failure): requeued, or near the delivery limit republished as a fresh copy.',
    ['queue', 'type', 'how'],
  );
  /** labels: queue, type, cause (invalid | permanent | delivery_limit | isolated) */
  readonly deadLettered = new BusCounter(
    'fleetwatch_bus_messages_dead_lettered_total',
    'Deliveries sent to the dead-letter queue, by cause.',
    ['queue', 'type', 'cause'],
  );
  /** labels: queue */
  readonly handlerRetries = new BusCounter(
    'fleetwatch_bus_handler_retries_total',
    'Handler calls retried in place after a transient failure (a store away); the deliveries stay held meanwhile.',
    ['queue'],
  );
  /** labels: queue */
  readonly staleSettles = new BusCounter(
    'fleetwatch_bus_stale_settlements_total',
    'Acks/nacks dropped because their channel had closed (the broker redelivers them).',
    ['queue'],
  );

  private static instance: BusMetrics | undefined;

  static get(): BusMetrics {
    return (BusMetrics.instance ??= new BusMetrics());
  }

  setConnected(connection: string, up: boolean): void {
    lookup(
      'fleetwatch_bus_connection_up',
      () =>
        new Gauge({
          name: 'fleetwatch_bus_connection_up',
          help: '1 while the connection to RabbitMQ is open and its topology declared, else 0.',
          labelNames: ['connection'],
        }),
    ).set({ connection }, up ? 1 : 0);
  }

  /** 1 while RabbitMQ blocks the connection for a resource alarm (publishes fail at once), else 0. */
  setBlocked(connection: string, blocked: boolean): void {
    lookup(
      'fleetwatch_bus_connection_blocked',
      () =>
        new Gauge({
          name: 'fleetwatch_bus_connection_blocked',
          help: '1 while RabbitMQ blocks the connection for a resource alarm (memory, disk), else 0.',
          labelNames: ['connection'],
        }),
    ).set({ connection }, blocked ? 1 : 0);
  }

  private readonly intakes = new Map<
    string,
    () => { units: number; bytes: number; messages: number; paused: boolean; prefetch: number } | undefined
  >();

  /** Reports a budgeted consumer's holdings at scrape time (no cost per delivery). Returns the function that stops it. */
  trackIntake(
    queue: string,
    state: () => { units: number; bytes: number; messages: number; paused: boolean; prefetch: number } | undefined,
  ): () => void {
    this.intakes.set(queue, state);
    const intakes = this.intakes;
    lookup(
      'fleetwatch_bus_consumer_held',
      () =>
        new Gauge({
          name: 'fleetwatch_bus_consumer_held',
          help: 'What a budgeted consumer holds (received, not yet settled): units (e.g. updates), bytes, messages; its prefetch in force; 1 while intake is paused.',
          labelNames: ['queue', 'measure'],
          collect() {
            this.reset();
            for (const [q, read] of intakes) {
              const s = read();
              if (!s) continue;
              this.set({ queue: q, measure: 'units' }, s.units);
              this.set({ queue: q, measure: 'bytes' }, s.bytes);
              this.set({ queue: q, measure: 'messages' }, s.messages);
              this.set({ queue: q, measure: 'prefetch' }, s.prefetch);
              this.set({ queue: q, measure: 'paused' }, s.paused ? 1 : 0);
            }
          },
        }),
    );
    return () => {
      if (this.intakes.get(queue) === state) this.intakes.delete(queue);
    };
  }

  private histogram: Histogram<string> | undefined;
  private histogramChildren = new Map<string, Histogram.Internal<string>>();

  observeHandler(queue: string, seconds: number): void {
    const current = register.getSingleMetric('fleetwatch_bus_handler_duration_seconds');
    if (current === undefined || current !== this.histogram) {
      this.histogram = lookup(
        'fleetwatch_bus_handler_duration_seconds',
        () =>
          new Histogram({
            name: 'fleetwatch_bus_handler_duration_seconds',
            help: 'Time a consumer handler took for one delivery or one batch, until it settled.',
            labelNames: ['queue'],
            buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
          }),
      );
      this.histogramChildren = new Map();
    }
    let child = this.histogramChildren.get(queue);
    if (!child) {
      child = this.histogram.labels(queue);
      this.histogramChildren.set(queue, child);
    }
    child.observe(seconds);
  }
}
