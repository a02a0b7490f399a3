import { TargetStatus } from '@fleetwatch/contracts';

/** A status as a coloured label; colours come from the theme (`.fw-status[data-status]`), not inline styles. */
export function StatusBadge({ status, label }: { status: TargetStatus; label?: string }) {
  return (
    <span className="fw-status" data-status={status}>
      {label ?? status}
    </span>
  );
}

/** "3 s ago", "5 min ago", "2 h ago" — for last-seen columns. */
export function relativeTime(iso: string | null, now: number = Date.now()): string {
  if (!iso) return 'never';
  const diff = Math.round((now - Date.parse(iso)) / 1000);
  if (Number.isNaN(diff)) return 'never';
  const s = Math.abs(diff);
  const ago = diff >= 0;
  const say = (n: number, unit: string) => (ago ? `${n} ${unit} ago` : `in ${n} ${unit}`);
  if (s < 60) return say(s, 's');
  if (s < 3600) return say(Math.floor(s / 60), 'min');
  if (s < 86_400) return say(Math.floor(s / 3600), 'h');
  return say(Math.floor(s / 86_400), 'd');
}
