import { Controller, Delete, Get, HttpCode, Param, Query } from '@nestjs/common';
import {
  ApiAcceptedResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiOperation,
  ApiParam,
  ApiServiceUnavailableResponse,
  ApiTags,
} from '@nestjs/swagger';
import {
  hostMetricsQuerySchema,
  listHostsQuerySchema,
  UserRole,
  type HostDetailView,
  type HostListResponse,
  type HostMetricsResponse,
  type HostRetirementAccepted,
} from '@fleetwatch/contracts';
import { RequireRole } from '../auth/access.decorator';
import { CurrentPrincipal, type Principal } from '../auth/principal';
import { ApiZodQuery, errorBodySchema } from '../web/openapi';
import { hostDetailSchema, hostListSchema, hostMetricsSchema, hostRetirementSchema } from './hosts.openapi';
import { HostsService } from './hosts.service';

const idParam = ApiParam({
  name: 'id',
  description: "The collector's host id, URL-encoded (its target id is `host:{id}`)",
});

@ApiTags('hosts')
@Controller('api/v1/hosts')
export class HostsController {
  constructor(private readonly hosts: HostsService) {}

  @Get()
  @RequireRole(UserRole.Viewer)
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
  @RequireRole(UserRole.Viewer)
  @ApiOperation({ summary: "One host: its target's live status, system information and latest full sample" })
  @ApiOkResponse({ schema: hostDetailSchema })
  @ApiNotFoundResponse({ schema: errorBodySchema })
  get(@Param('id') id: string): Promise<HostDetailView> {
    return this.hosts.get(id);
  }

  @Delete(':id')
  @idParam
  @HttpCode(202)
  @RequireRole(UserRole.Operator)
  @ApiOperation({
    summary: 'Retire a host (operator): decommissioned or renamed, it leaves the list, live state and /metrics',
    description:
      "Sends the retirement to the aggregator over the bus and answers once the broker confirmed it; the aggregator folds it in order with the host's samples. The host's alerts resolve (its status events go to UNKNOWN); its history (samples, rollups, events) stays readable. A sample stamped after `retiredAt` brings it back. 404 for a host not known or already retired.",
  })
  @ApiAcceptedResponse({ schema: hostRetirementSchema })
  @ApiNotFoundResponse({ schema: errorBodySchema })
  @ApiServiceUnavailableResponse({
    description: 'The message broker is away or blocks publishing; Retry-After says when to retry',
    schema: errorBodySchema,
  })
  retire(@CurrentPrincipal() principal: Principal, @Param('id') id: string): Promise<HostRetirementAccepted> {
    return this.hosts.retire(principal, id);
  }

  @Get(':id/metrics')
  @idParam
  @RequireRole(UserRole.Viewer)
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
