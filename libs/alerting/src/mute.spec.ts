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
import { evaluateTarget } from './fleet';
import { compileAlertRule } from './rule';
import { ruleOf, targetOf } from './testing/fixtures';

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
