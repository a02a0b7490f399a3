// What a status page's visitors see of its announcements at a moment: which are scheduled, going on or over, in the
// order they matter (what is going on first, then what comes next, then what ended last). Before, an announcement of
// maintenance next week was shown as "ongoing" from the moment it was written.

export type AnnouncementState = 'scheduled' | 'ongoing' | 'ended';

export interface TimedAnnouncement {
  startsAt: string;
  endsAt?: string | null;
}

/** `scheduled` before startsAt, `ended` from endsAt on, `ongoing` between (no endsAt: until one is given). */
export function announcementState(a: TimedAnnouncement, now: number): AnnouncementState {
  if (Date.parse(a.startsAt) > now) return 'scheduled';
  if (a.endsAt && Date.parse(a.endsAt) <= now) return 'ended';
  return 'ongoing';
}

const RANK: Record<AnnouncementState, number> = { ongoing: 0, scheduled: 1, ended: 2 };

/**
 * The announcements with their state, ongoing first (latest started first), then scheduled (soonest first), then
 * ended (latest ended first); the configured order breaks ties.
 */
export function announcementsAt<A extends TimedAnnouncement>(
  announcements: readonly A[],
  now: number,
): Array<A & { state: AnnouncementState }> {
  const timed = announcements.map((a, i) => ({ a: { ...a, state: announcementState(a, now) }, i }));
  const key = ({ a }: (typeof timed)[number]): number =>
    a.state === 'ongoing'
      ? -Date.parse(a.startsAt)
      : a.state === 'scheduled'
        ? Date.parse(a.startsAt)
        : -Date.parse(a.endsAt as string);
  return timed.sort((x, y) => RANK[x.a.state] - RANK[y.a.state] || key(x) - key(y) || x.i - y.i).map(({ a }) => a);
}
