import {
  TargetStatus,
  alertRuleSpecSchema,
  maintenanceWindowSpecSchema,
  silenceSpecSchema,
  type MaintenanceWindow,
  type Silence,
} from '@fleetwatch/contracts';
import { createMuter } from './mute';
import { alertRuleIssues, maintenanceWindowIssues } from './validate';
import { applyChanges, evaluateFleet, evaluateTarget } from './fleet';
import { addToGroups, emptyGroupingState, flushDue, routesOf } from './grouping';
import type { AlertSeriesState } from './engine';
import { compileAlertRule } from './rule';
import { SEC, T0, ruleOf, targetOf } from './testing/fixtures';

const at = (iso: string) => Date.parse(iso);
const silence: Silence = {
  id: 's1',
  ...silenceSpecSchema.parse({
    matchers: [{ name: 'target', op: '=', value: 'check:a' }],
    startsAt: '2026-05-01T10:00:00Z',
    endsAt: '2026-05-01T11:00:00Z',
    createdBy: 'alice',
    comment: 'deploy',
  }),
};
const window: MaintenanceWindow = {
  id: 'w1',
  ...maintenanceWindowSpecSchema.parse({
    name: 'db patching',
    createdBy: 'bob',
    scope: { tags: ['db'] },
    schedule: { type: 'recurring', cron: '0 10 * * *', duration: '30m', timezone: 'UTC' },
  }),
};
const targets = new Map([
  ['check:a', targetOf('check:a')],
  ['check:db', targetOf('check:db', { tags: ['db'] })],
  ['check:c', targetOf('check:c')],
]);

describe('muting: silences and maintenance together', () => {
  const muterAt = (iso: string) =>
    createMuter({ silences: [silence], windows: [window], targetOf: (id) => targets.get(id), now: at(iso) });

  it.each([
    ['2026-05-01T10:15:00Z', 'check:a', { kind: 'silence', id: 's1' }],
    ['2026-05-01T10:15:00Z', 'check:db', { kind: 'maintenance', id: 'w1' }],
    ['2026-05-01T10:15:00Z', 'check:c', null],
    ['2026-05-01T10:45:00Z', 'check:db', null], // window closed at 10:30
    ['2026-05-01T10:45:00Z', 'check:a', { kind: 'silence', id: 's1' }],
    ['2026-05-01T11:00:00Z', 'check:a', null], // silence ended
    ['2026-05-02T10:10:00Z', 'check:db', { kind: 'maintenance', id: 'w1' }], // the next day's window
  ])('at %s, %s muted by %j', (iso, targetId, reason) => {
    expect(muterAt(iso).reasonFor({ target: targetId }, targetId)).toEqual(reason);
  });

  it('a muted DOWN target is still evaluated (pending, firing) but not notified; checks go on', () => {
    const rule = compileAlertRule(
      ruleOf('down', { name: 'Down', condition: { type: 'status', statuses: [TargetStatus.Down] } }),
    );
    const now = at('2026-05-01T10:15:00Z');
    const r = evaluateTarget(
      { rules: [rule], states: new Map(), now, isMuted: muterAt('2026-05-01T10:15:00Z').isMuted },
      { target: targetOf('check:db', { tags: ['db'] }), observation: { status: TargetStatus.Down } },
    );
    expect([...r.changed.values()][0]?.state).toBe('firing');
    expect(r.notifications).toEqual([]);
  });
});

describe('muting, the engine and grouping together (as the evaluator runs them)', () => {
  // b fires first (its group's first message at 30 s); a fires at 40 s — its engine notification waits for the group's
  // next message (150 s); a silence on a from 50 s to 100 s; a ends at 60 s, under it (it resolves, or its rule is
  // deleted). The receiver was never told a fired: the message at 150 s, after the silence, must not tell it a resolved.
  it.each(['resolves', 'loses its rule'])(
    'an alert that fired, was muted and %s between two messages is not announced as resolved, though its silence ended before the message',
    (ending) => {
      const ruleFor = (id: 'a' | 'b') =>
        compileAlertRule(
          ruleOf(`down-${id}`, {
            name: 'Down',
            selector: { targetIds: [`check:${id}`] },
            condition: { type: 'status', statuses: [TargetStatus.Down] },
            channels: ['slack'],
            grouping: { groupBy: ['alertname'], groupWait: '30s', groupInterval: '2m', repeatInterval: '4h' },
          }),
        );
      const rules = { a: ruleFor('a'), b: ruleFor('b') };
      const routes = routesOf([rules.a, rules.b]);
      const silenced: Silence = {
        id: 's-a',
        ...silenceSpecSchema.parse({
          matchers: [{ name: 'target', op: '=', value: 'check:a' }],
          startsAt: new Date(T0 + 50 * SEC).toISOString(),
          endsAt: new Date(T0 + 100 * SEC).toISOString(),
          createdBy: 'alice',
          comment: 'looking at it',
        }),
      };
      const states = new Map<string, AlertSeriesState>();
      let grouping = emptyGroupingState();
      const messages: string[] = [];
      for (let s = 0; s <= 400; s += 10) {
        const now = T0 + s * SEC;
        const muter = createMuter({ silences: [silenced], windows: [], targetOf: (id) => targets.get(id), now });
        const aDown = s >= 40 && (ending === 'loses its rule' || s < 60);
        const r = evaluateFleet(
          {
            rules: ending === 'loses its rule' && s >= 60 ? [rules.b] : [rules.a, rules.b],
            states,
            now,
            isMuted: muter.isMuted,
          },
          [
            { target: targetOf('check:a'), observation: { status: aDown ? TargetStatus.Down : TargetStatus.Up } },
            { target: targetOf('check:b'), observation: { status: TargetStatus.Down } },
          ],
        );
        applyChanges(states, r.changed);
        const f = flushDue(addToGroups(grouping, r.notifications, routes, now), now, (n) =>
          muter.isMuted(n.labels, n.targetId),
        );
        grouping = f.state;
        for (const m of f.flushes)
          messages.push(
            `${s}s firing=${m.firing.map((n) => n.targetId).join(',')} resolved=${m.resolved.map((n) => n.targetId).join(',')}`,
          );
      }
      expect(messages).toEqual(['30s firing=check:b resolved=']);
    },
  );
});

describe('configuration checks beyond the schema', () => {
  it('names a broken annotation template', () => {
    const rule = alertRuleSpecSchema.parse({
      name: 'x',
      condition: { type: 'status', statuses: ['DOWN'] },
      annotations: { ok: '{{ target.name }}', bad: '{% include "x" %}' },
    });
    expect(alertRuleIssues(rule)).toEqual([
      { path: 'annotations.bad', message: expect.stringMatching(/^template: .*include/) },
    ]);
  });

  it('names a cron expression that passes the shape check but cannot run', () => {
    const { id: _id, ...spec } = window;
    const w = maintenanceWindowSpecSchema.parse({
      ...spec,
      schedule: { type: 'recurring', cron: '0 25 * * *', duration: '1h' },
    });
    expect(maintenanceWindowIssues(w)).toEqual([{ path: 'schedule.cron', message: expect.stringMatching(/25/) }]);
    expect(maintenanceWindowIssues(window)).toEqual([]);
  });
});
