import { checkInputSchema, Messages, type CheckDefinition } from '@fleetwatch/contracts';
import { lifecycleMessageId, lifecycleOf, touchedChecks } from './check-lifecycle';

const A = '0191d7a2-0000-7000-8000-00000000000a';
const B = '0191d7a2-0000-7000-8000-00000000000b';
const C = '0191d7a2-0000-7000-8000-00000000000c';
const AT = new Date('2026-12-02T10:00:00.000Z');

function stored(id: string, input: Record<string, unknown>): CheckDefinition {
  return {
    ...checkInputSchema.parse(input),
    id,
    targetId: `check:${id}`,
    version: 3,
    createdAt: AT.toISOString(),
    updatedAt: AT.toISOString(),
  } as CheckDefinition;
}

describe('touchedChecks', () => {
  it('every check id an audit entry names, once, in order; other subjects are left out', () => {
    expect(
      touchedChecks([
        { action: 'check.create', subject: B, diff: [] },
        { action: 'check.delete', subject: A, diff: [] },
        { action: 'check.replace', subject: B, diff: [] },
        { action: 'config.import', subject: null, diff: [] },
        { action: 'check.adopt', subject: 'monitor-7', diff: [] },
        // Alert rules and silences have UUIDs too: not checks.
        { action: 'alert-rule.create', subject: '0190f0e0-0000-7000-8000-0000000000c3', diff: [] },
        { action: 'silence.create', subject: '0190f0e0-0000-7000-8000-0000000000c4', diff: [] },
      ]),
    ).toEqual([B, A]);
  });
});

describe('lifecycleOf', () => {
  const found = [
    stored(A, {
      name: 'api',
      type: 'tcp',
      host: 'a',
      port: 1,
      intervalSeconds: 15,
      tags: ['t1'],
      locations: ['eu', 'us'],
      downQuorumPct: 50,
    }),
    stored(B, { name: 'nightly', type: 'push', periodSeconds: 3600, graceSeconds: 300, paused: true }),
  ];
  it.each([
    // The locations that run it: one left out is dropped from its live state. Its own quorum.
    [
      A,
      {
        state: 'active',
        name: 'api',
        checkType: 'tcp',
        tags: ['t1'],
        intervalSeconds: 15,
        locations: ['eu', 'us'],
        downQuorumPct: 50,
      },
    ],
    // A push check's next ping is due within its period and grace. No quorum of its own: null, the site's.
    [
      B,
      {
        state: 'paused',
        name: 'nightly',
        checkType: 'push',
        tags: [],
        intervalSeconds: 3900,
        locations: [],
        downQuorumPct: null,
      },
    ],
    // Not in the table after the write: deleted.
    [C, { state: 'deleted' }],
  ])('%s → %j, with the version and time of the write', (id, expected) => {
    const [m] = lifecycleOf([id], found, 12, AT);
    expect(m).toEqual({ checkId: id, targetId: `check:${id}`, version: 12, at: AT.toISOString(), ...expected });
    // What the relay publishes: the contract accepts it as it is.
    expect(Messages.CheckLifecycle.payload.safeParse(m).success).toBe(true);
  });

  it('one message per touched check, in the order touched', () => {
    expect(lifecycleOf([C, B, A], found, 5, AT).map((m) => [m.checkId, m.state])).toEqual([
      [C, 'deleted'],
      [B, 'paused'],
      [A, 'active'],
    ]);
  });
});

describe('lifecycleMessageId', () => {
  it('is the same at every republish of a row, and differs per check and per row', () => {
    const row = '0191d7a2-1111-7000-8000-000000000001';
    expect(lifecycleMessageId(row, A)).toBe(lifecycleMessageId(row, A));
    expect(lifecycleMessageId(row, A)).not.toBe(lifecycleMessageId(row, B));
    expect(lifecycleMessageId(row, A)).not.toBe(lifecycleMessageId('0191d7a2-1111-7000-8000-000000000002', A));
    expect(lifecycleMessageId(row, A)).toMatch(/^[0-9a-f-]{36}$/);
  });
});
