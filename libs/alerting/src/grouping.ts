import { durationMs, type AlertGrouping } from '@fleetwatch/contracts';
import type { AlertNotification } from './engine';
import type { CompiledAlertRule } from './rule';

// Notification grouping with Alertmanager's timing, as a pure scheduler. Per channel, alerts with equal
// values of the `groupBy` labels form a group. A new group waits `groupWait` for company before its first
// message; after that, changes (new firing, resolved, a repeat the engine asked for) go out at most once
// per `groupInterval`. Each message carries the group's whole picture: every alert still firing and those
// resolved since the last message. A group with nothing firing left is dropped after its message (before any,
// when it never sent one).
//
// Silences and maintenance are asked again when a message goes out (Alertmanager mutes at send time too): the
// engine decided an alert's first notification before the wait, and a silence made meanwhile — someone saw it on
// the dashboard within group_wait or group_interval — must still keep it from the receiver. Such an alert is held
// back (`held`) until its mute ends; one that resolves while held was never announced, so nothing is said of it.

export interface NotificationGroup {
  key: string;
  channelId: string;
  groupLabels: Record<string, string>;
  groupWaitMs: number;
  groupIntervalMs: number;
  createdAt: number;
  lastFlushAt: number | null;
  /** Latest notification per alert fingerprint. */
  alerts: Record<string, AlertNotification>;
  /** Something changed since the last message (or an alert is held back, muted, and waits for its mute to end). */
  dirty: boolean;
  /**
   * The alerts whose notification came after the last message, by fingerprint: true when the alert was not in the
   * group before (new to its receiver). Absent in groups stored before it existed: every change is news, nothing held.
   */
  changed?: Record<string, boolean>;
  /** Fingerprints of firing alerts never announced to this receiver because they were muted; absent: none. */
  held?: string[];
  /**
   * When the group reminds its receiver of what still fires although nothing changed: an alert's repeat was kept
   * quiet because the group sent lately, and is due a repeat interval after that message. Absent: none pending.
   */
  repeatAt?: number;
}

/** All groups, by key. Plain JSON: persist it to survive a restart without re-sending. */
export interface GroupingState {
  groups: Record<string, NotificationGroup>;
}

export const emptyGroupingState = (): GroupingState => ({ groups: {} });

/** One message to send to one channel. */
export interface GroupFlush {
  channelId: string;
  groupKey: string;
  groupLabels: Record<string, string>;
  firing: AlertNotification[];
  resolved: AlertNotification[];
  at: number;
}

/** Where a rule's notifications go and how they are grouped. */
export interface NotificationRoute {
  channels: readonly string[];
  grouping: AlertGrouping;
  /** The rule's repeat interval (its own, or its grouping's); absent: every repeat is news. */
  repeatIntervalMs?: number;
}

export function routesOf(rules: readonly CompiledAlertRule[]): Map<string, NotificationRoute> {
  return new Map(
    rules.map((r) => [r.id, { channels: r.rule.channels, grouping: r.grouping, repeatIntervalMs: r.repeatIntervalMs }]),
  );
}

/** The labels an alert is grouped by (every label for `...`). */
export function groupLabelsOf(
  groupBy: readonly string[],
  labels: Readonly<Record<string, string>>,
): Record<string, string> {
  if (groupBy.length === 1 && groupBy[0] === '...') return { ...labels };
  const out: Record<string, string> = {};
  for (const name of groupBy) out[name] = labels[name] ?? '';
  return out;
}

function groupKeyOf(channelId: string, groupLabels: Record<string, string>): string {
  return `${channelId}\u0000${JSON.stringify(Object.entries(groupLabels).sort(([a], [b]) => (a < b ? -1 : 1)))}`;
}

/**
 * Adds the engine's notifications to their groups (one per channel of the alert's rule). A resolved alert
 * goes to every group that holds it — also when its rule was deleted or now routes elsewhere (other
 * channels, other groupBy): the channels told it fired are the ones to tell it resolved.
 */
