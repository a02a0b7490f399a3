import { Controller, Get, Param, Query } from '@nestjs/common';
import { ApiNotFoundResponse, ApiOkResponse, ApiOperation, ApiParam, ApiTags } from '@nestjs/swagger';
import {
  hostMetricsQuerySchema,
  listHostsQuerySchema,
  UserRole,
  type HostDetailView,
  type HostListResponse,
  type HostMetricsResponse,
} from '@fleetwatch/contracts';
import { RequireRole } from '../auth/access.decorator';
import { ApiZodQuery, errorBodySchema } from '../web/openapi';
import { hostDetailSchema, hostListSchema, hostMetricsSchema } from './hosts.openapi';
import { HostsService } from './hosts.service';

const idParam = ApiParam({
  name: 'id',
  description: "The collector's host id, URL-encoded (its target id is `host:{id}`)",
});

@ApiTags('hosts')
@Controller('api/v1/hosts')
@RequireRole(UserRole.Viewer)
export class HostsController {
  constructor(private readonly hosts: HostsService) {}

  @Get()
  @ApiOperation({
    summary: 'List hosts with their live status and latest sample',
    description:
      'Every collector host (a target of kind `host`): UP while samples arrive, STALE when none came within two sampling intervals. Ordered by id; page with `cursor` = the previous `nextCursor`.',
  })
  @ApiZodQuery(listHostsQuerySchema)
  @ApiOkResponse({ schema: hostListSchema })
  list(@Query() query: unknown): Promise<HostListResponse> {
    return this.hosts.list(listHostsQuerySchema.parse(query ?? {}));
  }

  @Get(':id')
  @idParam
  @ApiOperation({ summary: "One host: its target's live status, system information and latest full sample" })
  @ApiOkResponse({ schema: hostDetailSchema })
  @ApiNotFoundResponse({ schema: errorBodySchema })
  get(@Param('id') id: string): Promise<HostDetailView> {
    return this.hosts.get(id);
  }

  @Get(':id/metrics')
  @idParam
  @ApiOperation({
    summary: "A host's series over the last `minutes`",
    description:
      'CPU, load, memory, swap, per-disk used/total and IO rates, per-interface network rates, per-GPU utilisation, memory, temperature and power. Up to 60 minutes every raw sample is a point (avg = max); beyond, 1-minute rollups merged into steps of whole minutes (at most 720 points a series): avg weighted by samples, max of maxima.',
  })
  @ApiZodQuery(hostMetricsQuerySchema)
  @ApiOkResponse({ schema: hostMetricsSchema })
  @ApiNotFoundResponse({ schema: errorBodySchema })
  metrics(@Param('id') id: string, @Query() query: unknown): Promise<HostMetricsResponse> {
    return this.hosts.metrics(id, hostMetricsQuerySchema.parse(query ?? {}));
  }
}
