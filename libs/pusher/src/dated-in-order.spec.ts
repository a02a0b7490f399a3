import type { StatusUpdateInput } from '@fleetwatch/contracts';
import { datedAfter, datedAtMs, InstanceFloors, MAX_DATED_AHEAD_MS, MAX_INSTANCE_FLOORS } from './dated-in-order';

const u = {
  updateId: 'k8s:u:1',
  instanceId: 'shop/web-a',
  kind: 'pod',
  status: 'running',
  occurredAt: '2026-01-01T00:00:05.000Z',
} as StatusUpdateInput;

it('moves an update dated at or before the last one sent just past it, and leaves a later one alone', () => {
  expect(datedAfter(u, undefined)).toBe(u);
  expect(datedAfter(u, Date.parse('2026-01-01T00:00:04.999Z'))).toBe(u);
  expect(datedAfter(u, Date.parse('2026-01-01T00:00:05.000Z')).occurredAt).toBe('2026-01-01T00:00:05.001Z');
  expect(datedAfter(u, Date.parse('2026-01-01T00:00:35.700Z')).occurredAt).toBe('2026-01-01T00:00:35.701Z');
  expect(datedAfter(u, Date.parse('2026-01-01T00:00:35.700Z'))).toMatchObject({ ...u, occurredAt: expect.any(String) });
});

it('an update without a date is left alone; datedAtMs reads the date or gives the fallback', () => {
  const undated = { ...u, occurredAt: undefined } as unknown as StatusUpdateInput;
  expect(datedAfter(undated, 5)).toBe(undated);
  expect(datedAtMs(undated, 7)).toBe(7);
  expect(datedAtMs(u, 7)).toBe(Date.parse('2026-01-01T00:00:05.000Z'));
});

it('never moves an update further past this clock than the ingest accepts (a last date from before a clock step back)', () => {
  const now = Date.parse('2026-01-01T00:00:05.000Z');
  // Within the bound: moved past the last update, as ever.
  expect(datedAfter(u, now + 60_000, now).occurredAt).toBe(new Date(now + 60_001).toISOString());
  expect(datedAfter(u, now + MAX_DATED_AHEAD_MS - 1, now).occurredAt).toBe(
    new Date(now + MAX_DATED_AHEAD_MS).toISOString(),
  );
  // The last one sent an hour ahead of this clock (stepped back since, or a state file written then): kept as dated;
  // moved, it and every later update of the thing would be refused by the ingest (300 s allowance) and dropped.
  expect(datedAfter(u, now + 3_600_000, now)).toBe(u);
  expect(datedAfter(u, now + MAX_DATED_AHEAD_MS, now)).toBe(u);
  expect(MAX_DATED_AHEAD_MS).toBeLessThan(300_000);
});

it('InstanceFloors: names that each live minutes (Job pods) within the horizon are bounded by count; a live one stays', () => {
  const now = Date.now();
  const floors = new InstanceFloors(24 * 3_600_000);
  floors.sent('shop/web-0', now - 10_000, now); // a live instance: its floor raised at each refresh below
  // A day of a CronJob's pods, a name each, all within the horizon: before, a floor each for the whole day — the map
  // and the state file (written whole, at every refresh accepted) grew with every name.
  for (let i = 0; i < MAX_INSTANCE_FLOORS + 20_000; i++) {
    floors.sent(`batch/report-${i}`, now - 60_000 + Math.floor(i / 1000), now);
    if (i % 10_000 === 0) floors.sent('shop/web-0', now - 10_000 + i, now);
  }
  expect(floors.size).toBe(MAX_INSTANCE_FLOORS);
  expect(Object.keys(floors.toRecord(now))).toHaveLength(MAX_INSTANCE_FLOORS);
  // The ones raised longest ago went first; the live instance and the latest names stayed.
  expect(floors.get('batch/report-0')).toBeUndefined();
  expect(floors.get(`batch/report-${MAX_INSTANCE_FLOORS + 19_999}`)).toBeDefined();
  expect(floors.get('shop/web-0')).toBe(now - 10_000 + 60_000);
  // A file holding more (written by a version without the cap) is read down to the cap, its latest kept.
  const record: Record<string, number> = {};
  for (let i = 0; i < MAX_INSTANCE_FLOORS + 5; i++) record[`old/pod-${i}`] = now - 1_000;
  const loaded = new InstanceFloors(24 * 3_600_000);
  loaded.load(record, now);
  expect(loaded.size).toBe(MAX_INSTANCE_FLOORS);
  expect(loaded.get(`old/pod-${MAX_INSTANCE_FLOORS + 4}`)).toBe(now - 1_000);
});

it('InstanceFloors: a floor raised again moves to the back of the eviction order', () => {
  const floors = new InstanceFloors(3_600_000, 3);
  const now = Date.now();
  floors.sent('a', now - 5_000, now);
  floors.sent('b', now - 4_000, now);
  floors.sent('c', now - 3_000, now);
  floors.sent('a', now - 1_000, now); // raised: now the latest
  expect(floors.sent('a', now - 2_000, now)).toBe(false); // earlier than the one kept: nothing changes
  floors.sent('d', now - 500, now);
  expect(floors.toRecord(now)).toEqual({ c: now - 3_000, a: now - 1_000, d: now - 500 });
});
