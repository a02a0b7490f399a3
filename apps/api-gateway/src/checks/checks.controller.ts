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
import {
  ApiBody,
  ApiCreatedResponse,
  ApiNoContentResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiOperation,
  ApiParam,
  ApiTags,
} from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import {
  UserRole,
  type CheckView,
  type ConfigRpcMethod,
  type ConfigRpcResults,
  type Page,
} from '@fleetwatch/contracts';
import { RequireRole } from '../auth/access.decorator';
import { CurrentPrincipal, type Principal } from '../auth/principal';
import { ApiZodBody, ApiZodQuery, errorBodySchema } from '../web/openapi';
import {
  ApiOwnerUnavailable,
  ApiVersionedWrite,
  bulkCreatedSchema,
  checkInputJsonSchema,
  checkPageSchema,
  checkSchema,
  createdCheckSchema,
} from './checks.openapi';
import { ChecksService, type CreatedCheck, type PingUrls } from './checks.service';
import { ConfigApiErrorFilter, etagOf } from './owner-errors';
import {
  bulkCreateBodySchema,
  checkIdOf,
  expectedVersionOf,
  idempotencyKeyOf,
  listChecksQuerySchema,
  objectBody,
} from './request-envelope';
import { IdempotencyKeyHeader } from './idempotency-key.decorator';

const idParam = ApiParam({ name: 'id', description: 'Check id (UUID); its target id is `check:{id}`' });

/** Answers with the check and its version as the ETag (the If-Match of the next write). */
function withEtag(reply: FastifyReply, check: CheckView): CheckView {
  void reply.header('etag', etagOf(check.version));
  return check;
}

/**
 * Checks (SPEC §5, §11). The owner is sync-orchestrator: each route is one request over
 * the bus, validated there (`checkInputSchema`, once); here only ids, query parameters,
 * If-Match and the body's shape. Viewers read; operators (API keys with `write`) write.
 */
@ApiTags('checks')
@Controller('api/v1/checks')
@UseFilters(ConfigApiErrorFilter)
export class ChecksController {
  constructor(private readonly checks: ChecksService) {}

  @Post()
  @RequireRole(UserRole.Operator)
  @ApiOperation({
    summary: 'Create a check (operator)',
    description:
      'At least `{name, type, intervalSeconds}` and the type’s own fields (`url` for http, `host` and `port` for tcp). ' +
      'A bad field or condition is a 400 naming it (`conditions.1: line 1, column 10: …`); a target the deny list forbids a 422.',
  })
  @ApiBody({ schema: checkInputJsonSchema })
  @ApiCreatedResponse({
    schema: createdCheckSchema,
    description:
      'The stored check: `id`, `targetId`, `version` (also the ETag); a `push` check with its ping token and URL (shown once)',
  })
  @ApiVersionedWrite({ denied: true, notFound: false, idempotencyKey: true })
  async create(
    @CurrentPrincipal() principal: Principal,
    @Body() body: unknown,
    @Res({ passthrough: true }) reply: FastifyReply,
    @IdempotencyKeyHeader() key: string[] | undefined,
  ): Promise<CreatedCheck> {
    const check = await this.checks.create(principal, objectBody(body), idempotencyKeyOf(key));
    void reply.header('location', `/api/v1/checks/${check.id}`).header('etag', etagOf(check.version));
    return check;
  }

  @Post('bulk')
  @RequireRole(UserRole.Operator)
  @ApiOperation({
    summary: 'Create up to 1000 checks in one config version (operator)',
    description: 'All or nothing: one bad check refuses the lot, its issues named `checks.{index}.{field}`.',
  })
  @ApiZodBody(bulkCreateBodySchema)
  @ApiCreatedResponse({ schema: bulkCreatedSchema })
  @ApiVersionedWrite({ denied: true, notFound: false, idempotencyKey: true })
  bulkCreate(
    @CurrentPrincipal() principal: Principal,
    @Body() body: unknown,
    @IdempotencyKeyHeader() key: string[] | undefined,
  ): Promise<ConfigRpcResults[ConfigRpcMethod.ChecksBulkCreate] & PingUrls> {
    const idempotencyKey = idempotencyKeyOf(key);
    return this.checks.bulkCreate(principal, bulkCreateBodySchema.parse(body ?? {}).checks, idempotencyKey);
  }

  @Get()
  @RequireRole(UserRole.Viewer)
  @ApiOperation({
    summary: 'List checks',
    description: 'Filters combine (AND). Ordered by name; page with `cursor` = the previous `nextCursor`.',
  })
  @ApiZodQuery(listChecksQuerySchema)
  @ApiOkResponse({ schema: checkPageSchema })
  @ApiOwnerUnavailable()
  list(@Query() query: unknown): Promise<Page<CheckView>> {
    return this.checks.list(listChecksQuerySchema.parse(query ?? {}));
  }

