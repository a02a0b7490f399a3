import { TargetStatus } from '@fleetwatch/contracts';
import {
  addToGroups,
  announceFiring,
  emptyGroupingState,
  flushDue,
  groupLabelsOf,
  nextFlushAt,
  routesOf,
  type GroupingState,
} from './grouping';
import type { AlertNotification } from './engine';
import { alertLabels, compileAlertRule } from './rule';
import { SEC, T0, ruleOf } from './testing/fixtures';

const rule = compileAlertRule(
  ruleOf('down', {
    name: 'Down',
    condition: { type: 'status', statuses: [TargetStatus.Down] },
    channels: ['slack', 'pager'],
    grouping: { groupBy: ['alertname', 'team'], groupWait: '30s', groupInterval: '5m', repeatInterval: '4h' },
  }),
);
const routes = routesOf([rule]);

function n(kind: AlertNotification['kind'], target: string, team: string, at: number): AlertNotification {
  return {
    kind,
    key: `down\u0000${target}`,
    ruleId: 'down',
    targetId: target,
    fingerprint: `fp-${target}`,
    labels: { alertname: 'Down', severity: 'warning', rule_id: 'down', target, team },
    value: null,
    activeAt: at,
    firedAt: at,
    resolvedAt: kind === 'resolved' ? at : null,
    at,
  };
}

/**
 * Feeds notifications at their times and flushes every second; returns the messages of one channel. `muted`: which
 * targets a silence or maintenance window mutes at a time (s after T0).
 */
function simulate(
  events: AlertNotification[],
  until: number,
  channel = 'slack',
  muted?: (target: string, at: number) => boolean,
) {
  let state: GroupingState = emptyGroupingState();
  const out: string[] = [];
  for (let t = T0; t <= T0 + until * SEC; t += SEC) {
    state = addToGroups(
      state,
      events.filter((e) => e.at === t),
      routes,
      t,
    );
    const r = flushDue(state, t, muted ? (a) => muted(a.targetId, (t - T0) / SEC) : undefined);
    state = r.state;
    for (const f of r.flushes)
      if (f.channelId === channel)
        out.push(
          `${(t - T0) / SEC}s team=${f.groupLabels['team']} firing=${f.firing.map((a) => a.targetId).join(',')} resolved=${f.resolved.map((a) => a.targetId).join(',')}`,
        );
  }
  return { out, state };
}

