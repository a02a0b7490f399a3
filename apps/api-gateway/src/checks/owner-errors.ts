import { ArgumentsHost, Catch, ExceptionFilter } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { ApiErrorBody, ApiErrorCode } from '@fleetwatch/contracts';
import { ConflictError, InvalidError, NotFoundError, UnavailableError } from '@fleetwatch/domain';
import { RpcError } from '@fleetwatch/messaging';
import { ApiErrorFilter } from '@fleetwatch/observability';

/** A write whose `If-Match` is stale: 409 carrying the version the owner holds now. */
export class StaleVersionError extends ConflictError {
  constructor(
    message: string,
    readonly currentVersion: number | undefined,
  ) {
    super(message);
  }
}

/**
 * The owner refused a well-formed request by policy (a check whose target the deny list
 * forbids): 422, not 400 (nothing is malformed) and not 403 (the caller's role is fine).
 */
export class DeniedError extends InvalidError {}

/** Seconds a client should wait after the owner did not answer. */
const RETRY_AFTER_SECONDS = 2;

/** The domain error an RPC failure stands for at the gateway (the global filter maps those to HTTP). */
export function domainErrorOf(e: RpcError): Error {
  switch (e.code) {
    case 'invalid':
      return new InvalidError(e.message, e.issues ?? []);
    case 'denied':
      return new DeniedError(e.message, e.issues ?? []);
    case 'not_found':
      return new NotFoundError(e.message);
    case 'conflict':
      return new StaleVersionError(e.message, e.currentVersion);
    case 'unavailable':
      return new UnavailableError(e.message, RETRY_AFTER_SECONDS);
    case 'internal':
      return e; // a logged 500: the owner logged the details under the correlation id
  }
}

/**
 * The global ApiErrorFilter, plus the two answers of the configuration routes it does not
 * know: 409 with `currentVersion` (and the current ETag) and 422 `denied`.
 */
@Catch()
export class ConfigApiErrorFilter implements ExceptionFilter {
  private readonly fallback = new ApiErrorFilter();

  catch(error: unknown, host: ArgumentsHost): void {
    if (host.getType() === 'http' && (error instanceof StaleVersionError || error instanceof DeniedError)) {
      const reply = host.switchToHttp().getResponse<FastifyReply>();
      if (reply.sent) return;
      if (error instanceof StaleVersionError) {
        const body: ApiErrorBody = { error: { code: ApiErrorCode.Conflict, message: error.message } };
        if (error.currentVersion !== undefined) {
          body.error.currentVersion = error.currentVersion;
          void reply.header('etag', etagOf(error.currentVersion));
        }
        void reply.status(409).send(body);
        return;
      }
      const body: ApiErrorBody = { error: { code: ApiErrorCode.Denied, message: error.message } };
      if (error.issues.length) body.error.issues = error.issues;
      void reply.status(422).send(body);
      return;
    }
    this.fallback.catch(error, host);
  }
}

/** A version as a strong entity tag. */
export function etagOf(version: number): string {
  return `"${version}"`;
}
