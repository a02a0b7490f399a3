import { TargetKind, TargetStatus } from '@fleetwatch/contracts';
import { toTargetView, type TargetRecord } from './live-state.store';

// The public view of a live target (contracts TargetView): `lastSeen` is null until something was heard. A
// heartbeat monitor that has never been pinged is projected with lastSeen 0 — it read "1970-01-01T00:00:00.000Z",
// and the dashboard said "Last seen 20793 d ago".

const record = (lastSeen: number | null): TargetRecord => ({
  id: 'check:nightly',
  kind: TargetKind.Check,
  name: 'nightly-backup',
  status: TargetStatus.Unknown,
  since: 1_000,
  lastSeen,
  lastLatencyMs: null,
  lifecycle: null,
  instanceKind: null,
  tags: [],
  labels: {},
  seq: 1,
  locations: {},
});

describe('toTargetView', () => {
  it('nothing heard yet (0 or none) is null; a time is its ISO text', () => {
    expect(toTargetView(record(0)).lastSeen).toBeNull();
    expect(toTargetView(record(null)).lastSeen).toBeNull();
    expect(toTargetView(record(Date.parse('2026-12-06T10:00:00.000Z'))).lastSeen).toBe('2026-12-06T10:00:00.000Z');
  });
});

describe("toTargetView's locations", () => {
  it('a location nothing was heard at yet (a monitor waiting for its first ping) has lastSeen null', () => {
    const at = Date.parse('2026-12-06T10:00:00.000Z');
    const location = (lastSeen: number) => ({
      status: TargetStatus.Unknown,
      observedAt: 0,
      lastSeen,
      latencyMs: null,
      detail: 'waiting for the first ping',
      lifecycle: null,
    });
    const view = toTargetView({ ...record(null), locations: { push: location(0), eu: location(at) } });
    expect(view.locations.map((l) => [l.location, l.lastSeen])).toEqual([
      ['eu', '2026-12-06T10:00:00.000Z'],
      ['push', null],
    ]);
  });
});
