// Turns what went wrong in an attempt into the result's failureReason (for people):
// "connect ECONNREFUSED 127.0.0.1:9", "timed out after 2000 ms", the policy's denial.

export function failureReasonOf(err: unknown, ctx: { signal: AbortSignal; timeoutMs: number }): string {
  if (ctx.signal.aborted) {
    const reason: unknown = ctx.signal.reason;
    // The runner aborts at the timeout (AbortSignal.timeout → TimeoutError, or a plain abort());
    // any other reason (shutdown) is reported as given.
    if (!(reason instanceof Error) || reason.name === 'TimeoutError' || reason.name === 'AbortError')
      return `timed out after ${ctx.timeoutMs} ms`;
    return `aborted: ${reason.message}`;
  }
  if (err instanceof AggregateError && err.errors.length > 0) return failureReasonOf(err.errors[0], ctx);
  if (err instanceof Error) {
    const cause: unknown = (err as Error & { cause?: unknown }).cause;
    if (cause instanceof Error && cause.message && cause.message !== err.message)
      return `${err.message}: ${cause.message}`;
    return err.message || err.name;
  }
  return String(err);
}
