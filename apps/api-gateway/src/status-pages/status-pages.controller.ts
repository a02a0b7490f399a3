import {
  Body,
  Controller,
  Delete,
  Get,
  Headers,
  HttpCode,
  Param,
  Patch,
  Post,
  Put,
  Query,
  Res,
  UseFilters,
} from '@nestjs/common';
import { ApiOperation, ApiParam, ApiTags } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import {
  StatusPageRpcMethod as M,
  UserRole,
  UUID_PATTERN,
  type Page,
  type StatusPageDefinition,
} from '@fleetwatch/contracts';
import { InvalidError } from '@fleetwatch/domain';
import { z } from 'zod';
import { RequireRole } from '../auth/access.decorator';
import { CurrentPrincipal, type Principal } from '../auth/principal';
import { ApiVersionedWrite } from '../checks/checks.openapi';
import { ConfigApiErrorFilter, etagOf } from '../checks/owner-errors';
import { IdempotencyKeyHeader } from '../checks/idempotency-key.decorator';
import { actorOf, expectedVersionOf, idempotencyKeyOf, objectBody } from '../checks/request-envelope';
import { StatusPagesOwner } from './status-pages-owner.service';

// Status pages over REST (issue 17), the alert rules' shape: POST (201, Location, ETag) / GET list
// (paged by id) / GET one (ETag) / PUT / PATCH (If-Match → 409 when stale) / DELETE (204). Viewers
// read; operators (and admins, and API keys with `write`) write. Bodies are validated once, by the
// owner (400 naming the field). What the public sees is public-status.controller.ts.

const listQuerySchema = z.strictObject({
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  cursor: z.string().min(1).max(256).optional(),
});

function pageIdOf(id: string): string {
  if (!UUID_PATTERN.test(id))
    throw new InvalidError(`id: not a status page id (UUID): "${id.slice(0, 64)}"`, [
      { path: 'id', message: 'a status page id (UUID)' },
    ]);
  return id;
}

const idParam = ApiParam({ name: 'id', description: 'status page id (UUID)' });

@ApiTags('status pages')
@Controller('api/v1/status-pages')
@UseFilters(ConfigApiErrorFilter)
export class StatusPagesController {
  constructor(private readonly owner: StatusPagesOwner) {}

  @Post()
  @RequireRole(UserRole.Operator)
  @ApiOperation({ summary: 'Create a status page (operator)', description: 'A bad field is a 400 naming it.' })
  @ApiVersionedWrite({ notFound: false, idempotencyKey: true })
  async create(
    @CurrentPrincipal() principal: Principal,
    @Body() body: unknown,
    @Res({ passthrough: true }) reply: FastifyReply,
    @IdempotencyKeyHeader() key: string[] | undefined,
  ): Promise<StatusPageDefinition> {
    const params = { actor: actorOf(principal), body: objectBody(body) };
    const { page } = await this.owner.call(M.Create, params, idempotencyKeyOf(key));
    void reply.status(201).header('location', `/api/v1/status-pages/${page.id}`).header('etag', etagOf(page.version));
    return page;
  }

  @Get()
  @RequireRole(UserRole.Viewer)
  @ApiOperation({ summary: 'List status pages', description: 'By id; page with `cursor` = the previous `nextCursor`.' })
  list(@Query() query: unknown): Promise<Page<StatusPageDefinition>> {
    return this.owner.call(M.List, listQuerySchema.parse(query ?? {}));
  }

  @Get(':id')
  @idParam
  @RequireRole(UserRole.Viewer)
  @ApiOperation({ summary: 'One status page; its version is the ETag' })
  async get(@Param('id') id: string, @Res({ passthrough: true }) reply: FastifyReply): Promise<StatusPageDefinition> {
    const { page } = await this.owner.call(M.Get, { id: pageIdOf(id) });
    void reply.header('etag', etagOf(page.version));
    return page;
  }

  @Put(':id')
  @idParam
  @RequireRole(UserRole.Operator)
  @ApiOperation({ summary: 'Replace a status page (operator); If-Match optional' })
  @ApiVersionedWrite({ idempotencyKey: true })
  async replace(
    @CurrentPrincipal() principal: Principal,
    @Param('id') id: string,
    @Headers('if-match') ifMatch: string | undefined,
    @Body() body: unknown,
    @Res({ passthrough: true }) reply: FastifyReply,
    @IdempotencyKeyHeader() key: string[] | undefined,
  ): Promise<StatusPageDefinition> {
    const expectedVersion = expectedVersionOf(ifMatch);
    const idempotencyKey = idempotencyKeyOf(key);
    const { page } = await this.owner.call(
      M.Replace,
      {
        actor: actorOf(principal),
        id: pageIdOf(id),
        body: objectBody(body),
        expectedVersion,
      },
      idempotencyKey,
    );
    void reply.header('etag', etagOf(page.version));
    return page;
  }

  @Patch(':id')
  @idParam
  @RequireRole(UserRole.Operator)
  @ApiOperation({ summary: 'Change some fields of a status page (operator); `null` removes one' })
  @ApiVersionedWrite({ idempotencyKey: true })
  async patch(
    @CurrentPrincipal() principal: Principal,
    @Param('id') id: string,
    @Headers('if-match') ifMatch: string | undefined,
    @Body() body: unknown,
    @Res({ passthrough: true }) reply: FastifyReply,
    @IdempotencyKeyHeader() key: string[] | undefined,
  ): Promise<StatusPageDefinition> {
    const expectedVersion = expectedVersionOf(ifMatch);
    const idempotencyKey = idempotencyKeyOf(key);
    const { page } = await this.owner.call(
      M.Patch,
      {
        actor: actorOf(principal),
        id: pageIdOf(id),
        patch: objectBody(body),
        expectedVersion,
      },
      idempotencyKey,
    );
    void reply.header('etag', etagOf(page.version));
    return page;
  }

  @Delete(':id')
  @idParam
  @HttpCode(204)
  @RequireRole(UserRole.Operator)
  @ApiOperation({ summary: 'Delete a status page (operator); If-Match optional' })
  @ApiVersionedWrite({ idempotencyKey: true })
  async delete(
    @CurrentPrincipal() principal: Principal,
    @Param('id') id: string,
    @Headers('if-match') ifMatch: string | undefined,
    @IdempotencyKeyHeader() key: string[] | undefined,
  ): Promise<void> {
    const expectedVersion = expectedVersionOf(ifMatch);
    const params = { actor: actorOf(principal), id: pageIdOf(id), expectedVersion };
    await this.owner.call(M.Delete, params, idempotencyKeyOf(key));
  }
}
