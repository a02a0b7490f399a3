import { TargetStatus } from '@fleetwatch/contracts';

export const STATUS_COLORS: Record<TargetStatus, string> = {
  [TargetStatus.Up]: '#1f9d55',
  [TargetStatus.Down]: '#d64545',
  [TargetStatus.Partial]: '#e8a317',
  [TargetStatus.Stale]: '#8a8f98',
  [TargetStatus.Paused]: '#5b7bd5',
  [TargetStatus.Unknown]: '#b0b4ba',
};

export function StatusBadge({ status }: { status: TargetStatus }) {
  return (
    <span
      className="fw-status"
      data-status={status}
      style={{
        background: STATUS_COLORS[status],
        color: '#fff',
        borderRadius: 4,
        padding: '1px 8px',
        fontSize: 12,
        fontWeight: 600,
      }}
    >
      {status}
    </span>
  );
}

/** "3 s ago", "5 min ago", "2 h ago" — for last-seen columns. */
export function relativeTime(iso: string | null, now: number = Date.now()): string {
  if (!iso) return 'never';
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86_400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86_400)} d ago`;
}
