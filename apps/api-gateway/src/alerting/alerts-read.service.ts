import { Inject, Injectable } from '@nestjs/common';
import {
  alertEndReasonText,
  ALERT_LIST_STATES,
  CHANNEL_TYPES,
  maintenanceWindowSpecSchema,
  silenceSpecSchema,
  type AlertHistoryQuery,
  type AlertHistoryResponse,
  type AlertListResponse,
  type AlertView,
  type ChannelType,
  type DeliveryLogResponse,
  type ListAlertsQuery,
  type ListDeliveriesQuery,
  type MaintenanceWindow,
  type Silence,
} from '@fleetwatch/contracts';
import { createMuter, type AlertTarget } from '@fleetwatch/alerting';
import { LiveStateStore } from '@fleetwatch/live-state';
import {
  AlertConfigRepository,
  AlertDeliveriesRepository,
  AlertEvaluationReaderRepository,
  AlertEventsRepository,
  AlertsReadRepository,
  TargetStatesRepository,
  type AlertRow,
} from '@fleetwatch/persistence';
import type { GatewayConfig } from '../config';
import { CorruptRecords } from '../live/corrupt-records';
import { durableTargets } from '../live/durable-targets';
import { GATEWAY_CONFIG } from '../tokens';

/** The latest time Postgres takes as an ISO text from toISOString (9999-12-31T23:59:59.999Z). */
const LATEST_MS = Date.UTC(10_000, 0, 1) - 1;

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

/**
 * The alert pages' reads (issue 18): pending and firing alerts from alert_states (the aggregator's evaluator
 * writes them) with what mutes each now — the silences and maintenance windows the evaluator applies, matched
 * by the same libs/alerting code — and the delivery log. Reads only, through the repositories.
 */
@Injectable()
export class AlertsReadService {
  constructor(
    private readonly alerts: AlertsReadRepository,
    private readonly deliveries: AlertDeliveriesRepository,
    private readonly config: AlertConfigRepository,
    private readonly silences: AlertEvaluationReaderRepository,
    private readonly events: AlertEventsRepository,
    private readonly live: LiveStateStore,
    @Inject(GATEWAY_CONFIG) private readonly gateway: Pick<GatewayConfig, 'site'>,
    private readonly corrupt: CorruptRecords,
    private readonly states: TargetStatesRepository,
  ) {}

  /** Firing alerts now (the overview's count). */
  async firingCount(): Promise<number> {
    return (await this.alerts.counts()).firing;
  }

  async list(query: ListAlertsQuery, nowMs = Date.now()): Promise<AlertListResponse> {
    const after = query.cursor ? parseAlertCursor(query.cursor) : undefined;
    // One more than asked tells whether a next page exists.
    const [rows, counts] = await Promise.all([
      this.alerts.list({
        states: query.state ?? ALERT_LIST_STATES,
        ruleId: query.ruleId,
        targetId: query.targetId,
        after,
        limit: query.limit + 1,
      }),
      this.alerts.counts(),
    ]);
    const page = rows.slice(0, query.limit);
    const targetIds = [...new Set(page.map((r) => r.targetId))];
    const [read, muterInputs] = await Promise.all([
      this.live.readTargets(targetIds, this.corrupt.note),
      page.length ? this.muterInputs(nowMs) : Promise.resolve({ silences: [], windows: [] }),
    ]);
    // A target whose record in live state cannot be read (corrupt) fails no page: its alerts are listed with it as its
    // durable state (Postgres) holds it — name, tags, locations — which is what the evaluator matched maintenance
    // windows against (one query a page, none without such a target); one Postgres does not hold is matched as a
    // target live state does not hold, without its name. Counted and logged (durableTargets).
    const durable = await durableTargets(this.states, read.unreadable, this.corrupt.note);
    const targets = new Map(read.targets);
    for (const [id, d] of durable) if (!targets.has(id)) targets.set(id, d.record);
    const site = this.gateway.site;
    const muter = createMuter({
      ...muterInputs,
      now: nowMs,
      targetOf: (id): AlertTarget | undefined => {
        const t = targets.get(id);
        return t
          ? {
              id,
              kind: t.kind,
              instanceKind: t.instanceKind,
              name: t.name,
              site,
              tags: t.tags,
              locations: Object.keys(t.locations),
            }
          : undefined;
      },
    });
    const items = page.map((r): AlertView => {
      const muted = muter.reasonFor(r.labels, r.targetId);
      const since = r.state === 'firing' ? (r.firedAt ?? r.activeAt) : r.activeAt;
      return {
        id: r.fingerprint,
        ruleId: r.ruleId,
        ruleName: r.labels['alertname'] ?? r.ruleId,
        severity: r.labels['severity'] ?? 'warning',
        targetId: r.targetId,
        targetName: targets.get(r.targetId)?.name ?? null,
        state: r.state,
        labels: r.labels,
        value: r.value !== null && Number.isFinite(r.value) ? r.value : null,
        since: iso(since) as string,
        durationSeconds: Math.max(0, Math.floor((nowMs - since) / 1000)),
        activeAt: iso(r.activeAt) as string,
        firedAt: iso(r.firedAt),
        lastNotifiedAt: iso(r.lastSentAt),
        muted,
        silenced: muted?.kind === 'silence',
      };
    });
    return {
      items,
      nextCursor: rows.length > query.limit ? alertCursor(page[page.length - 1]) : null,
      counts,
      generatedAt: new Date(nowMs).toISOString(),
    };
  }

