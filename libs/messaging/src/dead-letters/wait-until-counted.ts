/**
 * Waits until `ready()` (a queue's ready count, first `from`) reaches `target`, polling every `pollMs`, or until it has
 * not risen for `quietMs`: messages given back can take seconds to be counted again (a large DLQ) — wait while the
 * count still climbs — while a concurrent consumer of the queue (another look, a replay) can keep it lower for good.
 * Returns the last count. Internal to DeadLetterReader (not exported from the lib).
 */
export async function waitUntilCounted(
  ready: () => Promise<number>,
  from: number,
  target: number,
  quietMs: number,
  pollMs = 5,
): Promise<number> {
  let count = from;
  let progressAt = Date.now();
  while (count < target && Date.now() - progressAt < quietMs) {
    await new Promise((resolve) => setTimeout(resolve, pollMs));
    const now = await ready();
    if (now > count) progressAt = Date.now();
    count = now;
  }
  return count;
}