describe('grouping (Alertmanager timing)', () => {
  it('a new group waits group_wait and sends its alerts together; groups by label values', () => {
    const { out } = simulate(
      [n('firing', 'a', 'db', T0), n('firing', 'b', 'db', T0 + 10 * SEC), n('firing', 'c', 'web', T0 + 20 * SEC)],
      120,
    );
    expect(out).toEqual(['30s team=db firing=a,b resolved=', '50s team=web firing=c resolved=']);
  });

  it('after the first message, changes wait for group_interval; the message carries the whole group', () => {
    const { out } = simulate(
      [n('firing', 'a', 'db', T0), n('firing', 'b', 'db', T0 + 60 * SEC), n('resolved', 'a', 'db', T0 + 100 * SEC)],
      700,
    );
    expect(out).toEqual(['30s team=db firing=a resolved=', '330s team=db firing=b resolved=a']);
  });

  it("nothing changed: no message; the engine's repeat, a repeat interval after the message, goes out", () => {
    const { out } = simulate([n('firing', 'a', 'db', T0), n('repeat', 'a', 'db', T0 + 4 * 3600 * SEC)], 15_000);
    expect(out).toEqual(['30s team=db firing=a resolved=', '14400s team=db firing=a resolved=']);
  });

  it("a group is sent again once per repeat interval, however its alerts' own repeats are spread", () => {
    // The engine repeats each alert 4 h after it last decided to send it: a fired at 0, b at 1 h. Each of their
    // repeats made the group send its whole picture again — a group of n alerts fired at different times sent n
    // messages per repeat interval (every group_interval for a large one), where Alertmanager sends one.
    const h = 3600 * SEC;
    const { out } = simulate(
      [
        n('firing', 'a', 'db', T0),
        n('firing', 'b', 'db', T0 + h),
        n('repeat', 'a', 'db', T0 + 4 * h),
        n('repeat', 'b', 'db', T0 + 5 * h),
        n('repeat', 'a', 'db', T0 + 8 * h),
        n('repeat', 'b', 'db', T0 + 9 * h),
      ],
      9 * 3600 + 60,
    );
    expect(out).toEqual([
      '30s team=db firing=a resolved=',
      '3600s team=db firing=a,b resolved=',
      '18000s team=db firing=a,b resolved=',
      '32400s team=db firing=a,b resolved=',
    ]);
  });

  it('a repeat kept quiet because the group sent lately still reminds a repeat interval after that message', () => {
    // a fires at 0; b fires at 3 h and resolves a minute later: the group's message at 3 h 5 min lists a still
    // firing. a's repeat at 4 h is no reason to send then (the group sent 55 min ago) — but the reminder is due a
    // repeat interval after that message (7 h 5 min), not at a's next own repeat (8 h, almost two intervals later).
    const h = 3600 * SEC;
    const { out } = simulate(
      [
        n('firing', 'a', 'db', T0),
        n('firing', 'b', 'db', T0 + 3 * h),
        n('resolved', 'b', 'db', T0 + 3 * h + 60 * SEC),
        n('repeat', 'a', 'db', T0 + 4 * h),
        n('repeat', 'a', 'db', T0 + 8 * h),
      ],
      8 * 3600 + 60,
    );
    expect(out).toEqual([
      '30s team=db firing=a resolved=',
      '10800s team=db firing=a,b resolved=',
      '11100s team=db firing=a resolved=b',
      '25500s team=db firing=a resolved=',
    ]);
  });

  it('that reminder waits while what fires is muted (as the engine does not repeat a muted alert)', () => {
    const h = 3600 * SEC;
    const { out } = simulate(
      [
        n('firing', 'a', 'db', T0),
        n('firing', 'b', 'db', T0 + 3 * h),
        n('resolved', 'b', 'db', T0 + 3 * h + 60 * SEC),
        n('repeat', 'a', 'db', T0 + 4 * h),
      ],
      7 * 3600 + 1800 + 60,
      'slack',
      (target, at) => target === 'a' && at >= 6 * 3600 && at < 7 * 3600 + 1800,
    );
    expect(out).toEqual([
      '30s team=db firing=a resolved=',
      '10800s team=db firing=a,b resolved=',
      '11100s team=db firing=a resolved=b',
      '27000s team=db firing=a resolved=',
    ]);
  });

  it('a group with nothing firing is dropped after its message; a later alert starts a new group with group_wait', () => {
    const { out, state } = simulate(
      [n('firing', 'a', 'db', T0), n('resolved', 'a', 'db', T0 + 40 * SEC), n('firing', 'a', 'db', T0 + 500 * SEC)],
      600,
    );
    expect(out).toEqual([
      '30s team=db firing=a resolved=',
      '330s team=db firing= resolved=a',
      '530s team=db firing=a resolved=',
    ]);
    expect(Object.keys(state.groups)).toHaveLength(2); // slack and pager
  });

  it('an alert resolved within group_wait was never announced: no "resolved" message, the group is dropped', () => {
    const { out, state } = simulate([n('firing', 'a', 'db', T0), n('resolved', 'a', 'db', T0 + 10 * SEC)], 600);
    expect(out).toEqual([]);
    expect(state.groups).toEqual({});
    // With company that still fires, the first message carries both (as Alertmanager's would).
    const mixed = simulate(
      [n('firing', 'a', 'db', T0), n('firing', 'b', 'db', T0 + 5 * SEC), n('resolved', 'a', 'db', T0 + 10 * SEC)],
      60,
    );
    expect(mixed.out).toEqual(['30s team=db firing=b resolved=a']);
  });

  it('every channel of the rule gets its own group; a resolved alert of an unknown group is ignored', () => {
    const s = addToGroups(emptyGroupingState(), [n('firing', 'a', 'db', T0)], routes, T0);
    expect(Object.values(s.groups).map((g) => g.channelId)).toEqual(['slack', 'pager']);
    expect(nextFlushAt(s)).toBe(T0 + 30 * SEC);
    expect(addToGroups(emptyGroupingState(), [n('resolved', 'x', 'db', T0)], routes, T0).groups).toEqual({});
  });

  it('groupBy ["..."] keeps every alert alone', () => {
    const alone = compileAlertRule({ ...rule.rule, grouping: { ...rule.grouping, groupBy: ['...'] } });
    const s = addToGroups(
      emptyGroupingState(),
      [n('firing', 'a', 'db', T0), n('firing', 'b', 'db', T0)],
      routesOf([alone]),
      T0,
    );
    expect(Object.keys(s.groups)).toHaveLength(4);
  });

  describe('a silence or maintenance window that begins before the message goes out', () => {
    const from =
      (start: number, end = Infinity) =>
      (target: string, at: number) =>
        target === 'b' && at >= start && at < end;

    it('mutes an alert still waiting in group_wait; it goes out once the mute ends', () => {
      const { out } = simulate([n('firing', 'b', 'db', T0)], 600, 'slack', from(10, 200));
      expect(out).toEqual(['200s team=db firing=b resolved=']);
    });

    it('mutes a new alert waiting for group_interval; the others are not sent again for it', () => {
      const { out } = simulate(
        [n('firing', 'a', 'db', T0), n('firing', 'b', 'db', T0 + 60 * SEC)],
        1000,
        'slack',
        from(70, 500),
      );
      // 330 s: only b (muted) changed — nothing to say. 500 s: the mute ended; b is announced with the group.
      expect(out).toEqual(['30s team=db firing=a resolved=', '500s team=db firing=a,b resolved=']);
    });

    it('an alert muted until it resolved was never announced: neither firing nor resolved is sent', () => {
      const { out, state } = simulate(
        [n('firing', 'a', 'db', T0), n('firing', 'b', 'db', T0 + 60 * SEC), n('resolved', 'b', 'db', T0 + 400 * SEC)],
        1000,
        'slack',
        from(70),
      );
      expect(out).toEqual(['30s team=db firing=a resolved=']);
      expect(Object.values(state.groups).map((g) => Object.keys(g.alerts))).toEqual([['fp-a'], ['fp-a']]);
      // Alone in its group: the group is dropped without a word.
      const alone = simulate(
        [n('firing', 'b', 'db', T0), n('resolved', 'b', 'db', T0 + 100 * SEC)],
        600,
        'slack',
        from(10),
      );
      expect(alone.out).toEqual([]);
      expect(alone.state.groups).toEqual({});
    });

    it('an alert already announced is left out of the messages while muted, and its resolution is sent', () => {
      const { out } = simulate(
        [n('firing', 'b', 'db', T0), n('firing', 'a', 'db', T0 + 60 * SEC), n('resolved', 'b', 'db', T0 + 700 * SEC)],
        1000,
        'slack',
        from(40),
      );
      expect(out).toEqual([
        '30s team=db firing=b resolved=',
        '330s team=db firing=a resolved=',
        '700s team=db firing=a resolved=b',
      ]);
    });

    it('an announced alert left out while muted is back in the first message after its mute ends', () => {
      const { out, state } = simulate(
        [n('firing', 'b', 'db', T0), n('firing', 'a', 'db', T0 + 60 * SEC)],
        1200,
        'slack',
        from(40, 1000),
      );
      expect(out).toEqual([
        '30s team=db firing=b resolved=',
        '330s team=db firing=a resolved=',
        '1000s team=db firing=b,a resolved=',
      ]);
      expect(Object.values(state.groups).map((g) => g.omitted)).toEqual([undefined, undefined]);
    });

    it("a muted announced alert is not in its group's reminders while another alert of the group fires", () => {
      const h = 3600 * SEC;
      const { out } = simulate(
        // The engine repeats b only (it does not repeat a muted alert).
        [n('firing', 'b', 'db', T0), n('firing', 'a', 'db', T0 + 300 * SEC), n('repeat', 'a', 'db', T0 + 4 * h)],
        4 * 3600 + 1200,
        'slack',
        from(120),
      );
      expect(out).toEqual([
        '30s team=db firing=b resolved=',
        '330s team=db firing=a resolved=',
        '14730s team=db firing=a resolved=',
      ]);
    });

    it('an alert that fired, was muted and resolved between two messages was never announced: no "resolved"', () => {
      const { out, state } = simulate(
        [n('firing', 'a', 'db', T0), n('firing', 'b', 'db', T0 + 60 * SEC), n('resolved', 'b', 'db', T0 + 200 * SEC)],
        1000,
        'slack',
        from(100),
      );
      expect(out).toEqual(['30s team=db firing=a resolved=']);
      expect(Object.values(state.groups).map((g) => Object.keys(g.alerts))).toEqual([['fp-a'], ['fp-a']]);
    });

    it('a group stored before `changed` existed goes on as before: its muted alert is sent, not left waiting', () => {
      let s = addToGroups(emptyGroupingState(), [n('firing', 'a', 'db', T0)], routes, T0);
      s = flushDue(s, T0 + 30 * SEC).state;
      s = addToGroups(s, [n('firing', 'b', 'db', T0 + 60 * SEC)], routes, T0 + 60 * SEC);
      const legacy = JSON.parse(JSON.stringify(s)) as GroupingState;
      for (const g of Object.values(legacy.groups)) delete g.changed;
      const r = flushDue(legacy, T0 + 330 * SEC, () => true);
      expect(r.flushes.map((f) => f.firing.map((a) => a.targetId))).toEqual([
        ['a', 'b'],
        ['a', 'b'],
      ]);
      expect(Object.values(r.state.groups).map((g) => g.dirty)).toEqual([false, false]);
    });

    it('survives JSON: a muted alert held back is still held, and announced once unmuted', () => {
      let s = addToGroups(emptyGroupingState(), [n('firing', 'b', 'db', T0)], routes, T0);
      s = flushDue(s, T0 + 30 * SEC, () => true).state;
      const restored = JSON.parse(JSON.stringify(s)) as GroupingState;
      expect(flushDue(restored, T0 + 60 * SEC, () => true).flushes).toEqual([]);
      expect(flushDue(restored, T0 + 90 * SEC, () => false).flushes.map((f) => f.firing.length)).toEqual([1, 1]);
      // An announced alert left out of a message while muted is still left out, and back once unmuted.
      let t = addToGroups(emptyGroupingState(), [n('firing', 'b', 'db', T0)], routes, T0);
      t = flushDue(t, T0 + 30 * SEC).state;
      t = addToGroups(t, [n('firing', 'a', 'db', T0 + 60 * SEC)], routes, T0 + 60 * SEC);
      const mutedB = (a: AlertNotification) => a.targetId === 'b';
      t = flushDue(t, T0 + 330 * SEC, mutedB).state;
      const back = JSON.parse(JSON.stringify(t)) as GroupingState;
      expect(flushDue(back, T0 + 640 * SEC, mutedB).flushes).toEqual([]);
      expect(flushDue(back, T0 + 640 * SEC, () => false).flushes.map((f) => f.firing.map((a) => a.targetId))).toEqual([
        ['b', 'a'],
        ['b', 'a'],
      ]);
    });
  });

  it('state survives JSON (persist and restore without re-sending)', () => {
    let s = addToGroups(emptyGroupingState(), [n('firing', 'a', 'db', T0)], routes, T0);
    s = flushDue(s, T0 + 30 * SEC).state;
    const restored = JSON.parse(JSON.stringify(s)) as GroupingState;
    expect(flushDue(restored, T0 + 400 * SEC).flushes).toEqual([]);
  });

  it.each([
    ['its rule was deleted', new Map()],
    ['its rule now routes to another channel', routesOf([compileAlertRule({ ...rule.rule, channels: ['email'] })])],
    [
      'its rule now groups by other labels',
      routesOf([compileAlertRule({ ...rule.rule, grouping: { ...rule.grouping, groupBy: ['target'] } })]),
    ],
  ])('a resolved alert reaches the groups told it fired, though %s', (_why, after) => {
    let s = addToGroups(emptyGroupingState(), [n('firing', 'a', 'db', T0)], routes, T0);
    s = flushDue(s, T0 + 30 * SEC).state;
    s = addToGroups(s, [n('resolved', 'a', 'db', T0 + 60 * SEC)], after as ReturnType<typeof routesOf>, T0 + 60 * SEC);
    const { flushes, state } = flushDue(s, T0 + 400 * SEC);
    expect(flushes.map((f) => [f.channelId, f.firing.length, f.resolved.map((a) => a.targetId)]).sort()).toEqual([
      ['pager', 0, ['a']],
      ['slack', 0, ['a']],
    ]);
    expect(state.groups).toEqual({}); // nothing firing left: the groups are gone, no new one was opened
  });
});

