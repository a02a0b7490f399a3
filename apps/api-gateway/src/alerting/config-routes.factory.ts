import {
  Body,
  Controller,
  Delete,
  Get,
  Headers,
  HttpCode,
  Inject,
  Param,
  Patch,
  Post,
  Put,
  Query,
  Res,
  UseFilters,
  type Type,
} from '@nestjs/common';
import { ApiOperation, ApiParam, ApiTags } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { alertRuleIdSchema, UserRole, type AlertConfigRpcMethod, type Page } from '@fleetwatch/contracts';
import { InvalidError } from '@fleetwatch/domain';
import { z } from 'zod';
import { RequireRole } from '../auth/access.decorator';
import { CurrentPrincipal, type Principal } from '../auth/principal';
import { ApiVersionedWrite } from '../checks/checks.openapi';
import { ConfigApiErrorFilter, etagOf } from '../checks/owner-errors';
import { IdempotencyKeyHeader } from '../checks/idempotency-key.decorator';
import { actorOf, expectedVersionOf, idempotencyKeyOf, objectBody } from '../checks/request-envelope';
import { AlertConfigOwner } from './alert-config-owner.service';

// The REST shape the three kinds of alert configuration share (issue 18), as the check routes have
// it: POST (201, Location, ETag) / GET list (paged by id) / GET one (ETag) / PUT / PATCH (If-Match →
// 409 when stale) / DELETE (204). Viewers read; operators (and API keys with `write`) write. Bodies
// are validated once, by the owner (400 naming the field); here only ids, If-Match and the shape.

export const listQuerySchema = z.strictObject({
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  cursor: z.string().min(1).max(256).optional(),
});

/** A rule, channel or window id in a path: 400 naming `id` otherwise. */
export function configIdOf(id: string, noun: string): string {
  if (!alertRuleIdSchema.safeParse(id).success)
    throw new InvalidError(`id: not a ${noun} id: "${id.slice(0, 64)}"`, [
      { path: 'id', message: `a ${noun} id (letters, digits and . _ : -)` },
    ]);
  return id;
}

export interface ConfigRoutesSpec {
  /** The class name Nest and logs show. */
  className: string;
  /** Under /api/v1/ */
  path: string;
  noun: string;
  /** The answer's key for the entry (`rule`, `channel`, `window`). */
  key: string;
  methods: {
    create: AlertConfigRpcMethod;
    replace: AlertConfigRpcMethod;
    patch: AlertConfigRpcMethod;
    delete: AlertConfigRpcMethod;
    list: AlertConfigRpcMethod;
    get: AlertConfigRpcMethod;
  };
}

type Entry = { id: string; version: number };
type Owner = {
  call(method: AlertConfigRpcMethod, params: Record<string, unknown>, idempotencyKey?: string): Promise<unknown>;
};

/**
 * The controller of one kind: its six routes as the class's own methods (the route-access table
 * reads them off the prototype). Routes beyond these live in a controller of their own on the same path.
 */
