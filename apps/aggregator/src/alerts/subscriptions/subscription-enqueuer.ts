import {
  statusChangedPayloadSchema,
  subscriptionSpecSchema,
  type StatusChangeDelivery,
  type StatusChangedPayload,
  type SubscriptionSpec,
} from '@fleetwatch/contracts';
import { statusChangeBody, subscriptionMatches, type AlertTarget } from '@fleetwatch/alerting';
import type { TargetSnapshot } from '@fleetwatch/domain';
import type { NewSubscriptionDelivery, SubscriptionRecord } from '@fleetwatch/persistence';

// Status events → subscription deliveries (issue 18, SPEC §7). Pure over what the caller read: the enabled
// subscriptions and the events' targets (tags, name, locations). A stored spec that no longer parses (a
// newer writer's field) is skipped, never sent with a guessed meaning.

export interface StatusEventIn {
  /** The event's id (the envelope id: the status event's id, the same on every redelivery). */
  id: string;
  payload: StatusChangedPayload;
}

export function parseSubscriptions(
  records: readonly SubscriptionRecord[],
): Array<{ id: string; spec: SubscriptionSpec }> {
  const out: Array<{ id: string; spec: SubscriptionSpec }> = [];
  for (const r of records) {
    const parsed = subscriptionSpecSchema.safeParse(r.spec);
    if (parsed.success) out.push({ id: r.id, spec: parsed.data });
  }
  return out;
}

/** Validates a bus payload as a status.changed (null: not one). */
export function statusChangeOf(payload: unknown): StatusChangedPayload | null {
  const r = statusChangedPayloadSchema.safeParse(payload);
  return r.success ? r.data : null;
}

export function deliveriesFor(
  events: readonly StatusEventIn[],
  subscriptions: ReadonlyArray<{ id: string; spec: SubscriptionSpec }>,
  targets: ReadonlyMap<string, TargetSnapshot>,
  site: string,
): NewSubscriptionDelivery[] {
  const out: NewSubscriptionDelivery[] = [];
  for (const { id, payload: e } of events) {
    const snap = targets.get(e.targetId);
    const target: AlertTarget = {
      id: e.targetId,
      kind: e.kind,
      instanceKind: snap?.instanceKind ?? null,
      name: snap?.name ?? e.targetId,
      site,
      tags: snap?.tags ?? [],
      locations: snap ? Object.keys(snap.locations) : e.location ? [e.location] : [],
    };
    for (const s of subscriptions) {
      if (!subscriptionMatches(s.spec, e, target)) continue;
      const body: StatusChangeDelivery = {
        version: '1',
        type: 'status.changed',
        eventId: id,
        subscriptionId: s.id,
        site,
        targetId: e.targetId,
        kind: e.kind,
        location: e.location,
        from: e.from,
        to: e.to,
        reason: e.reason,
        at: e.at,
        sequence: e.sequence,
        target: { name: snap?.name ?? null, tags: [...(snap?.tags ?? [])] },
      };
      out.push({ subscriptionId: s.id, eventId: id, targetId: e.targetId, body: statusChangeBody(body) });
    }
  }
  return out;
}
