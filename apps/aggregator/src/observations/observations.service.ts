import { Inject, Injectable } from '@nestjs/common';
import { TargetKind, type Envelope } from '@fleetwatch/contracts';
import { applyObservation, heartbeatStep, type StatusEventDraft, type TargetSnapshot } from '@fleetwatch/domain';
import {
  DATABASE_CLIENT,
  HistoryRepository,
  runInTransaction,
  StatusEventsRepository,
  TargetStatesRepository,
  type DatabaseClient,
  type DatabaseTransaction,
  type HeartbeatRunRow,
  type MonitorTouch,
  type RollupKey,
} from '@fleetwatch/persistence';
import { FLEETWATCH_LOGGER } from '@fleetwatch/observability';
import type { Logger } from 'pino';
import { AggregatorMetrics } from '../aggregator.metrics';
import { SerialLane } from '../common/serial-lane';
import { retryTransient } from '../common/retry';
import type { AggregatorConfig } from '../config';
import { LiveStateBoot } from '../live/live-state.boot';
import type { IndexedAs } from '../live/live-projection.service';
import { StatusPropagation, type CommittedChange } from '../status/status-propagation.service';
import { AGGREGATOR_CONFIG } from '../tokens';
import { mapEnvelope, type MappedMessage } from './observation.mapper';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

type Active = Exclude<MappedMessage, { type: 'ignored' }>;

interface BatchOutcome extends CommittedChange {
  fresh: number;
  duplicates: number;
  hostMetrics: Map<string, { json: string; at: number }>;
}

/**
 * Folds a batch of observations (in delivery order) into history, target state
 * and status events in ONE transaction, then projects it to Redis and publishes
 * the transitions. Idempotent by message id: the history insert (ON CONFLICT
 * (message_id) DO NOTHING) says which messages are new; redelivered ones change
 * nothing and emit nothing — their targets are only re-projected to Redis, which
 * repairs live state after a crash between commit and projection.
 */
@Injectable()
export class ObservationsService {
  private readonly metrics = AggregatorMetrics.get();
  private stopping = false;

  constructor(
    @Inject(DATABASE_CLIENT) private readonly db: DatabaseClient,
    private readonly history: HistoryRepository,
    private readonly states: TargetStatesRepository,
    private readonly events: StatusEventsRepository,
    private readonly propagation: StatusPropagation,
    private readonly boot: LiveStateBoot,
    private readonly lane: SerialLane,
    @Inject(AGGREGATOR_CONFIG) private readonly config: AggregatorConfig,
    @Inject(FLEETWATCH_LOGGER) private readonly logger: Logger,
  ) {}

  /** Shutdown: stop waiting out outages so the in-flight batch returns (unacked) promptly. */
  stop(): void {
    this.stopping = true;
  }

  async processBatch(envelopes: readonly Envelope[]): Promise<void> {
    const started = performance.now();
    const mapped = envelopes.map((e) => mapEnvelope(e, { staleAfterSeconds: this.config.staleAfterSeconds }));
    const active = mapped.filter((m): m is Active => m.type !== 'ignored');
    if (active.length === 0) return;
    const outcome = await retryTransient(
      () =>
        this.lane.run(async () => {
          await this.boot.ensureReady();
          const a = performance.now();
          const result = await runInTransaction(this.db, (tx) => this.commit(tx, active), { timeoutMs: 30_000, maxWaitMs: 10_000 });
          const b = performance.now();
          await this.propagation.propagate(result);
          const c = performance.now();
          process.stderr.write(`batch ${active.length} commit ${Math.round(b - a)} propagate ${Math.round(c - b)} events ${result.events.length}\n`);
          const ttl = Math.max(60, this.config.staleAfterSeconds * 2);
          for (const [hostId, m] of result.hostMetrics) await this.boot.live.setHostMetrics(hostId, m.json, ttl);
          return result;
        }),
      {
        stopping: () => this.stopping,
        onRetry: (e, attempt, delayMs) => this.logger.warn({ err: (e as Error).message, attempt, delayMs }, 'batch not committed: dependency unavailable, retrying'),
      },
    );
    for (const m of active) this.metrics.observations.inc({ type: m.type });
    this.metrics.duplicates.inc(outcome.duplicates);
    this.metrics.transitions.inc({ source: 'observation' }, outcome.events.length);
    this.metrics.batchSeconds.observe((performance.now() - started) / 1000);
  }

