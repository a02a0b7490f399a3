import { InvalidError } from '@fleetwatch/domain';
import { costOf, MAX_REPORTED_ISSUES, parseStatusUpdates } from './status-update.parser';

const NOW = Date.parse('2026-03-01T12:00:00Z');
const WINDOW = { maxFutureSkewMs: 300_000, maxAgeMs: 7 * 86_400_000 };
const ok = (i: number, extra: Record<string, unknown> = {}) => ({
  instanceId: `web-${i}`,
  kind: 'pod',
  status: 'Running',
  ...extra,
});

function refusal(body: unknown): InvalidError {
  try {
    parseStatusUpdates(body, NOW, WINDOW);
  } catch (e) {
    if (e instanceof InvalidError) return e;
    throw e;
  }
  throw new Error('expected a refusal');
}

describe('parseStatusUpdates', () => {
  it('takes one update, lower-casing the status', () => {
    expect(parseStatusUpdates(ok(1), NOW, WINDOW)).toEqual({
      batch: false,
      updates: [{ instanceId: 'web-1', kind: 'pod', status: 'running' }],
    });
  });

  it('takes a batch whole', () => {
    const r = parseStatusUpdates({ updates: [ok(1), ok(2, { occurredAt: '2026-03-01T11:59:00Z' })] }, NOW, WINDOW);
    expect(r.batch).toBe(true);
    expect(r.updates.map((u) => u.instanceId)).toEqual(['web-1', 'web-2']);
  });

  it.each<[string, unknown, string[]]>([
    ['array root', [ok(1)], ['(body)']],
    ['null root', null, ['(body)']],
    ['number root', 3, ['(body)']],
    ['empty batch', { updates: [] }, ['updates']],
    ['1001 updates', { updates: Array.from({ length: 1001 }, (_, i) => ok(i)) }, ['updates']],
    ['a bad item', { updates: [ok(0), ok(1, { kind: 'vm' })] }, ['updates.1.kind']],
    [
      'bad items everywhere',
      { updates: [ok(0, { status: 'nope' }), ok(1), { kind: 'pod' }] },
      ['updates.0.status', 'updates.2.instanceId', 'updates.2.status'],
    ],
    ['future', ok(1, { occurredAt: '2026-03-01T12:06:00Z' }), ['occurredAt']],
    ['ancient', ok(1, { occurredAt: '2026-02-01T12:00:00Z' }), ['occurredAt']],
    [
      'a future item in a batch',
      { updates: [ok(0), ok(1, { occurredAt: '2026-03-02T00:00:00Z' })] },
      ['updates.1.occurredAt'],
    ],
    ['an unknown field', ok(1, { colour: 'red' }), ['(body)']],
    [
      'a repeated updateId in a batch',
      { updates: [ok(0, { updateId: 'a' }), ok(1, { updateId: 'b' }), ok(2, { updateId: 'a' })] },
      ['updates.2.updateId'],
    ],
  ])('refuses %s, naming %j', (_name, body, paths) => {
    const e = refusal(body);
    expect(e.issues.map((i) => i.path)).toEqual(paths);
    for (const p of paths.filter((x) => x !== '(body)')) expect(e.message).toContain(p);
  });

  it('says which unknown field and which label name is bad', () => {
    expect(refusal(ok(1, { colour: 'red' })).issues[0].message).toBe('unknown field(s): colour');
    expect(refusal(ok(1, { labels: { '9x': 'a' } })).issues[0]).toEqual({
      path: 'labels.9x',
      message: expect.stringMatching(/^invalid name: label names start with/),
    });
  });

  it('lists at most MAX_REPORTED_ISSUES issues of a hopeless batch, and counts every bad update', () => {
    const e = refusal({ updates: Array.from({ length: 1000 }, () => ({})) });
    expect(e.issues.length).toBeLessThanOrEqual(MAX_REPORTED_ISSUES);
    // It said "34 of 1000" when the first items' issues filled the list.
    expect(e.message).toMatch(
      /^batch refused: 1000 of 1000 updates are invalid; nothing was accepted \(the first 100 of \d+ problems are listed\)/,
    );
    expect(e.message).toMatch(/more\)$/);
  });

  it('counts a bad update after the listed ones: one good batch with a bad last item says 1 of 1000', () => {
    const updates = Array.from({ length: 1000 }, (_, i) => ok(i));
    updates[999] = ok(999, { status: '' });
    const e = refusal({ updates });
    expect(e.message).toMatch(/^batch refused: 1 of 1000 updates are invalid/);
    expect(e.issues.map((i) => i.path)).toEqual(['updates.999.status']);
  });
});

describe('costOf', () => {
  it.each<[unknown, number]>([
    [ok(1), 1],
    [{ updates: [1, 2, 3] }, 3],
    [{ updates: [] }, 1],
    [{ updates: new Array(5000).fill(0) }, 1000],
    [null, 1],
    [[1, 2], 1],
  ])('%j costs %d', (body, cost) => expect(costOf(body)).toBe(cost));
});
