import { Controller, Get, Query } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import {
  instanceListResponseSchema,
  listInstancesQuerySchema,
  statusEventsQuerySchema,
  statusEventsResponseSchema,
  statusSummaryResponseSchema,
  UserRole,
  type InstanceListResponse,
  type StatusEventsResponse,
  type StatusSummaryResponse,
} from '@fleetwatch/contracts';
import { RequireRole } from '../auth/access.decorator';
import { ApiZodQuery, responseSchemaOf } from '../web/openapi';
import { StatusService } from './status.service';

@ApiTags('status')
@Controller('api/v1')
@RequireRole(UserRole.Viewer)
export class StatusController {
  constructor(private readonly status: StatusService) {}

  @Get('status/summary')
  @ApiOperation({
    summary: 'Counts of targets by status and by kind, over every target',
    description:
      'Independent of any list filter. `alerts.firing`: alerts firing now (null while Postgres does not answer).',
  })
  @ApiOkResponse({ schema: responseSchemaOf(statusSummaryResponseSchema) })
  summary(): Promise<StatusSummaryResponse> {
    return this.status.summary();
  }

  @Get('status/events')
  @ApiOperation({ summary: 'Recent status changes, newest first (paged with `cursor`)' })
  @ApiZodQuery(statusEventsQuerySchema)
  @ApiOkResponse({ schema: responseSchemaOf(statusEventsResponseSchema) })
  events(@Query() query: Record<string, string>): Promise<StatusEventsResponse> {
    return this.status.recentEvents(statusEventsQuerySchema.parse(query));
  }

  @Get('instances')
  @ApiOperation({
    summary: 'Pushed instances (targets `instance:{instanceId}`), paged',
    description: '`status` takes comma-separated values.',
  })
  @ApiZodQuery(listInstancesQuerySchema)
  @ApiOkResponse({ schema: responseSchemaOf(instanceListResponseSchema) })
  instances(@Query() query: Record<string, string>): Promise<InstanceListResponse> {
    return this.status.instances(listInstancesQuerySchema.parse(query));
  }
}
