import { announcementState, announcementsAt } from './announcements';

const now = Date.parse('2026-12-06T12:00:00Z');

describe('announcementState', () => {
  it.each([
    ['2026-12-10T02:00:00Z', undefined, 'scheduled'],
    ['2026-12-10T02:00:00Z', '2026-12-10T04:00:00Z', 'scheduled'],
    ['2026-12-06T11:00:00Z', undefined, 'ongoing'],
    ['2026-12-06T11:00:00Z', '2026-12-06T13:00:00Z', 'ongoing'],
    ['2026-12-06T12:00:00Z', null, 'ongoing'],
    ['2026-12-05T11:00:00Z', '2026-12-06T12:00:00Z', 'ended'],
    ['2026-12-01T11:00:00Z', '2026-12-02T12:00:00Z', 'ended'],
  ] as const)('starts %s, ends %s: %s', (startsAt, endsAt, state) => {
    expect(announcementState({ startsAt, endsAt }, now)).toBe(state);
  });
});

describe('announcementsAt', () => {
  it('orders ongoing (latest started first), scheduled (soonest first), ended (latest ended first)', () => {
    const list = [
      { title: 'ended long ago', startsAt: '2026-11-01T00:00:00Z', endsAt: '2026-11-02T00:00:00Z' },
      { title: 'next week', startsAt: '2026-12-13T00:00:00Z' },
      { title: 'ongoing old', startsAt: '2026-12-01T00:00:00Z' },
      { title: 'tomorrow', startsAt: '2026-12-07T00:00:00Z', endsAt: '2026-12-07T02:00:00Z' },
      { title: 'ended today', startsAt: '2026-12-06T01:00:00Z', endsAt: '2026-12-06T02:00:00Z' },
      { title: 'ongoing new', startsAt: '2026-12-06T10:00:00Z', endsAt: '2026-12-06T20:00:00Z' },
    ];
    expect(announcementsAt(list, now).map((a) => [a.title, a.state])).toEqual([
      ['ongoing new', 'ongoing'],
      ['ongoing old', 'ongoing'],
      ['tomorrow', 'scheduled'],
      ['next week', 'scheduled'],
      ['ended today', 'ended'],
      ['ended long ago', 'ended'],
    ]);
    // The input is left as it was.
    expect(list[0]?.title).toBe('ended long ago');
  });
});
