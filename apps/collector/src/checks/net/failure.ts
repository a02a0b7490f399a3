// Turns what went wrong in an attempt into the result's failureReason (for people):
// "connect ECONNREFUSED 127.0.0.1:9", "timed out after 2000 ms", the policy's denial.
// Errors are read by shape, not `instanceof Error`: Node's internal errors may come from
// another realm (Jest's VM context is one) and would otherwise print as "Error: …".

interface ErrorLike {
  name?: unknown;
  message?: unknown;
  cause?: unknown;
  errors?: unknown;
  /** OpenSSL's errors: `library` ("SSL routines") and `reason` ("wrong version number"). */
  library?: unknown;
  reason?: unknown;
  code?: unknown;
}

function asError(e: unknown): ErrorLike | null {
  return typeof e === 'object' && e !== null && 'message' in e ? (e as ErrorLike) : null;
}

export function failureReasonOf(err: unknown, ctx: { signal: AbortSignal; timeoutMs: number }): string {
  if (ctx.signal.aborted) {
    const reason = asError(ctx.signal.reason);
    // The runner aborts at the timeout (AbortSignal.timeout → TimeoutError, or a plain abort());
    // any other reason (shutdown) is reported as given.
    if (!reason || reason.name === 'TimeoutError' || reason.name === 'AbortError')
      return `timed out after ${ctx.timeoutMs} ms`;
    return `aborted: ${String(reason.message)}`;
  }
  const e = asError(err);
  if (!e) return String(err);
  if (Array.isArray(e.errors) && e.errors.length > 0) return failureReasonOf(e.errors[0], ctx);
  // OpenSSL's message is `809C…:error:0A00010B:SSL routines:ssl3_get_record:wrong version number:../deps/openssl/
  // openssl/ssl/record/ssl3_record.c:350:` and a line break: its thread's id (another in every collector process, so
  // the same fault read as a new one), a source file, and the one part that says anything, its `reason`.
  if (typeof e.library === 'string' && typeof e.reason === 'string' && e.reason) {
    const hint = e.code === 'ERR_SSL_WRONG_VERSION_NUMBER' ? ' (the port does not speak TLS?)' : '';
    return `TLS: ${e.reason}${hint}`;
  }
  const message = String(e.message || e.name || 'failed');
  const cause = asError(e.cause);
  if (cause && cause.message && cause.message !== message) return `${message}: ${String(cause.message)}`;
  return message;
}
