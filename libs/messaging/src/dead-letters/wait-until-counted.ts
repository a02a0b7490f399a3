/**
 * Waits until `ready()` (a queue's ready count, first `from`) reaches `target`, polling every `pollMs`, or until it has
 * not risen above its highest yet for `quietMs`, or `maxMs` in all: messages given back can take seconds to be counted
 * again (a large DLQ) — wait while the count still climbs — while a concurrent consumer of the queue (another look, a
 * replay) can keep it lower for good, and one draining it while new dead letters come in can keep it moving for as
 * long as that lasts. Returns the last count. Internal to DeadLetterReader (not exported from the lib).
 */
export async function waitUntilCounted(
  ready: () => Promise<number>,
  from: number,
  target: number,
  quietMs: number,
  maxMs: number,
  pollMs = 5,
): Promise<number> {
  const started = Date.now();
  let count = from;
  let highest = from;
  let progressAt = started;
  while (count < target && Date.now() - progressAt < quietMs && Date.now() - started < maxMs) {
    await new Promise((resolve) => setTimeout(resolve, pollMs));
    count = await ready();
    if (count > highest) {
      highest = count;
      progressAt = Date.now();
    }
  }
  return count;
}
