// Where in its interval a check runs. The offset comes from a hash of the check's id, so
// checks spread evenly over the interval (10,000 checks of one minute ≈ 167 starts a
// second, not 10,000 at :00) and the same check keeps the same phase across restarts and
// across collectors. Planned times sit on a grid anchored at the Unix epoch, not at the
// moment the collector started: a restarted collector plans the very same instants.

/** FNV-1a over UTF-16 code units, then murmur3's finalizer: cheap, and well mixed for UUID-like ids. */
export function hash32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The check's offset within its interval, in [0, intervalMs). */
export function phaseOf(id: string, intervalMs: number): number {
  return Math.floor((hash32(id) / 0x1_0000_0000) * intervalMs);
}

/** The first planned instant at or after `now` on the grid `phase + k·interval` (epoch ms). */
export function nextSlotAtOrAfter(now: number, intervalMs: number, phaseMs: number): number {
  const k = Math.ceil((now - phaseMs) / intervalMs);
  return k * intervalMs + phaseMs;
}