export function configController(spec: ConfigRoutesSpec): Type<{ owner: AlertConfigOwner }> {
  const { noun, key, methods: m } = spec;
  const idParam = ApiParam({ name: 'id', description: `${noun} id` });
  const entryOf = (r: unknown) => (r as Record<string, Entry>)[key];

  @ApiTags('alerts')
  @Controller(`api/v1/${spec.path}`)
  @UseFilters(ConfigApiErrorFilter)
  class ConfigRoutes {
    constructor(@Inject(AlertConfigOwner) readonly owner: AlertConfigOwner) {}

    private get o(): Owner {
      return this.owner as unknown as Owner;
    }

    @Post()
    @RequireRole(UserRole.Operator)
    @ApiOperation({ summary: `Create a ${noun} (operator)`, description: 'A bad field is a 400 naming it.' })
    @ApiVersionedWrite({ notFound: false, idempotencyKey: true })
    async create(
      @CurrentPrincipal() principal: Principal,
      @Body() body: unknown,
      @Res({ passthrough: true }) reply: FastifyReply,
      @IdempotencyKeyHeader() key: string[] | undefined,
    ): Promise<Entry> {
      const params = { actor: actorOf(principal), body: objectBody(body) };
      const entry = entryOf(await this.o.call(m.create, params, idempotencyKeyOf(key)));
      void reply
        .status(201)
        .header('location', `/api/v1/${spec.path}/${encodeURIComponent(entry.id)}`)
        .header('etag', etagOf(entry.version));
      return entry;
    }

    @Get()
    @RequireRole(UserRole.Viewer)
    @ApiOperation({ summary: `List ${noun}s`, description: 'By id; page with `cursor` = the previous `nextCursor`.' })
    list(@Query() query: unknown): Promise<Page<Entry>> {
      return this.o.call(m.list, listQuerySchema.parse(query ?? {})) as Promise<Page<Entry>>;
    }

    @Get(':id')
    @idParam
    @RequireRole(UserRole.Viewer)
    @ApiOperation({ summary: `One ${noun}; its version is the ETag` })
    async get(@Param('id') id: string, @Res({ passthrough: true }) reply: FastifyReply): Promise<Entry> {
      const entry = entryOf(await this.o.call(m.get, { id: configIdOf(id, noun) }));
      void reply.header('etag', etagOf(entry.version));
      return entry;
    }

    @Put(':id')
    @idParam
    @RequireRole(UserRole.Operator)
    @ApiOperation({ summary: `Replace a ${noun} (operator); If-Match optional` })
    @ApiVersionedWrite({ idempotencyKey: true })
    replace(
      @CurrentPrincipal() principal: Principal,
      @Param('id') id: string,
      @Headers('if-match') ifMatch: string | undefined,
      @Body() body: unknown,
      @Res({ passthrough: true }) reply: FastifyReply,
      @IdempotencyKeyHeader() key: string[] | undefined,
    ): Promise<Entry> {
      const expectedVersion = expectedVersionOf(ifMatch);
      const params = { actor: actorOf(principal), id: configIdOf(id, noun), body: objectBody(body), expectedVersion };
      return this.write(m.replace, params, reply, idempotencyKeyOf(key));
    }

    @Patch(':id')
    @idParam
    @RequireRole(UserRole.Operator)
    @ApiOperation({ summary: `Change some fields of a ${noun} (operator); \`null\` removes one` })
    @ApiVersionedWrite({ idempotencyKey: true })
    patch(
      @CurrentPrincipal() principal: Principal,
      @Param('id') id: string,
      @Headers('if-match') ifMatch: string | undefined,
      @Body() body: unknown,
      @Res({ passthrough: true }) reply: FastifyReply,
      @IdempotencyKeyHeader() key: string[] | undefined,
    ): Promise<Entry> {
      const expectedVersion = expectedVersionOf(ifMatch);
      const params = { actor: actorOf(principal), id: configIdOf(id, noun), patch: objectBody(body), expectedVersion };
      return this.write(m.patch, params, reply, idempotencyKeyOf(key));
    }

    @Delete(':id')
    @idParam
    @HttpCode(204)
    @RequireRole(UserRole.Operator)
    @ApiOperation({ summary: `Delete a ${noun} (operator); If-Match optional` })
    @ApiVersionedWrite({ idempotencyKey: true })
    async delete(
      @CurrentPrincipal() principal: Principal,
      @Param('id') id: string,
      @Headers('if-match') ifMatch: string | undefined,
      @IdempotencyKeyHeader() key: string[] | undefined,
    ): Promise<void> {
      const expectedVersion = expectedVersionOf(ifMatch);
      const params = { actor: actorOf(principal), id: configIdOf(id, noun), expectedVersion };
      await this.o.call(m.delete, params, idempotencyKeyOf(key));
    }

    private async write(
      method: AlertConfigRpcMethod,
      params: Record<string, unknown>,
      reply: FastifyReply,
      idempotencyKey: string | undefined,
    ) {
      const entry = entryOf(await this.o.call(method, params, idempotencyKey));
      void reply.header('etag', etagOf(entry.version));
      return entry;
    }
  }
  Object.defineProperty(ConfigRoutes, 'name', { value: spec.className });
  return ConfigRoutes;
}
