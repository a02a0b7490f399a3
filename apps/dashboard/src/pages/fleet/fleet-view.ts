import {
  TargetStatus,
  type FlowFigures,
  type FlowPoint,
  type LeaderMemberView,
  type MemberState,
} from '@fleetwatch/contracts';

// The Fleet page's pure parts: which view is chosen (URL, then what was chosen last), the tag
// filter, and the figures a card shows. Members are filtered by tag only, never by state: a
// member that stopped reporting stays on the page, greyed, with its age and error.

export const FLEET_VIEWS = ['summary', 'detailed', 'ingress', 'egress', 'storage', 'deleted'] as const;
export type FleetView = (typeof FLEET_VIEWS)[number];
export const DEFAULT_VIEW: FleetView = 'summary';

export const VIEW_LABELS: Record<FleetView, string> = {
  summary: 'Summary',
  detailed: 'Detailed',
  ingress: 'Ingress',
  egress: 'Egress',
  storage: 'Storage',
  deleted: 'Deleted',
};

export function parseView(value: string | null | undefined): FleetView | null {
  return FLEET_VIEWS.find((v) => v === value) ?? null;
}

/** The view shown: the URL's when it names one, else the one chosen last, else the summary. */
export function chosenView(fromUrl: string | null, stored: string | null): FleetView {
  return parseView(fromUrl) ?? parseView(stored) ?? DEFAULT_VIEW;
}

/** The flow figure a flow view shows (null for summary and detailed). */
export function flowFigureOf(view: FleetView): keyof FlowFigures | null {
  switch (view) {
    case 'ingress':
    case 'egress':
    case 'deleted':
      return view;
    case 'storage':
      return 'stored';
    default:
      return null;
  }
}

/** Every tag of the members, sorted, once. */
export function tagsOf(members: readonly LeaderMemberView[]): string[] {
  return [...new Set(members.flatMap((m) => m.tags))].sort();
}

/** Members carrying `tag` (all of them for ''), in their order; the state never filters. */
export function withTag(members: readonly LeaderMemberView[], tag: string): LeaderMemberView[] {
  return tag === '' ? [...members] : members.filter((m) => m.tags.includes(tag));
}

/** How a member's state reads, and the status colour it borrows. */
export function stateBadge(state: MemberState): { label: string; status: TargetStatus } {
  if (state === 'OK') return { label: 'OK', status: TargetStatus.Up };
  if (state === 'STALE') return { label: 'STALE', status: TargetStatus.Stale };
  return { label: 'NEVER REACHED', status: TargetStatus.Unknown };
}

/** "3 min" / "2 h 5 min" / "45 s" — the age of a member's last good data. */
export function ageText(seconds: number | null): string {
  if (seconds === null) return 'no data yet';
  if (seconds < 60) return `${seconds} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min`;
  if (seconds < 86_400) {
    const m = Math.floor((seconds % 3600) / 60);
    return `${Math.floor(seconds / 3600)} h${m ? ` ${m} min` : ''}`;
  }
  return `${Math.floor(seconds / 86_400)} d`;
}

export function pctText(n: number | null | undefined): string {
  return n === null || n === undefined || !Number.isFinite(n) ? '—' : `${n.toFixed(0)} %`;
}

export function countText(n: number | null | undefined): string {
  return n === null || n === undefined ? '—' : n.toLocaleString();
}

export function bytesText(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = Math.abs(n);
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v.toFixed(0) : v.toFixed(1)} ${units[i]}`;
}

/** One figure's per-minute counts as a sparkline series (seconds, oldest first; null where unknown). */
export function flowSeries(
  points: readonly FlowPoint[] | null | undefined,
  figure: keyof FlowFigures,
): { times: number[]; values: (number | null)[] } {
  const sorted = [...(points ?? [])].sort((a, b) => Date.parse(a.at) - Date.parse(b.at));
  return { times: sorted.map((p) => Date.parse(p.at) / 1000), values: sorted.map((p) => p[figure].count) };
}

/** The sum of one figure over the points (null when no point knows it). */
export function flowTotal(
  points: readonly FlowPoint[] | null | undefined,
  figure: keyof FlowFigures,
): { count: number | null; bytes: number | null } {
  let count: number | null = null;
  let bytes: number | null = null;
  for (const p of points ?? []) {
    if (p[figure].count !== null) count = (count ?? 0) + p[figure].count;
    if (p[figure].bytes !== null) bytes = (bytes ?? 0) + p[figure].bytes;
  }
  return { count, bytes };
}
