import type { StatusUpdateInput } from '@fleetwatch/contracts';
import { datedAfter, datedAtMs, MAX_DATED_AHEAD_MS } from './dated-in-order';

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
