import { Inject, Injectable } from '@nestjs/common';
import { TargetIds } from '@fleetwatch/contracts';
import type { TargetSnapshot } from '@fleetwatch/domain';
import { LiveStateStore, type HostSampleWrite } from '@fleetwatch/live-state';
import { shardOf } from '@fleetwatch/messaging';
import { HostHistoryRepository } from '@fleetwatch/persistence';
import type { AggregatorConfig } from '../config';
import { AGGREGATOR_CONFIG } from '../tokens';

const RESTORE_PAGE = 200;
const HOST_PREFIX = TargetIds.host('');

/**
 * Hosts' latest samples in live state (`host:{hostId}:metrics`; the host's status is its
 * target). Written after each commit with the samples it applied, and restored from the
 * latest raw row per host when live state is rebuilt. The store keeps a sample only if it
 * is not older than the one held, so a rebuild page or a late projection never moves a
 * host back. Samples expire with the raw retention window, after which no rebuild could
 * restore them either. A retired host's sample is dropped with its target (retire) and not restored.
 */
@Injectable()
export class HostLiveState {
  constructor(
    private readonly store: LiveStateStore,
    private readonly history: HostHistoryRepository,
    @Inject(AGGREGATOR_CONFIG) private readonly config: AggregatorConfig,
  ) {}

  private get ttlSeconds(): number {
    return this.config.retention.rawDays * 86_400;
  }

  /** Stores the latest samples a commit applied. */
  async project(samples: ReadonlyMap<string, { json: string; at: number }>): Promise<void> {
    if (samples.size === 0) return;
    const writes: HostSampleWrite[] = [];
    for (const [hostId, m] of samples) writes.push({ hostId, sampledAt: m.at, json: m.json });
    await this.store.setHostMetricsMany(writes, this.ttlSeconds);
  }

  /**
   * Drops the latest samples of retired hosts (tombstones: `host:{id}` with `deletedAt`): nothing shows a retired
   * host's figures, and the metric alert rules must not read them (a disk full days ago). A sample of the host's next
   * life (newer than the retirement) is kept.
   */
  async retire(tombstones: readonly TargetSnapshot[]): Promise<void> {
    const hosts: Array<{ hostId: string; retiredAt: number }> = [];
    for (const t of tombstones)
      if (t.deletedAt !== undefined && t.deletedAt !== null && t.id.startsWith(HOST_PREFIX))
        hosts.push({ hostId: t.id.slice(HOST_PREFIX.length), retiredAt: t.deletedAt });
    await this.store.retireHostMetrics(hosts);
  }

  /**
   * Restores hosts' latest samples from Postgres (all hosts, or those sampled since
   * `since`; only one observation shard's hosts when `shard` is given). Returns how many
   * hosts were read.
   */
  async restore(since?: Date, shard?: { shard: number; of: number }): Promise<number> {
    let after: string | null = null;
    let total = 0;
    for (;;) {
      const page = await this.history.latestSamples({ after, limit: RESTORE_PAGE, since: since?.getTime() });
      if (page.length === 0) break;
      const mine = shard ? page.filter((s) => shardOf(TargetIds.host(s.hostId), shard.of) === shard.shard) : page;
      await this.store.setHostMetricsMany(
        mine.map((s) => ({ hostId: s.hostId, sampledAt: s.sampledAt, json: s.json })),
        this.ttlSeconds,
      );
      total += page.length;
      after = page[page.length - 1].hostId;
      if (page.length < RESTORE_PAGE) break;
    }
    return total;
  }
}
