import { ConflictError, ForbiddenError, type ErrorIssue } from '@fleetwatch/domain';

// Refusals of the configuration owner that carry more than a message. Both are the
// domain's own kinds, so every transport maps them without knowing this file; the RPC
// reply adds what they carry (contracts' RpcReply: `currentVersion`, `issues`).

/** A write's expected version (If-Match) is not the current one: re-read and retry. */
export class VersionConflictError extends ConflictError {
  constructor(
    message: string,
    readonly currentVersion: number,
  ) {
    super(message);
  }
}

/** The target policy refuses an address a check names (SPEC §5): RPC code `denied`. */
export class TargetDeniedError extends ForbiddenError {
  constructor(
    message: string,
    readonly issues: ErrorIssue[],
  ) {
    super(message);
  }
}

/**
 * A client's `Idempotency-Key` sent again by the same caller for the same method with another body (another request):
 * refused without writing (RPC code `denied`, issue path `Idempotency-Key`; HTTP 422 as the IETF draft
 * draft-ietf-httpapi-idempotency-key-header asks).
 */
export class IdempotencyKeyReusedError extends ForbiddenError {
  constructor(
    message: string,
    readonly issues: ErrorIssue[],
  ) {
    super(message);
  }
}
