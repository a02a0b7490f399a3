import {
  isInstanceKind,
  kindSelected,
  WS_MAX_SUBSCRIPTIONS,
  type InstanceKind,
  type StatusChangedPayload,
  type WsClientMessage,
  type WsStatusFilter,
  type WsTopic,
} from '@fleetwatch/contracts';

type Subscribe = Extract<WsClientMessage, { type: 'subscribe' }>;

/**
 * What a status filter may need of the target beyond the event: its tags, and a pushed instance's own kind. Read from
 * live state only when a filter names a tag or an instance kind; null: unknown (not read, or live state unavailable).
 */
export interface SeenTarget {
  tags: readonly string[];
  instanceKind: InstanceKind | null;
}

/** Whether a status change passes a filter; `seen` is the target as live state has it (see SeenTarget). */
export function statusMatches(filter: WsStatusFilter, event: StatusChangedPayload, seen: SeenTarget | null): boolean {
  if (filter.kind && !kindSelected(filter.kind, event.kind, seen?.instanceKind)) return false;
  if (filter.status && !filter.status.includes(event.to)) return false;
  // A change of the consensus (location null) concerns every location of the target.
  if (filter.location && event.location !== null && event.location !== filter.location) return false;
  if (filter.targetIds && !filter.targetIds.includes(event.targetId)) return false;
  if (filter.tag && !(seen?.tags ?? []).includes(filter.tag)) return false;
  return true;
}

/** One socket's subscriptions, by the client's ids. */
export class SocketSubscriptions {
  private readonly byId = new Map<string, Subscribe>();

  /** Adds (or replaces) a subscription; returns an error message when the socket holds too many. */
  add(message: Subscribe): string | null {
    if (!this.byId.has(message.id) && this.byId.size >= WS_MAX_SUBSCRIPTIONS)
      return `at most ${WS_MAX_SUBSCRIPTIONS} subscriptions per socket: unsubscribe first`;
    this.byId.set(message.id, message);
    return null;
  }

  remove(id: string): boolean {
    return this.byId.delete(id);
  }

  get size(): number {
    return this.byId.size;
  }

  topics(): Set<WsTopic> {
    return new Set([...this.byId.values()].map((s) => s.topic));
  }

  /** Whether any status subscription needs the target as live state has it (its tags, its instance kind) to decide. */
  needsTarget(): boolean {
    return [...this.byId.values()].some(
      (s) => s.topic === 'status' && (s.filter.tag !== undefined || (s.filter.kind ?? []).some(isInstanceKind)),
    );
  }

  /** Ids of the subscriptions a status change reaches: status filters, and the target's own subscription. */
  matchStatus(event: StatusChangedPayload, seen: SeenTarget | null): string[] {
    const ids: string[] = [];
    for (const s of this.byId.values()) {
      if (s.topic === 'status' && statusMatches(s.filter, event, seen)) ids.push(s.id);
      else if (s.topic === 'target' && s.targetId === event.targetId) ids.push(s.id);
    }
    return ids;
  }

  targetIds(): string[] {
    return [...this.byId.values()].flatMap((s) => (s.topic === 'target' ? [s.targetId] : []));
  }

  subscriptionsOfTarget(targetId: string): string[] {
    return [...this.byId.values()].filter((s) => s.topic === 'target' && s.targetId === targetId).map((s) => s.id);
  }

  hostIds(): string[] {
    return [...this.byId.values()].flatMap((s) => (s.topic === 'host-metrics' ? s.hostIds : []));
  }

  subscriptionsOfHost(hostId: string): string[] {
    return [...this.byId.values()]
      .filter((s) => s.topic === 'host-metrics' && s.hostIds.includes(hostId))
      .map((s) => s.id);
  }
}
