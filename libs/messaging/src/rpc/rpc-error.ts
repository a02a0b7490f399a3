import { rpcReplySchema, type RpcErrorCode, type RpcReply } from '@fleetwatch/contracts';
import { ZodError } from 'zod';
import { BusError, errorMessage } from '../errors';

/** One problem of an `invalid` answer, naming the field (`conditions.1`, `checks.3.url`). */
export interface RpcIssue {
  path: string;
  message: string;
}

export interface RpcErrorDetails {
  issues?: RpcIssue[];
  /** `conflict`: the version the owner holds now, so the caller can re-read. */
  currentVersion?: number;
  cause?: unknown;
}

/**
 * A request/response call that failed, by the contract's code (`rpcErrorCodeSchema`):
 *
 * - On the caller's side, RpcClient rejects with it: the owner's error reply as it came
 *   (`invalid` with issues, `not_found`, `conflict` with currentVersion, `denied`,
 *   `internal`), or `unavailable` when the owner did not answer by the deadline, the
 *   request could not be published, or the connection carrying the reply dropped.
 *   The caller maps it to its own transport (the gateway: domain errors → HTTP).
 * - On the owner's side, a handler may throw it to choose the reply exactly; domain
 *   errors are mapped by their `kind` (see `replyForError`).
 *
 * It lives here, not in libs/domain, because the bus lib may not import domain (Nx
 * boundaries); libs/domain errors are recognised by shape.
 */
export class RpcError extends BusError {
  readonly issues: RpcIssue[] | undefined;
  readonly currentVersion: number | undefined;
  constructor(
    readonly code: RpcErrorCode,
    message: string,
    details: RpcErrorDetails = {},
  ) {
    super(message, { cause: details.cause });
    this.issues = details.issues;
    this.currentVersion = details.currentVersion;
  }
}

/** Bounds of an error reply (rpcReplySchema): longer text is cut, not refused. */
const MAX_MESSAGE = 4_096;
const MAX_ISSUES = 200;

function cut(text: string, max = MAX_MESSAGE): string {
  return text.length > max ? `${text.slice(0, max - 3)}...` : text;
}

/** The error reply a failure becomes, or undefined when it is not one we know (→ `internal`). */
export function knownErrorReply(error: unknown): Extract<RpcReply, { ok: false }> | undefined {
  if (error instanceof RpcError) return errorReply(error.code, error.message, error.issues, error.currentVersion);
  if (error instanceof ZodError)
    return errorReply(
      'invalid',
      error.issues.map((i) => `${i.path.length ? i.path.join('.') : '(params)'}: ${i.message}`).join('; '),
      error.issues.map((i) => ({ path: i.path.length ? i.path.join('.') : '(params)', message: i.message })),
    );
  const kind = domainKindOf(error);
  if (!kind) return undefined;
  const e = error as Error & { issues?: unknown; currentVersion?: unknown };
  switch (kind) {
    case 'invalid':
    case 'payload_too_large':
      return errorReply('invalid', e.message, issuesOf(e.issues));
    case 'not_found':
      return errorReply('not_found', e.message);
    case 'conflict':
      return errorReply('conflict', e.message, undefined, versionOf(e.currentVersion));
    // The owner authenticates nobody (the caller did): its refusals are policy ("target denied").
    case 'forbidden':
    case 'unauthorized':
    case 'denied':
      return errorReply('denied', e.message, issuesOf(e.issues));
    case 'unavailable':
    case 'rate_limited':
      return errorReply('unavailable', e.message);
    default:
      return undefined;
  }
}

/** The RpcError an error reply stands for (caller's side). */
export function errorOfReply(reply: Extract<RpcReply, { ok: false }>, method: string): RpcError {
  const { code, message, issues, currentVersion } = reply.error;
  return new RpcError(code, code === 'internal' ? `${method}: ${message}` : message, { issues, currentVersion });
}

export function errorReply(
  code: RpcErrorCode,
  message: string,
  issues?: RpcIssue[],
  currentVersion?: number,
): Extract<RpcReply, { ok: false }> {
  const error: Extract<RpcReply, { ok: false }>['error'] = { code, message: cut(message || code) };
  if (issues?.length)
    error.issues = issues.slice(0, MAX_ISSUES).map((i) => ({ path: cut(i.path, 512), message: cut(i.message, 1024) }));
  if (currentVersion !== undefined) error.currentVersion = currentVersion;
  return { ok: false, error };
}

/**
 * The body of a reply as JSON text, checked against the contract before it is sent. Text, not a
 * Buffer: the sender measures it (Buffer.byteLength) before copying it, so an answer too large to
 * send is never copied (at 128 MiB, that copy alone held the event loop about 0.2 s).
 */
export function encodeReply(reply: RpcReply): string {
  const parsed = rpcReplySchema.safeParse(reply);
  if (!parsed.success) throw new Error(`reply does not match rpcReplySchema: ${errorMessage(parsed.error)}`);
  return JSON.stringify(reply);
}

/** libs/domain's DomainError kinds (and `denied`, should domain grow one), recognised without importing it. */
const DOMAIN_KINDS = new Set([
  'invalid',
  'not_found',
  'conflict',
  'unauthorized',
  'forbidden',
  'denied',
  'rate_limited',
  'unavailable',
  'payload_too_large',
]);

function domainKindOf(error: unknown): string | undefined {
  if (!(error instanceof Error)) return undefined;
  const kind = (error as { kind?: unknown }).kind;
  return typeof kind === 'string' && DOMAIN_KINDS.has(kind) ? kind : undefined;
}

function issuesOf(value: unknown): RpcIssue[] | undefined {
  if (!Array.isArray(value)) return undefined;
  const out: RpcIssue[] = [];
  for (const i of value as unknown[]) {
    const { path, message } = (i ?? {}) as { path?: unknown; message?: unknown };
    if (typeof path === 'string' && typeof message === 'string') out.push({ path, message });
  }
  return out;
}

function versionOf(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 ? value : undefined;
}
