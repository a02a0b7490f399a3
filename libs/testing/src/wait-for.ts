export interface WaitForOptions {
  /** Give up after this long (default 10 s). */
  timeoutMs?: number;
  /** Poll interval (default 50 ms). */
  intervalMs?: number;
  /** What is awaited, for the timeout message: "queue orders to be empty". */
  description?: string;
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
      throw new Error(
        `waitFor: timed out after ${elapsed} ms (${attempts} attempts) waiting for ${description}; ${last}`,
      );
    }
    await sleep(Math.min(intervalMs, Math.max(0, timeoutMs - elapsed)));
  }
}