export function addToGroups(
  state: GroupingState,
  notifications: readonly AlertNotification[],
  routes: ReadonlyMap<string, NotificationRoute>,
  now: number,
): GroupingState {
  if (!notifications.length) return state;
  const groups = { ...state.groups };
  // Groups copied in this call: changed in place from then on (a copy per notification would be quadratic).
  const copied = new Set<string>();
  // `remindAt` (a quiet repeat): kept in the group (the latest value) without making it send a message now, but a
  // reminder at that time.
  const put = (
    key: string,
    n: AlertNotification,
    create: () => NotificationGroup,
    remindAt: number | null = null,
  ): void => {
    const prev = groups[key];
    const fp = n.fingerprint;
    const quiet = remindAt !== null;
    const repeatAt = quiet ? Math.min(prev?.repeatAt ?? remindAt, remindAt) : prev?.repeatAt;
    if (prev && copied.has(key)) {
      if (repeatAt !== undefined) prev.repeatAt = repeatAt;
      if (!quiet) {
        prev.dirty = true;
        if (prev.changed) prev.changed[fp] ??= !Object.hasOwn(prev.alerts, fp);
      }
      prev.alerts[fp] = n;
      return;
    }
    copied.add(key);
    groups[key] = prev
      ? {
          ...prev,
          alerts: { ...prev.alerts, [fp]: n },
          ...(repeatAt !== undefined ? { repeatAt } : {}),
          ...(quiet
            ? {}
            : {
                dirty: true,
                // A group stored before `changed` existed keeps going without it (every change is news, nothing held).
                ...(prev.changed ? { changed: { [fp]: !Object.hasOwn(prev.alerts, fp), ...prev.changed } } : {}),
              }),
        }
      : create();
  };
  // Which groups hold a fingerprint, built once when a resolved alert needs it.
  let holders: Map<string, string[]> | null = null;
  const holdersOf = (fingerprint: string): string[] => {
    if (!holders) {
      holders = new Map();
      for (const g of Object.values(state.groups))
        for (const f of Object.keys(g.alerts)) {
          const list = holders.get(f) ?? [];
          list.push(g.key);
          holders.set(f, list);
        }
    }
    return holders.get(fingerprint) ?? [];
  };
  for (const n of notifications) {
    const route = routes.get(n.ruleId);
    if (n.kind === 'resolved') {
      const keys = new Set(holdersOf(n.fingerprint));
      if (route) {
        const groupLabels = groupLabelsOf(route.grouping.groupBy, n.labels);
        for (const channelId of route.channels) keys.add(groupKeyOf(channelId, groupLabels));
      }
      // A resolved alert a group never heard of has nothing to close.
      for (const key of keys) if (groups[key]) put(key, n, () => groups[key] as NotificationGroup);
      continue;
    }
    if (!route) continue;
    const groupLabels = groupLabelsOf(route.grouping.groupBy, n.labels);
    for (const channelId of route.channels) {
      const key = groupKeyOf(channelId, groupLabels);
      put(
        key,
        n,
        () => ({
          key,
          channelId,
          groupLabels,
          groupWaitMs: durationMs(route.grouping.groupWait),
          groupIntervalMs: durationMs(route.grouping.groupInterval),
          createdAt: now,
          lastFlushAt: null,
          alerts: { [n.fingerprint]: n },
          dirty: true,
          changed: { [n.fingerprint]: true },
        }),
        quietRepeat(groups[key], n, route, now),
      );
    }
  }
  return { groups };
}

/**
 * When the group is to remind its receiver instead of sending for an engine's repeat of an alert, or null when the
 * repeat is news. A repeat is no reason for its group to send now when the group's messages carry the alert
 * already, and the group sent one within the repeat interval (less group_wait or group_interval: the engine decided
 * the alert's last notification up to that much before the group sent it). The engine repeats each alert on its own clock: a
 * group of alerts that fired at different times would otherwise send its whole picture once per alert per repeat
 * interval — every group interval, for a large group — where Alertmanager repeats a group once per repeat interval.
 */
function quietRepeat(
  g: NotificationGroup | undefined,
  n: AlertNotification,
  route: NotificationRoute,
  now: number,
): number | null {
  if (n.kind !== 'repeat' || !g || g.lastFlushAt === null || route.repeatIntervalMs === undefined) return null;
  const carried = g.alerts[n.fingerprint];
  if (!carried || carried.kind === 'resolved' || g.held?.includes(n.fingerprint)) return null;
  if (now - g.lastFlushAt >= route.repeatIntervalMs - Math.max(g.groupIntervalMs, g.groupWaitMs)) return null;
  // Still a reminder a repeat interval after the group's message — not at the alert's next own repeat, up to almost
  // a second interval later.
  return g.lastFlushAt + route.repeatIntervalMs;
}

