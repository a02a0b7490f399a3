import { useEffect, useState } from 'react';
import { relativeTime } from './status-badge';

const subscribers = new Set<(now: number) => void>();
let timer: ReturnType<typeof setInterval> | null = null;

/** One shared clock for every relative time on the page (a re-render every 5 s, not one timer per cell). */
export function useNow(periodMs = 5000): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    subscribers.add(setNow);
    timer ??= setInterval(() => {
      const t = Date.now();
      for (const s of subscribers) s(t);
    }, periodMs);
    return () => {
      subscribers.delete(setNow);
      if (subscribers.size === 0 && timer) {
        clearInterval(timer);
        timer = null;
      }
    };
  }, [periodMs]);
  return now;
}

// Building an Intl.DateTimeFormat costs far more than using one (a list re-rendering
// while it scrolls would spend its frames on it): one per set of options, kept.
const formatters = new Map<string, Intl.DateTimeFormat>();
const DEFAULT_FORMAT: Intl.DateTimeFormatOptions = { dateStyle: 'medium', timeStyle: 'medium' };

/** A moment in the viewer's own time zone and locale ("2 Dec 2026, 16:04:05"). */
export function formatLocal(iso: string | number | null, options: Intl.DateTimeFormatOptions = DEFAULT_FORMAT): string {
  if (iso === null) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '—';
  const key = JSON.stringify(options);
  let f = formatters.get(key);
  if (!f) formatters.set(key, (f = new Intl.DateTimeFormat(undefined, options)));
  return f.format(d);
}

/** "5 min ago", with the exact local time as its tooltip and machine-readable `datetime`. */
export function RelativeTime({ iso }: { iso: string | null }) {
  // The shared clock re-renders every 5 s; a cell rendered between its ticks (a row updated live) is told the time
  // now: against the last tick, a change that had just arrived read "in 2 s", and cells of one row disagreed.
  const now = Math.max(useNow(), Date.now());
  if (!iso) return <span className="fw-muted">never</span>;
  return (
    <time dateTime={iso} title={formatLocal(iso)}>
      {relativeTime(iso, now)}
    </time>
  );
}
