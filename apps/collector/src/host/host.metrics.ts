import { Counter, Gauge, Histogram, register, type Metric } from 'prom-client';
import type { DropReason } from '../checks/spool/spool';
import type { GpuState } from './gpu/gpu-sampler';

// The collector's own series about host sampling (the host's figures themselves go over
// the bus; the gateway's /metrics carries them). Labels are bounded: outcome, reason, state.

function lookup<M extends Metric<string>>(name: string, create: () => M): M {
  return (register.getSingleMetric(name) as M | undefined) ?? create();
}

export interface HostSpoolSource {
  readonly stats: { records: number };
}

export class HostMetrics {
  readonly samples = lookup(
    'fleetwatch_collector_host_samples_total',
    () =>
      new Counter({
        name: 'fleetwatch_collector_host_samples_total',
        help: 'Host samples taken (ok: spooled for the bus; failed: reading the host failed).',
        labelNames: ['outcome'],
      }),
  );
  readonly skipped = lookup(
    'fleetwatch_collector_host_samples_skipped_total',
    () =>
      new Counter({
        name: 'fleetwatch_collector_host_samples_skipped_total',
        help: 'Host sample ticks skipped because the previous sample was still being taken.',
      }),
  );
  readonly duration = lookup(
    'fleetwatch_collector_host_sample_duration_seconds',
    () =>
      new Histogram({
        name: 'fleetwatch_collector_host_sample_duration_seconds',
        help: 'Wall time of one host sample (reading /proc, filesystems and nvidia-smi).',
        buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      }),
  );
  readonly published = lookup(
    'fleetwatch_collector_host_samples_published_total',
    () =>
      new Counter({
        name: 'fleetwatch_collector_host_samples_published_total',
        help: 'Host samples confirmed by the broker (from the host spool).',
      }),
  );
  readonly spoolDropped = lookup(
    'fleetwatch_collector_host_spool_dropped_total',
    () =>
      new Counter({
        name: 'fleetwatch_collector_host_spool_dropped_total',
        help: 'Host samples dropped from their spool before the broker confirmed them (full: oldest first), by reason.',
        labelNames: ['reason'],
      }),
  );
  readonly spoolRecords = lookup(
    'fleetwatch_collector_host_spool_records',
    () =>
      new Gauge({
        name: 'fleetwatch_collector_host_spool_records',
        help: 'Host samples in the spool not yet confirmed by the broker.',
        collect() {
          this.set(HostMetrics.spool?.stats.records ?? 0);
        },
      }),
  );
  readonly gpuState = lookup(
    'fleetwatch_collector_gpu_state',
    () =>
      new Gauge({
        name: 'fleetwatch_collector_gpu_state',
        help: 'What the last nvidia-smi probe found: 1 for the current state (present, absent, failing, unknown).',
        labelNames: ['state'],
      }),
  );
  readonly gpuDevices = lookup(
    'fleetwatch_collector_gpu_devices',
    () =>
      new Gauge({
        name: 'fleetwatch_collector_gpu_devices',
        help: 'GPUs in the last host sample.',
      }),
  );
  readonly gpuDevicesMissing = lookup(
    'fleetwatch_collector_gpu_devices_missing',
    () =>
      new Gauge({
        name: 'fleetwatch_collector_gpu_devices_missing',
        help: 'GPUs seen earlier and missing from the last host sample (fallen off the bus: its missingGpus).',
      }),
  );
  readonly mountsLeftOut = lookup(
    'fleetwatch_collector_host_mounts_left_out',
    () =>
      new Gauge({
        name: 'fleetwatch_collector_host_mounts_left_out',
        help: 'Local mounts the last host sample left out: more than the 256 a sample reports (the deepest paths go first).',
      }),
  );

  /** The spool the gauge reads (a gauge's collect() has no other way to it). */
  private static spool: HostSpoolSource | undefined;
  private readonly ok = this.samples.labels('ok');
  private readonly failed = this.samples.labels('failed');

  watchSpool(source: HostSpoolSource | undefined): void {
    HostMetrics.spool = source;
  }

  sampled(ok: boolean, seconds: number): void {
    (ok ? this.ok : this.failed).inc();
    this.duration.observe(seconds);
  }

  /** From each host sample: the GPU probe's state, the GPUs sampled and those it lists as missing. */
  setGpu(state: GpuState, devices: number, missing: number): void {
    for (const s of ['unknown', 'present', 'absent', 'failing'] as const)
      this.gpuState.labels(s).set(s === state ? 1 : 0);
    this.gpuDevices.set(devices);
    this.gpuDevicesMissing.set(missing);
  }

  countDropped(reason: DropReason, records: number): void {
    this.spoolDropped.labels(reason).inc(records);
  }
}
