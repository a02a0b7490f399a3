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
// An alert announced before its mute began is left out of the group's messages while the mute lasts (`omitted`:
// Alertmanager drops muted alerts from notifications too) and is back in the first message after it ends; its
// resolution is still sent (its receiver was told it fired). An alert that fired, was muted and resolved between two
// messages was never announced either: its resolution is not sent.

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
   * Fingerprints of firing alerts announced before, left out of the last message because they were muted then (back
   * in the first message after the mute ends); absent: none.
   */
  omitted?: string[];
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
  // Own labels only: a name like `constructor` or `toString` read Object.prototype's member (grouped by a function).
  for (const name of groupBy) out[name] = Object.hasOwn(labels, name) ? labels[name] : '';
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
 * Alerts firing and announced already (`firing`: one notification each, kind `firing`), into the groups of their
 * route that do not hold them — only those. The engine decides an alert's "firing" once, so a channel added to a rule
 * while its alert fired (a pager attached to an incident in progress), or a grouping changed, heard of it at the
 * alert's next repeat (4 h by default) or never. Called after a configuration reload; the groups that hold an alert
 * already are left as they are (their receivers were told).
 *
 * A grouping changed (the rule's groupBy): an alert a channel carries as firing in a group other than its route's now
 * moves — that group tells its receiver the alert ended there (its next message lists it resolved, so an incident
 * opened under its key, a PagerDuty dedup key, closes; nothing is said of one a mute kept from it) and the route's
 * group announces it. Otherwise the old group kept it for ever, and its next repeat opened a second incident in the new
 * one: one alert in two groups of a channel, each told "firing" and, at its end, "resolved".
 */
export function announceFiring(
  state: GroupingState,
  firing: readonly AlertNotification[],
  routes: ReadonlyMap<string, NotificationRoute>,
  now: number,
): GroupingState {
  // The groups in which each channel carries each alert as firing.
  const carried = new Map<string, string[]>();
  for (const g of Object.values(state.groups))
    for (const [fp, a] of Object.entries(g.alerts)) {
      if (a.kind === 'resolved') continue;
      const k = `${g.channelId}\u0000${fp}`;
      const list = carried.get(k);
      if (list) list.push(g.key);
      else carried.set(k, [g.key]);
    }
  // Alerts missing from the same channels go in together, one addToGroups call per set of channels (usually one: the
  // channel added to a rule): a call per rule copied every group each time — seconds for a thousand rules.
  const batches = new Map<string, { notifications: AlertNotification[]; routes: Map<string, NotificationRoute> }>();
  /** Groups that carry an alert their channel now groups elsewhere: group key → fingerprints to end there. */
  const moved = new Map<string, string[]>();
  for (const n of firing) {
    const route = routes.get(n.ruleId);
    if (!route) continue;
    const groupLabels = groupLabelsOf(route.grouping.groupBy, n.labels);
    const missing: string[] = [];
    for (const channelId of route.channels) {
      const want = groupKeyOf(channelId, groupLabels);
      const holders = carried.get(`${channelId}\u0000${n.fingerprint}`) ?? [];
      for (const key of holders)
        if (key !== want) {
          const list = moved.get(key);
          if (list) list.push(n.fingerprint);
          else moved.set(key, [n.fingerprint]);
        }
      if (!holders.includes(want)) missing.push(channelId);
    }
    if (missing.length === 0) continue;
    const key = JSON.stringify(missing);
    let batch = batches.get(key);
    if (!batch) batches.set(key, (batch = { notifications: [], routes: new Map() }));
    batch.notifications.push(n);
    batch.routes.set(n.ruleId, { ...route, channels: missing });
  }
  let next = moved.size ? endInGroups(state, moved, now) : state;
  for (const b of batches.values()) next = addToGroups(next, b.notifications, b.routes, now);
  return next;
}

/**
 * Ends alerts in groups that no longer carry them (their grouping changed): each listed as resolved at `now` in the
 * group's next message — a change, as a resolution is (flushDue says nothing of one its receiver never heard of).
 */
function endInGroups(state: GroupingState, ending: ReadonlyMap<string, readonly string[]>, now: number): GroupingState {
  const groups = { ...state.groups };
  for (const [key, fingerprints] of ending) {
    const g = groups[key];
    if (!g) continue;
    const alerts = { ...g.alerts };
    const changed = g.changed ? { ...g.changed } : undefined;
    for (const fp of fingerprints) {
      const a = alerts[fp];
      if (!a || a.kind === 'resolved') continue;
      alerts[fp] = { ...a, kind: 'resolved', resolvedAt: now, at: now };
      if (changed) changed[fp] ??= false;
    }
    groups[key] = { ...g, alerts, dirty: true, ...(changed ? { changed } : {}) };
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
    // A group stored before `changed` existed keeps going without it (every change is news, nothing held or left
    // out): which of its alerts its receiver was told of is not known, and one left out would wait for its repeat.
    const mutedNow =
      isMuted && changed !== undefined
        ? new Set(live.filter((a) => isMuted(a)).map((a) => a.fingerprint))
        : new Set<string>();
    // Muted and never told to this receiver: held back before, or new to the group since the last message.
    const hold = live.filter((a) => mutedNow.has(a.fingerprint) && (held.has(a.fingerprint) || isNew(a)));
    const holding = new Set(hold.map((a) => a.fingerprint));
    // In the message: what fires and no mute holds now (an alert announced before its mute is left out while it
    // lasts).
    const firing = mutedNow.size ? live.filter((a) => !mutedNow.has(a.fingerprint)) : live;
    const omitted = new Set(g.omitted ?? []);
    // Nothing to close for an alert never announced here because a mute held it back: one that resolved while held,
    // or that fired, was muted and resolved since the last message (new to the group, muted when it resolved — the
    // engine marks it — or now). One that fired and resolved unmuted between two messages is in the next one as
    // resolved (Alertmanager's messages carry it too).
    const resolved = all.filter(
      (a) =>
        a.kind === 'resolved' &&
        !held.has(a.fingerprint) &&
        !(isNew(a) && (a.muted === true || (isMuted?.(a) ?? false))),
    );
    // What stays after this flush: the firing alerts, those held back or (when a message went out) left out marked so,
    // nothing changed since. A group with alerts held or left out stays dirty: its mutes are asked again each interval.
    const after = (group: NotificationGroup, sent: boolean): NotificationGroup => {
      const left = sent
        ? live.filter((a) => mutedNow.has(a.fingerprint) && !holding.has(a.fingerprint)).map((a) => a.fingerprint)
        : live.filter((a) => omitted.has(a.fingerprint)).map((a) => a.fingerprint);
      const out: NotificationGroup = {
        ...group,
        dirty: hold.length > 0 || left.length > 0,
        alerts: Object.fromEntries(live.map((a) => [a.fingerprint, a])),
        changed: {},
      };
      if (hold.length) out.held = [...holding];
      else delete out.held;
      if (left.length) out.omitted = left;
      else delete out.omitted;
      return out;
    };
    // Something for the receiver: a resolution, or a firing alert changed (new, a repeat) or released since the last
    // message (held back, or left out of it). Muted alerts alone are no news: the group waits, dirty, for their mute to
    // end.
    const news =
      resolved.length > 0 ||
      (remind && firing.length > 0) ||
      firing.some((a) => isChanged(a) || held.has(a.fingerprint) || omitted.has(a.fingerprint));
    if (!news) {
      // Still held or left out, nothing else: the very same group (nothing to write while a mute lasts).
      const same =
        live.length === all.length &&
        changed !== undefined &&
        Object.keys(changed).length === 0 &&
        holding.size === held.size &&
        hold.every((a) => held.has(a.fingerprint));
      if (same) continue;
      groups ??= { ...state.groups };
      if (live.length) groups[g.key] = after(g, false);
      else delete groups[g.key];
      continue;
    }
    groups ??= { ...state.groups };
    // A group that never sent a message and has nothing firing left: its alerts resolved within group_wait, and no
    // receiver was told they fired — a lone "resolved" would announce an incident nobody opened (Alertmanager
    // sends nothing then either).
    if (!firing.length && g.lastFlushAt === null) {
      if (hold.length) groups[g.key] = after(g, false);
      else delete groups[g.key];
      continue;
    }
    flushes.push({ channelId: g.channelId, groupKey: g.key, groupLabels: g.groupLabels, firing, resolved, at: now });
    if (live.length) {
      const sent = after({ ...g, lastFlushAt: now }, true);
      delete sent.repeatAt;
      groups[g.key] = sent;
    } else delete groups[g.key];
  }
  return { state: groups ? { groups } : state, flushes };
}
