import { mergeSpans, newestIncidents } from './public-status.service';

describe('mergeSpans: one component’s incidents from its targets’', () => {
  it.each([
    { name: 'none', spans: [], merged: [] },
    {
      name: 'apart stay apart, oldest first',
      spans: [
        { state: 'outage' as const, start: 50, end: 60 },
        { state: 'degraded' as const, start: 10, end: 20 },
      ],
      merged: [
        { state: 'degraded', start: 10, end: 20 },
        { state: 'outage', start: 50, end: 60 },
      ],
    },
    {
      name: 'overlapping become one, the worse state wins',
      spans: [
        { state: 'degraded' as const, start: 10, end: 30 },
        { state: 'outage' as const, start: 20, end: 40 },
      ],
      merged: [{ state: 'outage', start: 10, end: 40 }],
    },
    {
      name: 'one still going on keeps the merged one open',
      spans: [
        { state: 'outage' as const, start: 10, end: null },
        { state: 'degraded' as const, start: 15, end: 20 },
      ],
      merged: [{ state: 'outage', start: 10, end: null }],
    },
    {
      name: 'touching ends join',
      spans: [
        { state: 'degraded' as const, start: 10, end: 20 },
        { state: 'degraded' as const, start: 20, end: 25 },
      ],
      merged: [{ state: 'degraded', start: 10, end: 25 }],
    },
  ])('$name', ({ spans, merged }) => {
    expect(mergeSpans(spans)).toEqual(merged);
  });
});

describe('newestIncidents: a page lists each component’s newest before one component’s many', () => {
  const at = (h: number) => new Date(Date.UTC(2026, 11, 1, h)).toISOString();
  const inc = (component: string, h: number) => ({
    component,
    state: 'outage' as const,
    startedAt: at(h),
    endedAt: at(h + 1),
  });
  it('a flapping component does not push another’s older incident off the list', () => {
    const sorted = [...Array.from({ length: 60 }, (_, i) => inc('flappy', 100 - i)), inc('steady', 1)];
    const out = newestIncidents(sorted, 50, 10);
    expect(out).toHaveLength(50);
    expect(out.filter((i) => i.component === 'steady')).toHaveLength(1);
    // Newest first, the flapping one's newest kept.
    expect(out[0]).toEqual(inc('flappy', 100));
    expect(out.at(-1)).toEqual(inc('steady', 1));
  });
  it('fewer than the maximum: all of them, newest first', () => {
    const sorted = [inc('a', 5), inc('b', 4), inc('a', 3)];
    expect(newestIncidents(sorted, 50, 1)).toEqual(sorted);
  });
});
