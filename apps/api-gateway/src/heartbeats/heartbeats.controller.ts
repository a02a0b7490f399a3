import { Body, Controller, Delete, Get, HttpCode, Param, Post, UseFilters } from '@nestjs/common';
import {
  ApiConflictResponse,
  ApiCreatedResponse,
  ApiHeader,
  ApiNoContentResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiOperation,
  ApiTags,
} from '@nestjs/swagger';
import { CreateHeartbeatResponse, createHeartbeatRequestSchema, HeartbeatView, UserRole } from '@fleetwatch/contracts';
import { RequireRole } from '../auth/access.decorator';
import { CurrentPrincipal, type Principal } from '../auth/principal';
import { ApiOwnerUnavailable, IDEMPOTENCY_KEY_DESCRIPTION } from '../checks/checks.openapi';
import { ConfigApiErrorFilter } from '../checks/owner-errors';
import { idempotencyKeyOf } from '../checks/request-envelope';
import { ApiZodBody, errorBodySchema } from '../web/openapi';
import { createHeartbeatResponseSchema, heartbeatViewSchema } from '../web/response.schemas';
import { HeartbeatsService } from './heartbeats.service';
import { IdempotencyKeyHeader } from '../checks/idempotency-key.decorator';

/** Heartbeat monitors are `push` checks: create and delete go to their owner, sync-orchestrator (503 when it does not answer). */
@ApiTags('heartbeats')
@Controller('api/v1/heartbeats')
@RequireRole(UserRole.Operator)
@UseFilters(ConfigApiErrorFilter)
export class HeartbeatsController {
  constructor(private readonly heartbeats: HeartbeatsService) {}

  @Post()
  @ApiOperation({
    summary: 'Create a heartbeat monitor (operator)',
    description:
      'A check of type `push` (versioned and audited like any check). Answers the ping URL on status-ingest ' +
      '(`/ping/{token}`, `/start`, `/fail`); the token is in this answer only.',
  })
  @ApiZodBody(createHeartbeatRequestSchema)
  @ApiCreatedResponse({ schema: createHeartbeatResponseSchema })
  @ApiHeader({
    name: 'Idempotency-Key',
    required: false,
    description: `${IDEMPOTENCY_KEY_DESCRIPTION} (its token too, for 5 minutes)`,
  })
  @ApiConflictResponse({ description: 'A check (of any type) already has this name', schema: errorBodySchema })
  @ApiOwnerUnavailable()
  create(
    @CurrentPrincipal() principal: Principal,
    @Body() body: unknown,
    @IdempotencyKeyHeader() key: string[] | undefined,
  ): Promise<CreateHeartbeatResponse> {
    const idempotencyKey = idempotencyKeyOf(key);
    return this.heartbeats.create(principal, createHeartbeatRequestSchema.parse(body), idempotencyKey);
  }

  @Get()
  @ApiOperation({ summary: 'List heartbeat monitors (operator; never the token)' })
  @ApiOkResponse({ schema: { type: 'array', items: heartbeatViewSchema } })
  list(): Promise<HeartbeatView[]> {
    return this.heartbeats.list();
  }

  @Delete(':id')
  @HttpCode(204)
  @ApiOperation({ summary: 'Delete a heartbeat monitor (operator): its ping URL stops working' })
  @ApiNoContentResponse()
  @ApiNotFoundResponse({ schema: errorBodySchema })
  @ApiOwnerUnavailable()
  async delete(@CurrentPrincipal() principal: Principal, @Param('id') id: string): Promise<void> {
    await this.heartbeats.delete(principal, id);
  }
}
