import { ArgumentsHost, Catch, ExceptionFilter, HttpException, Logger } from '@nestjs/common';
import { ApiErrorBody, ApiErrorCode } from '@fleetwatch/contracts';
import { DomainError, InvalidError, RateLimitedError, UnavailableError } from '@fleetwatch/domain';
import type { FastifyReply } from 'fastify';
import { ZodError } from 'zod';

interface Mapped {
  status: number;
  body: ApiErrorBody;
  headers?: Record<string, string>;
}

const KIND_STATUS: Record<DomainError['kind'], [number, ApiErrorCode]> = {
  invalid: [400, ApiErrorCode.ValidationFailed],
  not_found: [404, ApiErrorCode.NotFound],
  conflict: [409, ApiErrorCode.Conflict],
  unauthorized: [401, ApiErrorCode.Unauthorized],
  forbidden: [403, ApiErrorCode.Forbidden],
  rate_limited: [429, ApiErrorCode.RateLimited],
  unavailable: [503, ApiErrorCode.Unavailable],
  payload_too_large: [413, ApiErrorCode.PayloadTooLarge],
};

const FASTIFY_CODES: Record<string, [number, ApiErrorCode, string]> = {
  FST_ERR_CTP_BODY_TOO_LARGE: [413, ApiErrorCode.PayloadTooLarge, 'request body is larger than the limit'],
  FST_ERR_CTP_INVALID_MEDIA_TYPE: [
    415,
    ApiErrorCode.UnsupportedMediaType,
    'unsupported content type: send application/json',
  ],
  FST_ERR_CTP_EMPTY_JSON_BODY: [400, ApiErrorCode.ValidationFailed, 'body is empty: send a JSON document'],
  FST_ERR_CTP_INVALID_JSON_BODY: [400, ApiErrorCode.ValidationFailed, 'body is not valid JSON'],
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: [400, ApiErrorCode.ValidationFailed, 'content-length does not match the body'],
  FST_ERR_BAD_URL: [400, ApiErrorCode.ValidationFailed, 'malformed URL'],
  FST_ERR_MAX_PARAM_LENGTH: [414, ApiErrorCode.ValidationFailed, 'a path parameter is too long'],
};

const HTTP_STATUS_CODES: Record<number, ApiErrorCode> = {
  401: ApiErrorCode.Unauthorized,
  403: ApiErrorCode.Forbidden,
  404: ApiErrorCode.NotFound,
  409: ApiErrorCode.Conflict,
  413: ApiErrorCode.PayloadTooLarge,
  415: ApiErrorCode.UnsupportedMediaType,
  429: ApiErrorCode.RateLimited,
  503: ApiErrorCode.Unavailable,
};

function body(code: string, message: string, issues?: { path: string; message: string }[]): ApiErrorBody {
  return { error: issues?.length ? { code, message, issues } : { code, message } };
}

/** Redis error replies that mean "not now" (memory full, a replica, loading, a failover…), not "never". */
const REDIS_NOT_NOW = /^(OOM|READONLY|LOADING|MISCONF|BUSY|CLUSTERDOWN|MASTERDOWN|TRYAGAIN|NOREPLICAS|EXECABORT)\b/;
/** What the Redis client (ioredis) rejects a command with while the server is away or silent. */
const REDIS_AWAY =
  /^(Connection is closed\.|Command timed out|Stream isn't writeable\b|Command aborted due to connection close)/;
/** Socket errors of a client on its way to a dependency. */
const SOCKET_AWAY = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EADDRNOTAVAIL',
]);

/**
 * A dependency outage that reached a handler as its client's own error rather than as an UnavailableError (Redis
 * reads go straight through ioredis): answered 503 with Retry-After, as an outage is, not as a 500 "internal error".
 */
export function isDependencyOutage(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const e = error as Error & { code?: unknown; syscall?: unknown };
  if (e.name === 'MaxRetriesPerRequestError') return true;
  if (e.name === 'ReplyError') return REDIS_NOT_NOW.test(e.message);
  if (typeof e.syscall === 'string' && typeof e.code === 'string') return SOCKET_AWAY.has(e.code);
  return REDIS_AWAY.test(e.message);
}

