import { Inject, Injectable, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import type { Logger } from 'pino';
import { Gauge, register } from 'prom-client';
import { RESERVED_LOCATION, TargetStatus } from '@fleetwatch/contracts';
import { upValueOf } from '@fleetwatch/domain';
import { LiveStateStore, TargetRecord } from '@fleetwatch/live-state';
import { FLEETWATCH_LOGGER } from '@fleetwatch/observability';
import { dropLintFailingDefaultMetrics } from '@fleetwatch/observability';
import { CorruptRecords } from '../live/corrupt-records';

/** The location label of the consensus series of `fleetwatch_target_up` (reserved: no real location may use it). */
export const CONSENSUS_LOCATION = RESERVED_LOCATION;
const PAGE = 1000;
/** Scrapes within this long share one read of live state. */
const SNAPSHOT_TTL_MS = 1000;

interface Snapshot {
  targets: TargetRecord[];
  counts: Record<TargetStatus, number>;
}

/**
 * The site's targets on the gateway's /metrics (SPEC §11), computed from live state at
 * scrape time (prom-client collect callbacks on the default registry, beside the
 * process metrics; prom-client escapes label values: backslash, quote, newline):
 *
 *   fleetwatch_target_up{target,kind,location}  1 UP, 0 DOWN/PARTIAL/STALE (domain upValueOf);
 *                                               one series per location, plus location="all"
 *                                               for the consensus; none for PAUSED/UNKNOWN
 *   fleetwatch_target_status{target,status}     1 for the current consensus status, 0 for each other status
 *   fleetwatch_targets{status}                  number of targets per consensus status
 *
 * Target names never carry secrets (ids and names only; no labels from pushers).
 */
@Injectable()
export class TargetMetricsService implements OnModuleInit, OnModuleDestroy {
  private readonly names = ['fleetwatch_target_up', 'fleetwatch_target_status', 'fleetwatch_targets'];
  private inflight: Promise<Snapshot | null> | null = null;
  private cached: { at: number; snapshot: Snapshot | null } | null = null;

  constructor(
    private readonly live: LiveStateStore,
    @Inject(FLEETWATCH_LOGGER) private readonly logger: Logger,
    private readonly corrupt: CorruptRecords,
  ) {}

  onModuleInit(): void {
    dropLintFailingDefaultMetrics();
    this.removeMetrics();
    const snapshot = () => this.snapshot();
    new Gauge({
      name: 'fleetwatch_target_up',
      help: 'Whether the target is up (1) or not (0: DOWN, PARTIAL or STALE), per location and location="all" for the consensus; no series while PAUSED or UNKNOWN.',
      labelNames: ['target', 'kind', 'location'],
      async collect() {
        const current = await snapshot();
        this.reset();
        for (const t of current?.targets ?? []) {
          for (const [location, l] of Object.entries(t.locations)) {
            const v = upValueOf(l.status);
            if (v !== null) this.labels(t.id, t.kind, location).set(v);
          }
          const consensus = upValueOf(t.status);
          if (consensus !== null) this.labels(t.id, t.kind, CONSENSUS_LOCATION).set(consensus);
        }
      },
    });
    new Gauge({
      name: 'fleetwatch_target_status',
      help: "The target's consensus status: 1 for the current status, 0 for every other status.",
      labelNames: ['target', 'status'],
      async collect() {
        const current = await snapshot();
        this.reset();
        const statuses = Object.values(TargetStatus);
        for (const t of current?.targets ?? [])
          for (const s of statuses) this.labels(t.id, s).set(s === t.status ? 1 : 0);
      },
    });
    new Gauge({
      name: 'fleetwatch_targets',
      help: 'Number of targets per consensus status.',
      labelNames: ['status'],
      async collect() {
        const current = await snapshot();
        this.reset();
        if (current) for (const s of Object.values(TargetStatus)) this.labels(s).set(current.counts[s] ?? 0);
      },
    });
  }

  onModuleDestroy(): void {
    this.removeMetrics();
  }

  private removeMetrics(): void {
    for (const name of this.names) if (register.getSingleMetric(name)) register.removeSingleMetric(name);
  }

  /** One read of live state shared by the three collectors of a scrape (and by scrapes within a second). */
  private snapshot(): Promise<Snapshot | null> {
    const now = Date.now();
    if (this.cached && now - this.cached.at < SNAPSHOT_TTL_MS) return Promise.resolve(this.cached.snapshot);
    this.inflight ??= this.read()
      .then((snapshot) => {
        this.cached = { at: Date.now(), snapshot };
        return snapshot;
      })
      .finally(() => {
        this.inflight = null;
      });
    return this.inflight;
  }

  private async read(): Promise<Snapshot | null> {
    try {
      const targets: TargetRecord[] = [];
      let cursor: string | undefined;
      do {
        // A target whose record cannot be read (corrupt) has no series this scrape; the others do. Counted.
        const page = await this.live.listTargets({}, PAGE, cursor, this.corrupt.note);
        for (const err of page.unreadable) this.corrupt.note(err);
        targets.push(...page.items);
        cursor = page.nextCursor ?? undefined;
      } while (cursor);
      const counts = await this.live.countByStatus();
      return { targets, counts };
    } catch (err) {
      // Leave the target series out rather than fail the whole scrape (process metrics still matter).
      this.logger.warn({ err }, 'live state unavailable: /metrics has no target series this scrape');
      return null;
    }
  }
}