function dueAt(g: NotificationGroup): number {
  return g.lastFlushAt === null ? g.createdAt + g.groupWaitMs : g.lastFlushAt + g.groupIntervalMs;
}

/** When the next message is due (null: nothing waiting). */
export function nextFlushAt(state: GroupingState): number | null {
  let next: number | null = null;
  for (const g of Object.values(state.groups)) {
    if (g.dirty && (next === null || dueAt(g) < next)) next = dueAt(g);
    if (g.repeatAt !== undefined && (next === null || g.repeatAt < next)) next = g.repeatAt;
  }
  return next;
}

/**
 * The messages due at `now`, and the state after sending them. `isMuted`: whether a silence or maintenance window
 * mutes an alert now — a firing alert this group's receiver was not told of yet is then held back until it is not.
 */
export function flushDue(
  state: GroupingState,
  now: number,
  isMuted?: (alert: AlertNotification) => boolean,
): { state: GroupingState; flushes: GroupFlush[] } {
  const flushes: GroupFlush[] = [];
  let groups: Record<string, NotificationGroup> | null = null;
  for (const g of Object.values(state.groups)) {
    // A reminder due (a quiet repeat's): the group sends what still fires, changed or not — unless all of it is muted
    // now (the engine does not repeat a muted alert either).
    const remind = g.repeatAt !== undefined && now >= g.repeatAt;
    if (!remind && (!g.dirty || now < dueAt(g))) continue;
    const changed = g.changed;
    const held = new Set(g.held ?? []);
    const isChanged = (a: AlertNotification) => changed === undefined || Object.hasOwn(changed, a.fingerprint);
    const isNew = (a: AlertNotification) => changed !== undefined && changed[a.fingerprint] === true;
    const all = Object.values(g.alerts);
    const live = all.filter((a) => a.kind !== 'resolved');
    // Muted and never told to this receiver: held back before, or new to the group since the last message.
    const hold = isMuted ? live.filter((a) => (held.has(a.fingerprint) || isNew(a)) && isMuted(a)) : [];
    const holding = new Set(hold.map((a) => a.fingerprint));
    const firing = hold.length ? live.filter((a) => !holding.has(a.fingerprint)) : live;
    // An alert that resolved while held back was never announced here: nothing to close.
    const resolved = all.filter((a) => a.kind === 'resolved' && !held.has(a.fingerprint));
    // What stays after this flush: the firing alerts, those held back marked so, nothing changed since.
    const after = (group: NotificationGroup): NotificationGroup => {
      const out: NotificationGroup = {
        ...group,
        dirty: hold.length > 0,
        alerts: Object.fromEntries(live.map((a) => [a.fingerprint, a])),
        changed: {},
      };
      if (hold.length) out.held = [...holding];
      else delete out.held;
      return out;
    };
    // Something for the receiver: a resolution, or a firing alert changed (new, a repeat) or released since the last
    // message. Held-back alerts alone are no news: the group waits, dirty, for their mute to end.
    const news =
      resolved.length > 0 ||
      (remind && firing.some((a) => !(isMuted?.(a) ?? false))) ||
      firing.some((a) => isChanged(a) || held.has(a.fingerprint));
    if (!news) {
      // Still held, nothing else: the very same group (nothing to write while a mute lasts).
      const same =
        live.length === all.length &&
        changed !== undefined &&
        Object.keys(changed).length === 0 &&
        holding.size === held.size &&
        hold.every((a) => held.has(a.fingerprint));
      if (same) continue;
      groups ??= { ...state.groups };
      if (live.length) groups[g.key] = after(g);
      else delete groups[g.key];
      continue;
    }
    groups ??= { ...state.groups };
    // A group that never sent a message and has nothing firing left: its alerts resolved within group_wait, and no
    // receiver was told they fired — a lone "resolved" would announce an incident nobody opened (Alertmanager
    // sends nothing then either).
    if (!firing.length && g.lastFlushAt === null) {
      if (hold.length) groups[g.key] = after(g);
      else delete groups[g.key];
      continue;
    }
    flushes.push({ channelId: g.channelId, groupKey: g.key, groupLabels: g.groupLabels, firing, resolved, at: now });
    if (live.length) {
      const sent = after({ ...g, lastFlushAt: now });
      delete sent.repeatAt;
      groups[g.key] = sent;
    } else delete groups[g.key];
  }
  return { state: groups ? { groups } : state, flushes };
}
