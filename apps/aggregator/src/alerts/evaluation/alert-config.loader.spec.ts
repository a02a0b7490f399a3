import { TargetStatus } from '@fleetwatch/contracts';
import { createMuter } from '@fleetwatch/alerting';
import type { AlertConfigRepository, AlertEvaluationReaderRepository } from '@fleetwatch/persistence';
import { AlertConfigLoader } from './alert-config.loader';

// A stored maintenance window whose cron passes the contract (five fields of cron characters) but that cron-parser
// cannot read — `99 * * * *`, written before the owner checked with cron-parser, or by a version whose cron-parser
// read it differently — made every evaluation throw (createMuter reads every window), so one row stopped all alert
// evaluation and notification. It is left out and reported, like a row the contract refuses.

const window = (id: string, cron: string) => ({
  id,
  spec: {
    name: id,
    scope: { tags: ['db'] },
    schedule: { type: 'recurring', cron, duration: '1h', timezone: 'UTC' },
    createdBy: 'admin',
  },
});

it('leaves out a maintenance window whose cron cannot be read, and reports it; the others stay', async () => {
  const rows: Record<string, unknown[]> = {
    alertRules: [
      {
        id: 'r1',
        spec: {
          name: 'Down',
          condition: { type: 'status', statuses: [TargetStatus.Down] },
          channels: [],
        },
      },
    ],
    maintenanceWindows: [window('bad', '99 * * * *'), window('good', '0 3 * * *')],
  };
  const loader = new AlertConfigLoader(
    { all: async (area: string) => rows[area] ?? [] } as unknown as AlertConfigRepository,
    { unexpiredSilences: async () => [] } as unknown as AlertEvaluationReaderRepository,
  );
  const config = await loader.load(Date.parse('2026-03-01T12:00:00Z'));
  expect(config.windows.map((w) => w.id)).toEqual(['good']);
  expect(config.skipped).toEqual([
    { area: 'maintenance', id: 'bad', reason: expect.stringMatching(/schedule\.cron: .*range 0-59/) },
  ]);
  expect(config.rules.map((r) => r.id)).toEqual(['r1']);
  // What evaluation does with the windows: must not throw.
  const muter = createMuter({ silences: [], windows: config.windows, targetOf: () => undefined, now: Date.now() });
  expect(muter.isMuted({}, 'check:x')).toBe(false);
});