/** Maps any error to the ApiErrorBody shape. Unknown errors become a logged 500. */
export function mapError(error: unknown): Mapped {
  if (error instanceof DomainError) {
    const [status, code] = KIND_STATUS[error.kind];
    const headers: Record<string, string> = {};
    if (error instanceof RateLimitedError || error instanceof UnavailableError)
      headers['retry-after'] = String(Math.max(1, Math.ceil(error.retryAfterSeconds)));
    return {
      status,
      body: body(code, error.message, error instanceof InvalidError ? error.issues : undefined),
      headers,
    };
  }
  if (isDependencyOutage(error))
    return {
      status: 503,
      body: body(
        ApiErrorCode.Unavailable,
        'temporarily unavailable: a backing store did not answer; try again shortly',
      ),
      headers: { 'retry-after': '5' },
    };
  if (error instanceof ZodError) {
    const issues = error.issues.map((i) => ({ path: i.path.join('.') || '(body)', message: i.message }));
    return {
      status: 400,
      body: body(ApiErrorCode.ValidationFailed, issues.map((i) => `${i.path}: ${i.message}`).join('; '), issues),
    };
  }
  if (error instanceof HttpException) {
    const status = error.getStatus();
    const res = error.getResponse();
    const message = typeof res === 'string' ? res : String((res as { message?: unknown }).message ?? error.message);
    // Nest turns Fastify's own errors (body too large, unsupported media type) into HttpExceptions before filters see them.
    const code = HTTP_STATUS_CODES[status] ?? (status < 500 ? ApiErrorCode.ValidationFailed : ApiErrorCode.Internal);
    return { status, body: body(code, message) };
  }
  const e = error as { code?: string; statusCode?: number; message?: string };
  if (e && typeof e.code === 'string' && FASTIFY_CODES[e.code]) {
    const [status, code, message] = FASTIFY_CODES[e.code];
    return {
      status,
      body: body(
        code,
        `${message}${e.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || e.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE' ? '' : ''}`,
      ),
    };
  }
  if (e && error instanceof SyntaxError)
    return { status: 400, body: body(ApiErrorCode.ValidationFailed, `body is not valid JSON: ${e.message}`) };
  if (e && typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    return { status: e.statusCode, body: body(ApiErrorCode.ValidationFailed, e.message ?? 'bad request') };
  }
  return { status: 500, body: body(ApiErrorCode.Internal, 'internal error') };
}

@Catch()
export class ApiErrorFilter implements ExceptionFilter {
  private readonly logger = new Logger('ApiErrorFilter');
  catch(error: unknown, host: ArgumentsHost): void {
    if (host.getType() !== 'http') throw error;
    const reply = host.switchToHttp().getResponse<FastifyReply>();
    const mapped = mapError(error);
    if (mapped.status >= 500 && mapped.status !== 503)
      this.logger.error(error instanceof Error ? error : new Error(String(error)));
    else if ((error instanceof UnavailableError && error.outage) || isDependencyOutage(error))
      outageLog.note(this.logger, error as Error);
    if (reply.sent) return;
    void reply
      .status(mapped.status)
      .headers(mapped.headers ?? {})
      .send(mapped.body);
  }
}

/**
 * Outage answers (a dependency's own client error, or an UnavailableError: the database away, the broker away…) are
 * logged at most once per OUTAGE_LOG_INTERVAL_MS, with the error's words and a count.
 */
export const OUTAGE_LOG_INTERVAL_MS = 10_000;
const outageLog = {
  last: Number.NEGATIVE_INFINITY,
  since: 0,
  note(logger: Logger, error: Error): void {
    this.since++;
    const now = Date.now();
    if (now - this.last < OUTAGE_LOG_INTERVAL_MS) return;
    // An UnavailableError's words are the ones its answer carries already (the database's, never a query's arguments).
    const sqlState = error instanceof UnavailableError && error.sqlState ? `, SQLSTATE ${error.sqlState}` : '';
    logger.warn(
      `answered 503: a dependency is away or slow (${error.message}${sqlState}); ${this.since} such answer(s) since the last line`,
    );
    this.last = now;
    this.since = 0;
  },
};