  /** The alert history (alert_events, newest first): every state change the evaluator committed. */
  async history(query: AlertHistoryQuery): Promise<AlertHistoryResponse> {
    const before = query.cursor ? parseHistoryCursor(query.cursor) : undefined;
    // Before 1970 is the same as from the start (and a year 0 Postgres would refuse); past 9999 (an offset can take a
    // time of 9999-12-31 into the year 10000, which Postgres refuses) the same as the end of 9999: nothing.
    const since = query.since === undefined ? undefined : Math.min(LATEST_MS, Math.max(0, Date.parse(query.since)));
    const rows = await this.events.list({
      ruleId: query.ruleId,
      targetId: query.targetId,
      since,
      before,
      limit: query.limit + 1,
    });
    const page = rows.slice(0, query.limit);
    return {
      items: page.map((r) => ({
        id: r.id,
        ruleId: r.ruleId,
        ruleName: r.labels['alertname'] ?? r.ruleId,
        severity: r.labels['severity'] ?? 'warning',
        fingerprint: r.fingerprint,
        targetId: r.targetId,
        from: r.from,
        to: r.to,
        labels: r.labels,
        value: r.value !== null && Number.isFinite(r.value) ? r.value : null,
        at: iso(r.at) as string,
        endReason: r.endReason ?? null,
        endReasonText: r.endReason
          ? alertEndReasonText(r.endReason, r.absentSince !== null ? r.at - r.absentSince : null)
          : null,
      })),
      nextCursor:
        rows.length > query.limit ? `${Math.round(page[page.length - 1].at)}_${page[page.length - 1].id}` : null,
    };
  }

  async deliveryLog(query: ListDeliveriesQuery): Promise<DeliveryLogResponse> {
    const rows = await this.deliveries.listLog({
      channelId: query.channelId,
      outcomes: query.outcome,
      test: query.test === undefined ? undefined : query.test === 'true',
      beforeId: query.cursor,
      limit: query.limit + 1,
    });
    const page = rows.slice(0, query.limit);
    return {
      items: page.map((r) => ({
        id: r.id,
        deliveryId: r.deliveryId,
        channelId: r.channelId,
        channelName: r.channelName,
        channelType: knownChannelType(r.channelType),
        status: r.status === 'resolved' ? 'resolved' : 'firing',
        alerts: r.alerts,
        alertCount: r.alertCount,
        attempt: Math.max(1, r.attempt),
        outcome: r.outcome,
        httpStatus: r.httpStatus,
        error: r.error,
        durationMs: Math.max(0, r.durationMs),
        nextAttemptAt: iso(r.nextAttemptAt),
        test: r.test,
        at: iso(r.at) as string,
      })),
      nextCursor: rows.length > query.limit ? page[page.length - 1].id : null,
    };
  }

  /** The silences and windows as the evaluator reads them: a row that no longer passes the contract is left out. */
  private async muterInputs(nowMs: number): Promise<{ silences: Silence[]; windows: MaintenanceWindow[] }> {
    const [silenceRows, windowRows] = await Promise.all([
      this.silences.unexpiredSilences(nowMs),
      this.config.all('maintenanceWindows'),
    ]);
    const silences: Silence[] = [];
    for (const row of silenceRows) {
      const s = silenceSpecSchema.safeParse(row.spec);
      if (s.success) silences.push({ ...s.data, id: row.id });
    }
    const windows: MaintenanceWindow[] = [];
    for (const row of windowRows) {
      const w = maintenanceWindowSpecSchema.safeParse(row.spec);
      if (w.success) windows.push({ ...w.data, id: row.id } as MaintenanceWindow);
    }
    return { silences, windows };
  }
}

function knownChannelType(type: string): ChannelType | 'unknown' {
  return (CHANNEL_TYPES as readonly string[]).includes(type) ? (type as ChannelType) : 'unknown';
}

function alertCursor(r: AlertRow): string {
  return `${Math.round(r.activeAt)}_${r.fingerprint}`;
}

function parseAlertCursor(cursor: string): { activeAt: number; fingerprint: string } {
  const [at, fingerprint] = cursor.split('_');
  return { activeAt: Number(at), fingerprint };
}

function parseHistoryCursor(cursor: string): { at: number; id: string } {
  const i = cursor.indexOf('_');
  return { at: Number(cursor.slice(0, i)), id: cursor.slice(i + 1) };
}
