/**
 * Typed bus errors. Callers branch on the class (503 + Retry-After, spool to
 * disk, retry) rather than on message text; every publish failure is one of these.
 */
export class BusError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** No usable connection/channel within the deadline, or it closed before the broker confirmed. */
export class BusUnavailableError extends BusError {
  /**
   * True when the message may already have reached the broker (the channel closed
   * after the send, before the confirm): a retry can produce a duplicate, which
   * consumers absorb by message id.
   */
  readonly maybeDelivered: boolean;
  constructor(message: string, options: { cause?: unknown; maybeDelivered?: boolean } = {}) {
    super(message, options);
    this.maybeDelivered = options.maybeDelivered ?? false;
  }
}

/**
 * The broker blocks publishing for a resource alarm (memory or disk,
 * `connection.blocked`). Raised at once instead of waiting out the publish
 * timeout. A message that was already sent when the alarm came may still be
 * stored once it clears (`maybeDelivered`): a retry with the same id is absorbed.
 */
export class BrokerBlockedError extends BusError {
  readonly maybeDelivered: boolean;
  constructor(
    message: string,
    readonly reason: string,
    options: { maybeDelivered?: boolean } = {},
  ) {
    super(message);
    this.maybeDelivered = options.maybeDelivered ?? false;
  }
}

/** The broker refused to take responsibility for the message (basic.nack), e.g. a full quorum queue with `reject-publish`. */
export class PublishNackedError extends BusError {}

/** The broker did not confirm within the deadline (broker blocked, network stalled). Outcome unknown: retry. */
export class PublishTimeoutError extends BusError {
  readonly timeoutMs: number;
  constructor(message: string, timeoutMs: number) {
    super(message);
    this.timeoutMs = timeoutMs;
  }
}

/** A `mandatory` publish matched no queue (basic.return): nobody would ever have read it. */
export class PublishUnroutableError extends BusError {
  constructor(
    message: string,
    readonly exchange: string,
    readonly routingKey: string,
    readonly replyText: string,
  ) {
    super(message);
  }
}

/** The payload failed its contract schema: it never left the process. Not retryable. */
export class InvalidMessageError extends BusError {
  constructor(
    message: string,
    readonly reason: string,
  ) {
    super(message);
  }
}

/** The publisher or consumer was closed by the application. */
export class BusClosedError extends BusError {}

/**
 * Thrown by a handler for a message that can never succeed (unknown target,
 * refused command): it is dead-lettered at once with this reason instead of being retried.
 */
export class PermanentError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PermanentError';
  }
}

/**
 * Thrown by a handler for a message that is not a failure but is not this consumer's to
 * handle now (e.g. its shard was taken by another replica): it goes back to the queue for
 * whoever holds it. Never dead-lettered for its own sake: while the message's delivery count
 * leaves room it is requeued; near the delivery limit a fresh copy (delivery count 0) is
 * published to the same queue and confirmed before the original is acked (see Settlement).
 */
export class RedeliverError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RedeliverError';
  }
}

/**
 * Thrown by a handler when a dependency it needs (a store) is away: not the message's fault. The consumer holds
 * the delivery (never returned to the queue, so no attempt of its delivery limit is spent), pauses and calls the
 * handler again with backoff until it succeeds or fails otherwise (SPEC §3). libs/domain's UnavailableError (what
 * repositories throw while the database is away) counts the same, recognised by its `kind`.
 */
export class TransientError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TransientError';
  }
}

/** A handler failure to wait out (see TransientError). */
export function isTransientFailure(error: unknown): boolean {
  if (error instanceof TransientError) return true;
  return error instanceof Error && (error as { kind?: unknown }).kind === 'unavailable';
}

export function errorMessage(e: unknown): string {
  if (e instanceof Error) return e.message;
  return String(e);
}