  @Get(':id')
  @idParam
  @RequireRole(UserRole.Viewer)
  @ApiOperation({ summary: 'One check; its version is the ETag' })
  @ApiOkResponse({ schema: checkSchema })
  @ApiNotFoundResponse({ schema: errorBodySchema })
  @ApiOwnerUnavailable()
  async get(@Param('id') id: string, @Res({ passthrough: true }) reply: FastifyReply): Promise<CheckView> {
    return withEtag(reply, await this.checks.get(checkIdOf(id)));
  }

  @Put(':id')
  @idParam
  @RequireRole(UserRole.Operator)
  @ApiOperation({ summary: 'Replace a check (operator); its type stays' })
  @ApiBody({ schema: checkInputJsonSchema })
  @ApiOkResponse({ schema: checkSchema })
  @ApiVersionedWrite({ denied: true, idempotencyKey: true })
  async replace(
    @CurrentPrincipal() principal: Principal,
    @Param('id') id: string,
    @Headers('if-match') ifMatch: string | undefined,
    @Body() body: unknown,
    @Res({ passthrough: true }) reply: FastifyReply,
    @IdempotencyKeyHeader() key: string[] | undefined,
  ): Promise<CheckView> {
    const expected = expectedVersionOf(ifMatch);
    const idempotencyKey = idempotencyKeyOf(key);
    return withEtag(
      reply,
      await this.checks.replace(principal, checkIdOf(id), objectBody(body), expected, idempotencyKey),
    );
  }

  @Patch(':id')
  @idParam
  @RequireRole(UserRole.Operator)
  @ApiOperation({ summary: 'Change some fields of a check (operator); never its type' })
  @ApiBody({
    schema: { type: 'object', additionalProperties: true, description: 'Any fields of the check but `type`' },
  })
  @ApiOkResponse({ schema: checkSchema })
  @ApiVersionedWrite({ denied: true, idempotencyKey: true })
  async patch(
    @CurrentPrincipal() principal: Principal,
    @Param('id') id: string,
    @Headers('if-match') ifMatch: string | undefined,
    @Body() body: unknown,
    @Res({ passthrough: true }) reply: FastifyReply,
    @IdempotencyKeyHeader() key: string[] | undefined,
  ): Promise<CheckView> {
    const expected = expectedVersionOf(ifMatch);
    const idempotencyKey = idempotencyKeyOf(key);
    return withEtag(
      reply,
      await this.checks.patch(principal, checkIdOf(id), objectBody(body), expected, idempotencyKey),
    );
  }

  @Delete(':id')
  @idParam
  @HttpCode(204)
  @RequireRole(UserRole.Operator)
  @ApiOperation({ summary: 'Delete a check (operator); If-Match optional' })
  @ApiNoContentResponse()
  @ApiVersionedWrite({ idempotencyKey: true })
  async delete(
    @CurrentPrincipal() principal: Principal,
    @Param('id') id: string,
    @Headers('if-match') ifMatch: string | undefined,
    @IdempotencyKeyHeader() key: string[] | undefined,
  ): Promise<void> {
    const expected = expectedVersionOf(ifMatch);
    await this.checks.delete(principal, checkIdOf(id), expected, idempotencyKeyOf(key));
  }

  @Post(':id/pause')
  @idParam
  @HttpCode(200)
  @RequireRole(UserRole.Operator)
  @ApiOperation({ summary: 'Pause a check (operator): collectors stop running it, its status is PAUSED' })
  @ApiOkResponse({ schema: checkSchema })
  @ApiVersionedWrite({ idempotencyKey: true })
  pause(
    @CurrentPrincipal() principal: Principal,
    @Param('id') id: string,
    @Headers('if-match') ifMatch: string | undefined,
    @Res({ passthrough: true }) reply: FastifyReply,
    @IdempotencyKeyHeader() key: string[] | undefined,
  ): Promise<CheckView> {
    return this.setPaused(principal, id, true, ifMatch, reply, key);
  }

  @Post(':id/resume')
  @idParam
  @HttpCode(200)
  @RequireRole(UserRole.Operator)
  @ApiOperation({ summary: 'Resume a paused check (operator)' })
  @ApiOkResponse({ schema: checkSchema })
  @ApiVersionedWrite({ idempotencyKey: true })
  resume(
    @CurrentPrincipal() principal: Principal,
    @Param('id') id: string,
    @Headers('if-match') ifMatch: string | undefined,
    @Res({ passthrough: true }) reply: FastifyReply,
    @IdempotencyKeyHeader() key: string[] | undefined,
  ): Promise<CheckView> {
    return this.setPaused(principal, id, false, ifMatch, reply, key);
  }

  private async setPaused(
    principal: Principal,
    id: string,
    paused: boolean,
    ifMatch: string | undefined,
    reply: FastifyReply,
    key: string[] | undefined,
  ): Promise<CheckView> {
    const expected = expectedVersionOf(ifMatch);
    const idempotencyKey = idempotencyKeyOf(key);
    return withEtag(reply, await this.checks.setPaused(principal, checkIdOf(id), paused, expected, idempotencyKey));
  }
}
