import { Injectable } from '@nestjs/common';
import {
  TargetKind,
  type InstanceListResponse,
  type ListInstancesQuery,
  type StatusEventsQuery,
  type StatusEventsResponse,
  type StatusSummaryResponse,
  type TargetView,
} from '@fleetwatch/contracts';
import { LiveStateStore } from '@fleetwatch/live-state';
import { StatusEventsRepository, type StatusEventRecord } from '@fleetwatch/persistence';
import { AlertsReadService } from '../alerting/alerts-read.service';
import { TargetsService } from '../targets/targets.service';

const INSTANCE_PREFIX = 'instance:';

export function eventCursor(e: StatusEventRecord): string {
  return `${Math.round(e.at)}_${e.id}`;
}

export function parseEventCursor(cursor: string): { at: number; id: string } {
  const [at, id] = cursor.split('_');
  return { at: Number(at), id };
}

export function toInstanceView(t: TargetView): InstanceListResponse['items'][number] {
  return {
    instanceId: t.id.startsWith(INSTANCE_PREFIX) ? t.id.slice(INSTANCE_PREFIX.length) : t.id,
    id: t.id,
    name: t.name,
    status: t.status,
    instanceKind: t.instanceKind,
    lifecycle: t.lifecycle,
    locations: t.locations.map((l) => ({
      location: l.location,
      status: l.status,
      lastSeen: l.lastSeen,
      latencyMs: l.latencyMs,
      detail: l.detail,
    })),
    lastSeen: t.lastSeen,
    since: t.since,
    tags: t.tags,
    labels: t.labels,
  };
}

/**
 * What the overview and pushed-instances pages read (issue 17): counts over the whole
 * live set (the status and kind indexes of live state, one SCARD each, whatever filter a
 * list has on; read in one MULTI, so they add up), recent status events from Postgres, and pushed instances.
 */
@Injectable()
export class StatusService {
  constructor(
    private readonly live: LiveStateStore,
    private readonly events: StatusEventsRepository,
    private readonly targets: TargetsService,
    private readonly alerts: AlertsReadService,
  ) {}

  async summary(now = new Date()): Promise<StatusSummaryResponse> {
    const [{ total, byStatus, byKind }, firing] = await Promise.all([
      this.live.counts(),
      // Postgres away: the counts of live state still answer; the alert count is unknown (null) meanwhile.
      this.alerts.firingCount().catch(() => null),
    ]);
    return { total, byStatus, byKind, alerts: { firing }, generatedAt: now.toISOString() };
  }

  async recentEvents(query: StatusEventsQuery): Promise<StatusEventsResponse> {
    // One more than asked tells whether a next page exists.
    const rows = await this.events.listRecent({
      limit: query.limit + 1,
      before: query.cursor ? parseEventCursor(query.cursor) : undefined,
      targetId: query.targetId,
    });
    const page = rows.slice(0, query.limit);
    return {
      items: page.map((e) => ({
        id: e.id,
        targetId: e.targetId,
        kind: e.kind,
        location: e.location,
        from: e.from,
        to: e.to,
        reason: e.reason,
        at: new Date(e.at).toISOString(),
        sequence: e.sequence,
      })),
      nextCursor: rows.length > query.limit ? eventCursor(page[page.length - 1]) : null,
    };
  }

  async instances(query: ListInstancesQuery): Promise<InstanceListResponse> {
    const page = await this.targets.list({
      // The kinds asked for are pushed instances' own (any of them); none: every instance.
      kind: query.kind?.length ? query.kind : [TargetKind.Instance],
      status: query.status,
      tag: query.tag,
      location: query.location,
      limit: query.limit,
      cursor: query.cursor,
    });
    return { items: page.items.map(toInstanceView), nextCursor: page.nextCursor, total: page.total };
  }
}
