import { Body, Controller, Delete, Get, Headers, HttpCode, Param, Put, Query, Res, UseFilters } from '@nestjs/common';
import { ApiOperation, ApiParam, ApiTags } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import {
  PROPERTY_KEY_PATTERN,
  PROPERTY_LIMITS,
  propertyBodySchema,
  PropertyRpcMethod as M,
  UserRole,
  type PropertyDefinition,
} from '@fleetwatch/contracts';
import { InvalidError } from '@fleetwatch/domain';
import { z } from 'zod';
import { RequireRole } from '../auth/access.decorator';
import { CurrentPrincipal, type Principal } from '../auth/principal';
import { ApiVersionedWrite } from '../checks/checks.openapi';
import { ConfigApiErrorFilter, etagOf } from '../checks/owner-errors';
import { IdempotencyKeyHeader } from '../checks/idempotency-key.decorator';
import { actorOf, expectedVersionOf, idempotencyKeyOf, objectBody } from '../checks/request-envelope';
import { ApiZodQuery } from '../web/openapi';
import { PropertiesOwner } from './properties-owner.service';

// Site properties over REST (issue 19): key → JSON value, configuration of the site like checks and
// alert rules (versioned, audited, in snapshots and config as code). GET list / GET one (ETag: the
// config version that last wrote it) / PUT (create 201 or replace 200; If-Match → 409 when stale,
// `"0"`: only if absent) / DELETE (204). Viewers read; operators (and admins, and API keys with
// `write`) write. The body `{value}` is validated here with the contract and again by the owner (400
// naming `value…`): here because JSON text such as `1e400` reads as Infinity, which no store keeps and
// the bus would carry as null (`[1e400]` stored as `[null]`); the owner sees only what the bus carried.

const listQuerySchema = z.strictObject({
  prefix: z.string().min(1).max(PROPERTY_LIMITS.keyLength).optional(),
});

/** The path's key, checked here too: a bad one never travels (400 naming `key`). */
function keyOf(key: string): string {
  if (key.length > PROPERTY_LIMITS.keyLength || !PROPERTY_KEY_PATTERN.test(key))
    throw new InvalidError(`key: not a property key: "${key.slice(0, 64)}"`, [
      {
        path: 'key',
        message: `1-${PROPERTY_LIMITS.keyLength} letters, digits, ".", "_", "-" and ":", starting with a letter or digit`,
      },
    ]);
  return key;
}

/** The `{value}` body as the contract takes it, checked before the bus (which writes ±Infinity as null). */
function bodyOf(body: unknown): Record<string, unknown> {
  const object = objectBody(body);
  const r = propertyBodySchema.safeParse(object);
  if (r.success) return object;
  const issues = r.error.issues.map((i) => ({ path: i.path.map(String).join('.') || '(body)', message: i.message }));
  throw new InvalidError(
    `invalid property: ${issues[0].path}: ${issues[0].message}${issues.length > 1 ? ` (and ${issues.length - 1} more)` : ''}`,
    issues.slice(0, 200),
  );
}

const keyParam = ApiParam({ name: 'key', description: 'property key (`site.displayName`)' });

@ApiTags('properties')
@Controller('api/v1/properties')
@UseFilters(ConfigApiErrorFilter)
export class PropertiesController {
  constructor(private readonly owner: PropertiesOwner) {}

  @Get()
  @RequireRole(UserRole.Viewer)
  @ApiOperation({
    summary: "The site's properties",
    description: 'Every property (at most 10,000), by key in byte order; `prefix` keeps keys that start with it.',
  })
  @ApiZodQuery(listQuerySchema)
  list(@Query() query: unknown): Promise<{ items: PropertyDefinition[] }> {
    return this.owner.call(M.List, listQuerySchema.parse(query ?? {}));
  }

  @Get(':key')
  @keyParam
  @RequireRole(UserRole.Viewer)
  @ApiOperation({ summary: 'One property; the config version that last wrote it is the ETag' })
  async get(@Param('key') key: string, @Res({ passthrough: true }) reply: FastifyReply): Promise<PropertyDefinition> {
    const { property } = await this.owner.call(M.Get, { key: keyOf(key) });
    void reply.header('etag', etagOf(property.version));
    return property;
  }

  @Put(':key')
  @keyParam
  @RequireRole(UserRole.Operator)
  @ApiOperation({
    summary: 'Set a property (operator): 201 when created, 200 when replaced',
    description:
      'Body `{"value": <any JSON value but null>}`, at most 16 KiB of JSON and 32 levels deep; strings without NUL (U+0000) or lone surrogates. A bad key or value is a 400 naming it. If-Match optional; `"0"` sets it only if it does not exist. The same value again is no change (no new version).',
  })
  @ApiVersionedWrite({ notFound: false, idempotencyKey: true })
  async put(
    @CurrentPrincipal() principal: Principal,
    @Param('key') key: string,
    @Headers('if-match') ifMatch: string | undefined,
    @Body() body: unknown,
    @Res({ passthrough: true }) reply: FastifyReply,
    @IdempotencyKeyHeader() idempotencyKey: string[] | undefined,
  ): Promise<PropertyDefinition> {
    const expectedVersion = expectedVersionOf(ifMatch);
    const params = { actor: actorOf(principal), key: keyOf(key), body: bodyOf(body), expectedVersion };
    const { property, created } = await this.owner.call(M.Put, params, idempotencyKeyOf(idempotencyKey));
    void reply.status(created ? 201 : 200).header('etag', etagOf(property.version));
    if (created) void reply.header('location', `/api/v1/properties/${encodeURIComponent(property.key)}`);
    return property;
  }

  @Delete(':key')
  @keyParam
  @HttpCode(204)
  @RequireRole(UserRole.Operator)
  @ApiOperation({ summary: 'Delete a property (operator); If-Match optional' })
  @ApiVersionedWrite({ idempotencyKey: true })
  async delete(
    @CurrentPrincipal() principal: Principal,
    @Param('key') key: string,
    @Headers('if-match') ifMatch: string | undefined,
    @IdempotencyKeyHeader() idempotencyKey: string[] | undefined,
  ): Promise<void> {
    const expectedVersion = expectedVersionOf(ifMatch);
    const params = { actor: actorOf(principal), key: keyOf(key), expectedVersion };
    await this.owner.call(M.Delete, params, idempotencyKeyOf(idempotencyKey));
  }
}