  private async commit(tx: DatabaseTransaction, batch: Active[]): Promise<BatchOutcome> {
    const pick = <T extends Active['type']>(type: T) => batch.filter((m): m is Extract<Active, { type: T }> => m.type === type);
    const h0 = performance.now();
    const fresh = new Set<string>();
    const add = (ids: Set<string>) => ids.forEach((id) => fresh.add(id.toLowerCase()));
    add(await this.history.insertStatusUpdates(tx, pick('status').map((m) => m.row)));
    add(await this.history.insertCheckResults(tx, pick('check').map((m) => m.row)));
    add(await this.history.insertHostMetrics(tx, pick('host').map((m) => m.row)));
    add(await this.history.insertHeartbeatPings(tx, pick('ping').map((m) => m.row)));
    process.stderr.write(`  history ${Math.round(performance.now() - h0)}\n`);

    const T = (globalThis as unknown as { __t: number[] }).__t = [performance.now()];
    const ids = [...new Set(batch.map((m) => m.targetId))];
    const current = await this.states.lockMany(tx, ids);
    T.push(performance.now());
    const working = new Map<string, TargetSnapshot>(current);
    const changed = new Set<string>();
    const resync = new Set<string>();
    const drafts: StatusEventDraft[] = [];
    const dirty: RollupKey[] = [];
    const runs: HeartbeatRunRow[] = [];
    const touches = new Map<string, MonitorTouch>();
    const hostMetrics = new Map<string, { json: string; at: number }>();
    const folded = new Set<string>();
    let duplicates = 0;

    for (const m of batch) {
      if (!fresh.has(m.messageId) || folded.has(m.messageId)) {
        duplicates++;
        resync.add(m.targetId);
        continue;
      }
      folded.add(m.messageId);
      const before = working.get(m.targetId);
      let result;
      if (m.type === 'ping') {
        const step = heartbeatStep(before?.locations[m.location], m.ping);
        result = applyObservation(
          before,
          { targetId: m.targetId, kind: before?.kind ?? TargetKind.Check, name: m.name, location: m.location, at: m.ping.at, status: step.status, reason: step.reason, deadline: step.deadline, run: step.run },
          this.policy,
        );
        if (UUID.test(m.row.monitorId)) {
          if (result.applied && step.finished) runs.push({ monitorId: m.row.monitorId, targetId: m.targetId, ...step.finished });
          const touch = touches.get(m.row.monitorId) ?? { monitorId: m.row.monitorId, lastPingAt: null, lastStartAt: null };
          touch.lastPingAt = Math.max(touch.lastPingAt ?? 0, m.ping.at);
          if (m.ping.signal === 'start') touch.lastStartAt = Math.max(touch.lastStartAt ?? 0, m.ping.at);
          touches.set(m.row.monitorId, touch);
        }
        if (m.rollup) dirty.push(m.rollup);
      } else {
        result = applyObservation(before, m.observation, this.policy);
        if (m.type === 'host') {
          if (result.applied) hostMetrics.set(m.row.hostId, { json: m.metrics.json, at: m.observation.at });
        } else {
          dirty.push(m.rollup);
        }
      }
      working.set(m.targetId, result.target);
      changed.add(m.targetId);
      drafts.push(...result.events);
    }

    T.push(performance.now());
    await this.states.saveMany(tx, [...changed].map((id) => working.get(id) as TargetSnapshot));
    T.push(performance.now());
    const stored = await this.events.insertMany(tx, drafts);
    T.push(performance.now());
    await this.history.markRollupsDirty(tx, dirty);
    T.push(performance.now());
    process.stderr.write(`  lock ${Math.round(T[1]-T[0])} fold ${Math.round(T[2]-T[1])} save ${Math.round(T[3]-T[2])} events ${Math.round(T[4]-T[3])} dirty ${Math.round(T[5]-T[4])}\n`);
    await this.history.insertHeartbeatRuns(tx, runs);
    await this.history.touchHeartbeatMonitors(tx, [...touches.values()]);

    // Redis is re-read for targets of redelivered messages: their last projection may not have happened.
    const previous = new Map<string, IndexedAs | null>();
    for (const id of changed) {
      if (resync.has(id)) continue;
      const c = current.get(id);
      previous.set(id, c ? { status: c.status, tags: c.tags } : null);
    }
    const targets = [...new Set([...changed, ...resync])].map((id) => working.get(id)).filter((t): t is TargetSnapshot => t !== undefined);
    return { targets, previous, events: stored, fresh: folded.size, duplicates, hostMetrics };
  }

  private get policy() {
    return { downQuorumPct: this.config.downQuorumPct };
  }
}
