import { mergeSpans } from './public-status.service';

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
