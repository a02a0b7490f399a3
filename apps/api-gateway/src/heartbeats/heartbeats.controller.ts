import { Body, Controller, Delete, Get, HttpCode, Param, Post } from '@nestjs/common';
import {
  ApiCreatedResponse,
  ApiNoContentResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiOperation,
  ApiTags,
} from '@nestjs/swagger';
import { CreateHeartbeatResponse, createHeartbeatRequestSchema, HeartbeatView, UserRole } from '@fleetwatch/contracts';
import { RequireRole } from '../auth/access.decorator';
import { ApiZodBody, errorBodySchema } from '../web/openapi';
import { createHeartbeatResponseSchema, heartbeatViewSchema } from '../web/response.schemas';
import { HeartbeatsService } from './heartbeats.service';

@ApiTags('heartbeats')
@Controller('api/v1/heartbeats')
@RequireRole(UserRole.Operator)
export class HeartbeatsController {
  constructor(private readonly heartbeats: HeartbeatsService) {}

  @Post()
  @ApiOperation({
    summary: 'Create a heartbeat monitor (operator)',
    description:
      'Answers the ping URL on status-ingest (`/ping/{token}`, `/start`, `/fail`); the token is in this answer only.',
  })
  @ApiZodBody(createHeartbeatRequestSchema)
  @ApiCreatedResponse({ schema: createHeartbeatResponseSchema })
  create(@Body() body: unknown): Promise<CreateHeartbeatResponse> {
    return this.heartbeats.create(createHeartbeatRequestSchema.parse(body));
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
  async delete(@Param('id') id: string): Promise<void> {
    await this.heartbeats.delete(id);
  }
}
