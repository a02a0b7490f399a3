/**
 * Typed, transport-neutral errors. Services throw these; each transport maps
 * them once (HTTP: the observability error filter; bus: ack/nack/dead-letter).
 * Never throw HTTP exceptions from code that also runs behind a message handler.
 */
export interface ErrorIssue {
  path: string;
  message: string;
}

export abstract class DomainError extends Error {
  abstract readonly kind:
    | 'invalid'
    | 'not_found'
    | 'conflict'
    | 'unauthorized'
    | 'forbidden'
    | 'rate_limited'
    | 'unavailable'
    | 'payload_too_large';
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

export class InvalidError extends DomainError {
  readonly kind = 'invalid' as const;
  constructor(
    message: string,
    readonly issues: ErrorIssue[] = [],
  ) {
    super(message);
  }
}
export class NotFoundError extends DomainError {
  readonly kind = 'not_found' as const;
}
export class ConflictError extends DomainError {
  readonly kind = 'conflict' as const;
}
export class UnauthorizedError extends DomainError {
  readonly kind = 'unauthorized' as const;
}
export class ForbiddenError extends DomainError {
  readonly kind = 'forbidden' as const;
}
export class PayloadTooLargeError extends DomainError {
  readonly kind = 'payload_too_large' as const;
}
export class RateLimitedError extends DomainError {
  readonly kind = 'rate_limited' as const;
  constructor(
    message: string,
    readonly retryAfterSeconds: number,
  ) {
    super(message);
  }
}
/** A dependency (broker, database) is away or ingress is paused: retry later. */
export class UnavailableError extends DomainError {
  readonly kind = 'unavailable' as const;
  /** Something is away or slow (logged as an outage); false where the 503 is on purpose (an operator's pause). */
  readonly outage: boolean = true;
  constructor(
    message: string,
    readonly retryAfterSeconds: number,
    /** The database's SQLSTATE where it said so (e.g. 57014, a statement timeout). */
    readonly sqlState?: string,
  ) {
    super(message);
  }
}
