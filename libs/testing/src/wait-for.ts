export interface WaitForOptions {
  /** Give up after this long (default 10 s). */
  timeoutMs?: number;
  /** Poll interval (default 50 ms). */
  intervalMs?: number;
  /**
   * What is awaited, for the timeout message: "queue orders to be empty". A function is called at the timeout, so the
   * message can carry what a process printed by then (its output while waiting, not before the wait began).
   */
  description?: string | (() => string);
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Polls `predicate` until it returns a truthy value and resolves with that value.
 * A throwing predicate counts as "not yet"; its last error is part of the timeout
 * message, so a failed wait says what it saw last.
 */
export async function waitFor<T>(
  predicate: () => T | Promise<T>,
  { timeoutMs = 10_000, intervalMs = 50, description = 'condition' }: WaitForOptions = {},
): Promise<NonNullable<T>> {
  const started = Date.now();
  let lastError: unknown;
  let attempts = 0;
  for (;;) {
    attempts++;
    try {
      const value = await predicate();
      if (value) return value as NonNullable<T>;
      lastError = undefined;
    } catch (err) {
      lastError = err;
    }
    const elapsed = Date.now() - started;
    if (elapsed >= timeoutMs) {
      const last =
        lastError === undefined
          ? 'last result was falsy'
          : `last error: ${lastError instanceof Error ? lastError.message : String(lastError)}`;
      const what = typeof description === 'function' ? description() : description;
      throw new Error(`waitFor: timed out after ${elapsed} ms (${attempts} attempts) waiting for ${what}; ${last}`);
    }
    await sleep(Math.min(intervalMs, Math.max(0, timeoutMs - elapsed)));
  }
}
