import { Inject, Injectable, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import type { Logger } from 'pino';
import { Gauge, register } from 'prom-client';
import { TargetKind, TargetStatus, type HostMetricsPayload } from '@fleetwatch/contracts';
import { LiveStateStore, type TargetRecord } from '@fleetwatch/live-state';
import { FLEETWATCH_LOGGER } from '@fleetwatch/observability';
import { parseSample } from './host-summary';
import { hostIdOf } from './hosts.service';
import { CorruptRecords } from '../live/corrupt-records';

const PAGE = 1000;
/** Scrapes within this long share one read of live state. */
const SNAPSHOT_TTL_MS = 1000;

interface HostEntry {
  hostId: string;
  target: TargetRecord;
  /** The latest sample while the host is UP; null when STALE or unknown (its figures would be old). */
  sample: HostMetricsPayload | null;
}

type Label = 'host' | 'location' | 'mount' | 'iface' | 'device';
interface HostGauge {
  name: string;
  help: string;
  labels: Label[];
  /** The series of one host: label values (after `host`) and the value; null values are left out. */
  values(e: HostEntry & { sample: HostMetricsPayload }): Array<[string[], number | null | undefined]>;
}

const pctRatio = (pct: number | null | undefined) => (typeof pct === 'number' ? pct / 100 : null);

/**
 * Host series of the site on the gateway's /metrics (issue 16), from live state at scrape
 * time (the hosts' targets and latest samples the aggregator writes). Labels are bounded by
 * the host.metrics contract: `host` (≤ 256 characters), `mount` (≤ 256 disks a host),
 * `iface` (≤ 256), `device` (GPU index, ≤ 64); prom-client escapes backslash, quote and
 * newline in label values. No system strings (kernel, versions) become labels.
 *
 *   fleetwatch_host_up{host,location}            1 while samples arrive (UP), 0 when STALE
 *   fleetwatch_host_cpu_ratio{host}              CPU busy, 0..1
 *   fleetwatch_host_load1{host}
 *   fleetwatch_host_memory_{used,total}_bytes{host}
 *   fleetwatch_host_swap_{used,total}_bytes{host}
 *   fleetwatch_host_disk_{used,total}_bytes{host,mount}
 *   fleetwatch_host_network_{receive,transmit}_bytes_per_second{host,iface}   (none until a rate is known)
 *   fleetwatch_host_gpu_utilization_ratio{host,device}
 *   fleetwatch_host_gpu_memory_{used,total}_bytes{host,device}
 *   fleetwatch_host_gpu_temperature_celsius{host,device}
 *   fleetwatch_host_gpu_power_watts{host,device}
 *
 * A STALE host keeps only fleetwatch_host_up (0): its last figures are not current.
 */
@Injectable()
export class HostMetricsExporter implements OnModuleInit, OnModuleDestroy {
  private readonly names: string[] = [];
  private inflight: Promise<HostEntry[] | null> | null = null;
  private cached: { at: number; hosts: HostEntry[] | null } | null = null;

  constructor(
    private readonly live: LiveStateStore,
    @Inject(FLEETWATCH_LOGGER) private readonly logger: Logger,
    private readonly corrupt: CorruptRecords,
  ) {}

  onModuleInit(): void {
    this.removeMetrics();
    const snapshot = () => this.snapshot();
    const up = 'fleetwatch_host_up';
    this.names.push(up);
    new Gauge({
      name: up,
      help: 'Whether the host reports metrics: 1 while samples arrive (UP), 0 when they stopped (STALE), per collector location.',
      labelNames: ['host', 'location'],
      async collect() {
        const hosts = await snapshot();
        this.reset();
        for (const h of hosts ?? [])
          for (const [location, l] of Object.entries(h.target.locations))
            this.labels(h.hostId, location).set(l.status === TargetStatus.Up ? 1 : 0);
      },
    });
    for (const g of HOST_GAUGES) {
      this.names.push(g.name);
      new Gauge({
        name: g.name,
        help: g.help,
        labelNames: g.labels,
        async collect() {
          const hosts = await snapshot();
          this.reset();
          for (const h of hosts ?? []) {
            if (!h.sample) continue;
            for (const [labels, v] of g.values(h as HostEntry & { sample: HostMetricsPayload }))
              if (typeof v === 'number' && Number.isFinite(v)) this.labels(h.hostId, ...labels).set(v);
          }
        },
      });
    }
  }

  onModuleDestroy(): void {
    this.removeMetrics();
  }

  private removeMetrics(): void {
    for (const name of ['fleetwatch_host_up', ...HOST_GAUGES.map((g) => g.name)])
      if (register.getSingleMetric(name)) register.removeSingleMetric(name);
  }

  /** One read of live state shared by the gauges of a scrape (and by scrapes within a second). */
  private snapshot(): Promise<HostEntry[] | null> {
    const now = Date.now();
    if (this.cached && now - this.cached.at < SNAPSHOT_TTL_MS) return Promise.resolve(this.cached.hosts);
    this.inflight ??= this.read()
      .then((hosts) => {
        this.cached = { at: Date.now(), hosts };
        return hosts;
      })
      .finally(() => {
        this.inflight = null;
      });
    return this.inflight;
  }

  private async read(): Promise<HostEntry[] | null> {
    try {
      const targets: TargetRecord[] = [];
      let cursor: string | undefined;
      do {
        // A host whose record cannot be read (corrupt) has no series this scrape; the others do. Counted.
        const page = await this.live.listTargets({ kind: [TargetKind.Host] }, PAGE, cursor, this.corrupt.note);
        for (const err of page.unreadable) this.corrupt.note(err);
        targets.push(...page.items);
        cursor = page.nextCursor ?? undefined;
      } while (cursor);
      const upIds = targets.filter((t) => t.status === TargetStatus.Up).map((t) => hostIdOf(t.id));
      const samples = await this.live.getHostMetricsMany(upIds);
      return targets.map((t) => ({
        hostId: hostIdOf(t.id),
        target: t,
        sample: t.status === TargetStatus.Up ? parseSample(samples.get(hostIdOf(t.id))) : null,
      }));
    } catch (err) {
      // Leave the host series out rather than fail the whole scrape.
      this.logger.warn({ err }, 'live state unavailable: /metrics has no host series this scrape');
      return null;
    }
  }
}

const HOST_GAUGES: HostGauge[] = [
  {
    name: 'fleetwatch_host_cpu_ratio',
    help: 'CPU busy, all cores, as a ratio 0..1 (latest sample).',
    labels: ['host'],
    values: ({ sample }) => [[[], pctRatio(sample.cpu.usagePct)]],
  },
  {
    name: 'fleetwatch_host_load1',
    help: 'Load average over 1 minute (latest sample).',
    labels: ['host'],
    values: ({ sample }) => [[[], sample.cpu.load1]],
  },
  {
    name: 'fleetwatch_host_memory_used_bytes',
    help: 'Memory in use, in bytes.',
    labels: ['host'],
    values: ({ sample }) => [[[], sample.memory.usedBytes]],
  },
  {
    name: 'fleetwatch_host_memory_total_bytes',
    help: 'Memory installed, in bytes.',
    labels: ['host'],
    values: ({ sample }) => [[[], sample.memory.totalBytes]],
  },
  {
    name: 'fleetwatch_host_swap_used_bytes',
    help: 'Swap in use, in bytes.',
    labels: ['host'],
    values: ({ sample }) => [[[], sample.memory.swapUsedBytes]],
  },
  {
    name: 'fleetwatch_host_swap_total_bytes',
    help: 'Swap configured, in bytes.',
    labels: ['host'],
    values: ({ sample }) => [[[], sample.memory.swapTotalBytes]],
  },
  {
    name: 'fleetwatch_host_disk_used_bytes',
    help: 'Space used on a mounted filesystem, in bytes.',
    labels: ['host', 'mount'],
    values: ({ sample }) => sample.disks.map((d) => [[d.mount], d.usedBytes]),
  },
  {
    name: 'fleetwatch_host_disk_total_bytes',
    help: 'Size of a mounted filesystem, in bytes.',
    labels: ['host', 'mount'],
    values: ({ sample }) => sample.disks.map((d) => [[d.mount], d.totalBytes]),
  },
  {
    name: 'fleetwatch_host_network_receive_bytes_per_second',
    help: 'Bytes received per second on an interface, between the last two samples.',
    labels: ['host', 'iface'],
    values: ({ sample }) => sample.network.map((n) => [[n.iface], n.rxBytesPerSec]),
  },
  {
    name: 'fleetwatch_host_network_transmit_bytes_per_second',
    help: 'Bytes sent per second on an interface, between the last two samples.',
    labels: ['host', 'iface'],
    values: ({ sample }) => sample.network.map((n) => [[n.iface], n.txBytesPerSec]),
  },
  {
    name: 'fleetwatch_host_gpu_utilization_ratio',
    help: 'GPU busy, as a ratio 0..1, per device (nvidia-smi index).',
    labels: ['host', 'device'],
    values: ({ sample }) => sample.gpus.map((g) => [[String(g.index)], pctRatio(g.utilizationPct)]),
  },
  {
    name: 'fleetwatch_host_gpu_memory_used_bytes',
    help: 'GPU memory in use, in bytes, per device.',
    labels: ['host', 'device'],
    values: ({ sample }) => sample.gpus.map((g) => [[String(g.index)], g.memoryUsedBytes]),
  },
  {
    name: 'fleetwatch_host_gpu_memory_total_bytes',
    help: 'GPU memory installed, in bytes, per device.',
    labels: ['host', 'device'],
    values: ({ sample }) => sample.gpus.map((g) => [[String(g.index)], g.memoryTotalBytes]),
  },
  {
    name: 'fleetwatch_host_gpu_temperature_celsius',
    help: 'GPU temperature in degrees Celsius, per device.',
    labels: ['host', 'device'],
    values: ({ sample }) => sample.gpus.map((g) => [[String(g.index)], g.temperatureC]),
  },
  {
    name: 'fleetwatch_host_gpu_power_watts',
    help: 'GPU power draw in watts, per device.',
    labels: ['host', 'device'],
    values: ({ sample }) => sample.gpus.map((g) => [[String(g.index)], g.powerW]),
  },
];
