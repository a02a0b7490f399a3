import { Inject, Injectable, OnApplicationBootstrap, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import { hostMetricsPayloadSchema, Messages, uuidv7 } from '@fleetwatch/contracts';
import { BusConnections, BusPublisher } from '@fleetwatch/messaging';
import { FLEETWATCH_LOGGER } from '@fleetwatch/observability';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { Spool, stopOnLostSpoolLock } from '../checks/spool/spool';
import { SpoolDrain } from '../checks/spool/spool-drain';
import type { CollectorConfig } from '../config';
import { StampService } from '../stamps/stamp.service';
import { COLLECTOR_CONFIG } from '../tokens';
import { GpuSampler } from './gpu/gpu-sampler';
import { HostMetrics } from './host.metrics';
import { HostSampler, type HostSample } from './host-sampler';
import { loadReporterIdentity } from './reporter-identity';

const VERSION = process.env.FLEETWATCH_VERSION ?? '0.1.0';
/** How long after the boot the first sample is taken (at most one interval). */
const BOOT_DELAY_MS = 1_000;

/**
 * Host sampling (SPEC §5, issue 16): every `COLLECTOR_HOST_INTERVAL_SECONDS` one sample of
 * this host — CPU, load, memory, disks, network, GPUs — goes into a spool and from there,
 * confirmed, onto the bus as `host.metrics`. The spool and its drain are the checks' own
 * (checks/spool), in a directory of their own under the collector's spool: host samples
 * survive a broker outage or a crash like check results do, and a long outage's samples
 * (≈2 KB every 5 s) can only push out older samples, never check results.
 *
 * Ticks keep to a fixed cadence from the start; a tick that finds the previous sample
 * still running is skipped (counted), never queued.
 */
@Injectable()
export class HostService implements OnModuleInit, OnApplicationBootstrap, OnModuleDestroy {
  private spool: Spool | undefined;
  private drain: SpoolDrain | undefined;
  private sampler: HostSampler | undefined;
  private gpu: GpuSampler | undefined;
  private timer: NodeJS.Timeout | undefined;
  private inFlight: Promise<void> | undefined;
  private stopped = false;
  readonly hostId: string;
  readonly metrics = new HostMetrics();

  constructor(
    @Inject(COLLECTOR_CONFIG) private readonly config: CollectorConfig,
    @Inject(FLEETWATCH_LOGGER) private readonly logger: Logger,
    private readonly publisher: BusPublisher,
    private readonly connections: BusConnections,
    private readonly stamps: StampService,
  ) {
    this.hostId = (config.hostId ?? hostname()).slice(0, 256) || 'unknown-host';
  }

  get enabled(): boolean {
    return this.config.host.intervalSeconds > 0;
  }

  /** Samples waiting in the spool for the broker. */
  get spooled(): number {
    return this.spool?.stats.records ?? 0;
  }

  async onModuleInit(): Promise<void> {
    if (!this.enabled) {
      this.logger.info('host sampling is off (COLLECTOR_HOST_INTERVAL_SECONDS=0)');
      return;
    }
    const { config, logger, metrics } = this;
    this.spool = await Spool.open({
      dir: config.host.spoolDir,
      maxBytes: config.host.spoolMaxBytes,
      logger,
      onDropped: (records, reason) => metrics.countDropped(reason, records),
      onLockLost: stopOnLostSpoolLock(logger, config.host.spoolDir),
    });
    metrics.watchSpool(this.spool);
    this.drain = new SpoolDrain(this.spool, this.publisher, this.connections.publishing, {
      logger,
      // Samples come one per interval: nothing to gather, publish at once.
      lingerMs: 0,
      onPublished: (n) => metrics.published.inc(n),
      onDiscarded: (n) => metrics.countDropped('invalid', n),
    });
    // Beside the stamp file, in the collector's own spool directory (not the host samples' spool under it).
    const reporter = await loadReporterIdentity(config.spool.dir, logger);
    this.gpu = config.host.nvidiaSmi
      ? new GpuSampler({
          command: config.host.nvidiaSmi,
          logger,
          // Beside install-id.json: a GPU lost before a restart (named nowhere after it) is still missing.
          memoryFile: config.host.gpuMemoryFile,
          hostId: this.hostId,
          forgetMissingAfterMs: config.host.gpuForgetAfterMs,
        })
      : undefined;
    this.sampler = new HostSampler({
      hostId: this.hostId,
      location: config.location,
      intervalSeconds: config.host.intervalSeconds,
      gpu: this.gpu,
      collectorVersion: VERSION,
      reporter,
      now: () => this.stamps.now(),
      logger,
    });
  }

  onApplicationBootstrap(): void {
    if (!this.sampler) return;
    const sampler = this.sampler;
    this.drain?.start();
    // Off the boot path, a moment after it: the checks' catch-up runs (slots that fell during the boot) go
    // first. Static facts (OS, GPU driver) are read once; the first sample follows them.
    const delayMs = Math.min(BOOT_DELAY_MS, this.config.host.intervalSeconds * 1000);
    this.timer = setTimeout(() => {
      const started = performance.now();
      this.inFlight = sampler
        .init()
        .catch((e: unknown) => this.logger.warn({ error: (e as Error).message }, 'host: static facts not read'))
        .then(() => this.tick(started));
    }, delayMs);
    this.timer.unref();
  }

  async onModuleDestroy(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    // A sample in flight may be waiting for nvidia-smi, which a wedged GPU hangs: it ends now, its process killed.
    this.gpu?.stop();
    await this.inFlight;
    if (!this.spool) return;
    await this.drain?.stop(Math.min(2_000, this.config.shutdownTimeoutMs / 4));
    await this.spool.close();
    this.metrics.watchSpool(undefined);
  }

  /** Takes one sample now and spools it (also what each tick does). Undefined when reading the host failed. */
  async sampleOnce(): Promise<HostSample | undefined> {
    const sampler = this.sampler;
    if (!sampler || !this.spool) return undefined;
    const t0 = performance.now();
    try {
      const sample = hostMetricsPayloadSchema.parse(await sampler.sample());
      this.metrics.sampled(true, (performance.now() - t0) / 1000);
      this.metrics.setGpu(this.gpu?.status ?? 'absent', sample.gpus.length, sample.missingGpus?.length ?? 0);
      this.metrics.mountsLeftOut.set(sampler.mountsLeftOut);
      // The envelope id is fixed here, once: a resend from the spool carries it, and consumers drop repeats by it.
      this.spool.append({
        id: uuidv7(),
        type: Messages.HostMetrics.type,
        occurredAt: sample.sampledAt,
        payload: sample,
      });
      return sample;
    } catch (e) {
      this.metrics.sampled(false, (performance.now() - t0) / 1000);
      this.logger.warn({ error: (e as Error).message }, 'host: sample failed');
      return undefined;
    }
  }

  /** Samples for slot `slot` (origin + slot × interval), then waits for the next slot still ahead. */
  private async tick(origin: number, slot = 0): Promise<void> {
    if (this.stopped) return;
    await this.sampleOnce();
    if (this.stopped) return;
    const intervalMs = this.config.host.intervalSeconds * 1000;
    const now = performance.now();
    const next = Math.max(slot + 1, Math.floor((now - origin) / intervalMs) + 1);
    if (next > slot + 1) this.metrics.skipped.inc(next - slot - 1);
    this.timer = setTimeout(
      () => {
        this.inFlight = this.tick(origin, next);
      },
      origin + next * intervalMs - now,
    );
    this.timer.unref();
  }
}
