/** "45 s", "12 min", "3 h 5 min", "2 d 4 h": how long an alert has been in its state. */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min`;
  const h = Math.floor(m / 60);
  if (h < 24) return m % 60 ? `${h} h ${m % 60} min` : `${h} h`;
  const d = Math.floor(h / 24);
  return h % 24 ? `${d} d ${h % 24} h` : `${d} d`;
}

/** Seconds in its state now: the answer's figure (at `generatedAt`) plus the time since. */
export function secondsNow(durationSeconds: number, generatedAt: string, now: number): number {
  const at = Date.parse(generatedAt);
  return durationSeconds + (Number.isNaN(at) ? 0 : Math.max(0, (now - at) / 1000));
}
