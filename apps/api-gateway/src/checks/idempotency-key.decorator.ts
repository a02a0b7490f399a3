import { createParamDecorator, type ExecutionContext } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';

/**
 * Every `Idempotency-Key` value of the request, one per header line as sent (undefined when there is none), for
 * request-envelope's `idempotencyKeyOf`: Node joins a repeated header into one value (`a, b`), which would read as
 * one key holding a space, so the lines are counted from the raw headers.
 */
export const IdempotencyKeyHeader = createParamDecorator(
  (_data: unknown, ctx: ExecutionContext): string[] | undefined => idempotencyKeyLines(ctx.switchToHttp().getRequest()),
);

/** The `Idempotency-Key` lines of a request (raw headers: name, value, name, value, …). */
export function idempotencyKeyLines(request: Pick<FastifyRequest, 'raw' | 'headers'>): string[] | undefined {
  const raw = request.raw?.rawHeaders;
  if (!Array.isArray(raw)) {
    const joined = request.headers['idempotency-key'];
    return joined === undefined ? undefined : Array.isArray(joined) ? joined : [joined];
  }
  const values: string[] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) if (raw[i].toLowerCase() === 'idempotency-key') values.push(raw[i + 1]);
  return values.length > 0 ? values : undefined;
}
