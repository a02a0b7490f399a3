import { Injectable } from '@nestjs/common';
import {
  type PingsResponse,
  type PushedUpdatesResponse,
  type ReceivedQuery,
  type TargetStatus,
} from '@fleetwatch/contracts';
import { NotFoundError } from '@fleetwatch/domain';
import { LiveStateStore } from '@fleetwatch/live-state';
import { HistoryReadRepository, ReceivedRepository, type ReceivedPage } from '@fleetwatch/persistence';
import { checkId } from '../targets/targets.service';

const cursorOf = (at: Date, id: bigint) => `${at.getTime()}_${id.toString()}`;

function pageOf(query: ReceivedQuery): ReceivedPage {
  if (!query.cursor) return { limit: query.limit + 1 };
  const [at, id] = query.cursor.split('_');
  return { limit: query.limit + 1, before: { at: Number(at), id: BigInt(id) } };
}

/** A label map as stored (jsonb object of strings), or null for anything else. */
function labelsOf(v: unknown): Record<string, string> | null {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return null;
  const out: Record<string, string> = {};
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) if (typeof x === 'string') out[k] = x;
  return out;
}

/**
 * What a target received, read back as stored (SPEC §6: what was accepted is kept): an instance's pushed updates with
 * every field as accepted (source, labels, message, metadata), a heartbeat monitor's pings with their bodies.
 */
@Injectable()
export class ReceivedService {
  constructor(
    private readonly received: ReceivedRepository,
    private readonly history: HistoryReadRepository,
    private readonly live: LiveStateStore,
  ) {}

  /** Nothing stored: 404 when no target has this id (a target that received nothing yet has an empty page). */
  private async emptyOr404(id: string): Promise<void> {
    if (!(await this.live.getTarget(id)) && !(await this.history.targetExists(id)))
      throw new NotFoundError(`target ${JSON.stringify(id)} not found`);
  }

  async updates(id: string, query: ReceivedQuery): Promise<PushedUpdatesResponse> {
    checkId(id);
    const rows = await this.received.updates(id, pageOf(query));
    if (rows.length === 0 && !query.cursor) await this.emptyOr404(id);
    const page = rows.slice(0, query.limit);
    const last = page[page.length - 1];
    return {
      targetId: id,
      items: page.map((u) => ({
        updateId: u.updateId,
        messageId: u.messageId,
        instanceId: u.instanceId,
        kind: u.kind,
        lifecycle: u.lifecycleStatus,
        status: u.status as TargetStatus,
        source: u.source,
        location: u.location,
        occurredAt: u.occurredAt.toISOString(),
        receivedAt: u.receivedAt.toISOString(),
        labels: labelsOf(u.labels),
        message: u.message,
        metadata: u.metadata ?? null,
      })),
      nextCursor: rows.length > query.limit && last ? cursorOf(last.occurredAt, last.id) : null,
    };
  }

  async pings(id: string, query: ReceivedQuery): Promise<PingsResponse> {
    checkId(id);
    const rows = await this.received.pings(id, pageOf(query));
    if (rows.length === 0 && !query.cursor) await this.emptyOr404(id);
    const page = rows.slice(0, query.limit);
    const last = page[page.length - 1];
    return {
      targetId: id,
      items: page.map((p) => ({
        messageId: p.messageId,
        signal: p.signal === 'start' || p.signal === 'fail' ? p.signal : 'success',
        exitCode: p.exitCode,
        runId: p.runId,
        location: p.location,
        receivedAt: p.receivedAt.toISOString(),
        body: p.body,
      })),
      nextCursor: rows.length > query.limit && last ? cursorOf(last.receivedAt, last.id) : null,
    };
  }
}