describe('label names that Object.prototype also has', () => {
  it('groupBy `constructor` or `toString` reads the alert own labels: absent is "", as for any label', () => {
    expect(groupLabelsOf(['alertname', 'constructor', 'toString'], { alertname: 'Down' })).toEqual({
      alertname: 'Down',
      constructor: '',
      toString: '',
    });
    expect(groupLabelsOf(['constructor'], { constructor: 'ctor' })).toEqual({ constructor: 'ctor' });
  });

  it('a series label named `toString` keeps its name when the rule has no such label', () => {
    const labels = alertLabels(rule.rule, 'instance:web-1', { toString: 'x', team: 'a' });
    expect(labels).toMatchObject({ toString: 'x', team: 'a' });
    expect(labels).not.toHaveProperty('exported_toString');
  });
});

describe('announceFiring (a channel added to a rule while its alerts fire)', () => {
  const oneChannel = routesOf([compileAlertRule({ ...rule.rule, channels: ['slack'] })]);
  const flushAt = (state: GroupingState, at: number) => flushDue(state, at).flushes;
  /** The groups after `alerts` fired at T0 under `by` and their group wait passed (their channels told). */
  const told = (alerts: AlertNotification[], by: typeof routes) =>
    flushDue(addToGroups(emptyGroupingState(), alerts, by, T0), T0 + 30 * SEC).state;

  it('the added channel gets the firing alerts after its group wait; the channel told already gets nothing', () => {
    // Fired with slack only; slack told.
    let state = told([n('firing', 'a', 'db', T0), n('firing', 'b', 'db', T0)], oneChannel);
    // Ten minutes on, the pager is added to the rule (routes: slack and pager).
    const at = T0 + 600 * SEC;
    state = announceFiring(state, [n('firing', 'a', 'db', T0), n('firing', 'b', 'db', T0)], routes, at);
    expect(flushAt(state, at + 29 * SEC)).toEqual([]);
    const sent = flushAt(state, at + 30 * SEC);
    expect(sent.map((f) => [f.channelId, f.firing.map((a) => a.targetId).sort()])).toEqual([['pager', ['a', 'b']]]);
  });

  it('alerts every channel holds already: the state is the same object (nothing to write)', () => {
    const state = told([n('firing', 'a', 'db', T0)], routes);
    expect(announceFiring(state, [n('firing', 'a', 'db', T0)], routes, T0 + 600 * SEC)).toBe(state);
  });

  it('a grouping changed (groupBy): each firing alert moves — its old group closes, its new group announces it; never in two groups of a channel', () => {
    const byName = routesOf([
      compileAlertRule({ ...rule.rule, grouping: { ...rule.grouping, groupBy: ['alertname'] } }),
    ]);
    const firing = [n('firing', 'a', 'db', T0), n('firing', 'b', 'web', T0)];
    let state = told(firing, byName);
    const describe = (fs: ReturnType<typeof flushAt>) =>
      fs
        .map(
          (f) =>
            `${f.channelId} ${JSON.stringify(f.groupLabels)} firing=${f.firing.map((a) => a.targetId)} resolved=${f.resolved.map((a) => a.targetId)}`,
        )
        .sort();
    /** Per channel and alert: the groups whose messages carry it as firing. */
    const liveGroups = (st: GroupingState) => {
      const out: Record<string, number> = {};
      for (const g of Object.values(st.groups))
        for (const a of Object.values(g.alerts))
          if (a.kind !== 'resolved')
            out[`${g.channelId} ${a.targetId}`] = (out[`${g.channelId} ${a.targetId}`] ?? 0) + 1;
      return out;
    };
    // Ten minutes on, the rule is grouped by alertname and team (the configuration reload announces its firing alerts).
    const at = T0 + 600 * SEC;
    state = announceFiring(state, firing, routes, at);
    // The old group (alertname only) is due (its group interval passed): its receiver is told both ended there — a
    // PagerDuty incident under its dedup key closes.
    let r = flushDue(state, at);
    expect(describe(r.flushes)).toEqual([
      'pager {"alertname":"Down"} firing= resolved=a,b',
      'slack {"alertname":"Down"} firing= resolved=a,b',
    ]);
    state = r.state;
    // The new groups (alertname, team) announce them after their group wait.
    expect(flushAt(state, at + 29 * SEC)).toEqual([]);
    r = flushDue(state, at + 30 * SEC);
    expect(describe(r.flushes)).toEqual([
      'pager {"alertname":"Down","team":"db"} firing=a resolved=',
      'pager {"alertname":"Down","team":"web"} firing=b resolved=',
      'slack {"alertname":"Down","team":"db"} firing=a resolved=',
      'slack {"alertname":"Down","team":"web"} firing=b resolved=',
    ]);
    state = r.state;
    expect(liveGroups(state)).toEqual({ 'pager a': 1, 'pager b': 1, 'slack a': 1, 'slack b': 1 });
    // Its repeat and its resolution go to the new group alone: one message per channel, never a second incident.
    state = addToGroups(state, [n('repeat', 'a', 'db', T0 + 4 * 3600 * SEC)], routes, T0 + 4 * 3600 * SEC);
    expect(liveGroups(state)).toEqual({ 'pager a': 1, 'pager b': 1, 'slack a': 1, 'slack b': 1 });
    const end = T0 + 5 * 3600 * SEC;
    state = addToGroups(state, [n('resolved', 'a', 'db', end)], routes, end);
    expect(describe(flushAt(state, end))).toEqual([
      'pager {"alertname":"Down","team":"db"} firing= resolved=a',
      'slack {"alertname":"Down","team":"db"} firing= resolved=a',
    ]);
    // Announced again at the next reload (nothing changed): the same state (nothing to write).
    const settled = flushDue(state, end).state;
    expect(announceFiring(settled, [firing[1]], routes, end)).toBe(settled);
  });

  it('alerts of many rules missing one channel: all of them to it', () => {
    const rules = Array.from({ length: 50 }, (_, i) =>
      compileAlertRule({ ...rule.rule, id: `r${i}`, channels: ['slack', 'pager'] }),
    );
    const many = routesOf(rules);
    const of = (i: number) => ({ ...n('firing', `t${i}`, 'db', T0), ruleId: `r${i}`, fingerprint: `fp-${i}` });
    let state = addToGroups(
      emptyGroupingState(),
      rules.map((_, i) => of(i)),
      routesOf(rules.map((r) => compileAlertRule({ ...r.rule, channels: ['slack'] }))),
      T0,
    );
    state = flushDue(state, T0 + 30 * SEC).state;
    const at = T0 + 600 * SEC;
    state = announceFiring(
      state,
      rules.map((_, i) => of(i)),
      many,
      at,
    );
    const sent = flushDue(state, at + 30 * SEC).flushes;
    expect(sent.every((f) => f.channelId === 'pager')).toBe(true);
    expect(sent.flatMap((f) => f.firing.map((a) => a.fingerprint)).sort()).toEqual(
      rules.map((_, i) => `fp-${i}`).sort(),
    );
  });

  it('an alert of a rule no longer there is left alone', () => {
    const state = emptyGroupingState();
    expect(announceFiring(state, [n('firing', 'a', 'db', T0)], new Map(), T0)).toBe(state);
  });
});
