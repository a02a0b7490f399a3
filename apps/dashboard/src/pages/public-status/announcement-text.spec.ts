import { describe, expect, it } from 'vitest';
import { announcementWhen } from './announcement-text';

const base = { title: 't', body: '', severity: 'maintenance' as const };
const start = '2026-12-13T02:00:00Z';
const end = '2026-12-13T04:00:00Z';
const local = (iso: string) => new Date(iso).toLocaleString();

describe('announcementWhen', () => {
  it('says a scheduled one is scheduled, not ongoing', () => {
    expect(announcementWhen({ ...base, startsAt: start, endsAt: end, state: 'scheduled' })).toBe(
      `scheduled from ${local(start)} until ${local(end)}`,
    );
    expect(announcementWhen({ ...base, startsAt: start, endsAt: null, state: 'scheduled' })).toBe(
      `scheduled from ${local(start)}`,
    );
  });
  it('says since when one goes on, and until when if known', () => {
    expect(announcementWhen({ ...base, startsAt: start, endsAt: null, state: 'ongoing' })).toBe(
      `ongoing since ${local(start)}`,
    );
    expect(announcementWhen({ ...base, startsAt: start, endsAt: end, state: 'ongoing' })).toBe(
      `ongoing since ${local(start)} until ${local(end)}`,
    );
  });
  it('says an ended one ended', () => {
    expect(announcementWhen({ ...base, startsAt: start, endsAt: end, state: 'ended' })).toBe(
      `${local(start)} – ${local(end)} (ended)`,
    );
  });
});
