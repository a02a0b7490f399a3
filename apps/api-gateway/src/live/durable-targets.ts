import type { TargetSnapshot } from '@fleetwatch/domain';
import {
  locationRecordsOf,
  type CorruptPartListener,
  type TargetRecord,
  type UnreadableTarget,
} from '@fleetwatch/live-state';
import type { TargetStatesRepository } from '@fleetwatch/persistence';

/** A target listed from its durable state (Postgres) because its live record cannot be read, and why. */
export interface DurableTarget {
  record: TargetRecord;
  reason: string;
}

/**
 * The durable state (Postgres, as the aggregator last committed it) of targets whose record in live state cannot be
 * read (corrupt), each told to `note` (counted, logged rate-limited). A target Postgres does not hold, or holds as
 * deleted, is left out; Postgres away rejects, as any read of it does (503).
 */
export async function durableTargets(
  states: Pick<TargetStatesRepository, 'findMany'>,
  unreadable: readonly UnreadableTarget[],
  note: CorruptPartListener,
): Promise<Map<string, DurableTarget>> {
  const out = new Map<string, DurableTarget>();
  if (unreadable.length === 0) return out;
  for (const err of unreadable) note(err);
  const reasons = new Map(
    unreadable.map((e) => [
      e.targetId,
      `its record in live state cannot be read (corrupt ${e.field}): shown as the durable state (Postgres) last ` +
        `committed it, until the target is next written`,
    ]),
  );
  for (const t of await states.findMany([...reasons.keys()])) {
    if (t.deletedAt !== null && t.deletedAt !== undefined) continue;
    out.set(t.id, { record: recordOf(t), reason: reasons.get(t.id) ?? '' });
  }
  return out;
}

/** A durable snapshot as live state would hold it: its locations without the aggregator's bookkeeping. */
export function recordOf(t: TargetSnapshot): TargetRecord {
  const locations = locationRecordsOf(t);
  return {
    id: t.id,
    kind: t.kind,
    name: t.name,
    status: t.status,
    since: t.since,
    lastSeen: t.lastSeen,
    lastLatencyMs: t.lastLatencyMs,
    lifecycle: t.lifecycle,
    instanceKind: t.instanceKind ?? null,
    tags: t.tags,
    labels: t.labels,
    seq: t.seq,
    locations,
  };
}
