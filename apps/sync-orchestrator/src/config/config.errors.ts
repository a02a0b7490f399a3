import { ConflictError, ForbiddenError, type ErrorIssue } from '@fleetwatch/domain';

// Two refusals of the configuration owner that carry more than a message. Both are the
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
