import type { PublicStatusPage } from '@fleetwatch/contracts';

type Announcement = PublicStatusPage['announcements'][number];

function when(iso: string): string {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}

/** When an announcement is, said for its state: one scheduled for next week is not "ongoing". */
export function announcementWhen(a: Announcement): string {
  const until = a.endsAt ? ` until ${when(a.endsAt)}` : '';
  if (a.state === 'scheduled') return `scheduled from ${when(a.startsAt)}${until}`;
  if (a.state === 'ended') return `${when(a.startsAt)} – ${when(a.endsAt ?? a.startsAt)} (ended)`;
  return `ongoing since ${when(a.startsAt)}${until}`;
}
