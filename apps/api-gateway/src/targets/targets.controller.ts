import { Controller, Get, Param, Query } from '@nestjs/common';
import { ApiNotFoundResponse, ApiOkResponse, ApiOperation, ApiParam, ApiTags } from '@nestjs/swagger';
import {
  historyQuerySchema,
  HistoryResponse,
  listTargetsQuerySchema,
  recentTargetsQuerySchema,
  RecentTargetsResponse,
  sparklinesQuerySchema,
  sparklinesResponseSchema,
  SPARKLINE_MAX_TARGETS,
  SparklinesResponse,
  TargetListResponse,
  TargetView,
  UserRole,
} from '@fleetwatch/contracts';
import { RequireRole } from '../auth/access.decorator';
import { ApiZodQuery, errorBodySchema, responseSchemaOf } from '../web/openapi';
import {
  historyResponseSchema,
  recentTargetsSchema,
  targetListSchema,
  targetViewSchema,
} from '../web/response.schemas';
import { TargetsService } from './targets.service';

const idParam = ApiParam({
  name: 'id',
  description: 'Target id, URL-encoded (`instance:web-1`, `check:{uuid}`, `host:{name}`)',
});

@ApiTags('targets')
@Controller('api/v1/targets')
@RequireRole(UserRole.Viewer)
export class TargetsController {
  constructor(private readonly targets: TargetsService) {}

  @Get()
  @ApiOperation({
    summary: 'List targets with their live status',
    description:
      "Filters combine (AND); `kind` and `status` take comma-separated values (OR), in any case. `kind` takes a target's kind (`check`, `host`, `instance`) and a pushed instance's own (`container`, `pod`, `process`, `service`, `job`: its latest update's `kind`), mixed as one OR (`kind=pod,check`); an instance stored before Fleetwatch kept that kind matches `instance`, not `container`, until its next update. Ordered by id; page with `cursor` = the previous `nextCursor`.",
  })
  @ApiZodQuery(listTargetsQuerySchema)
  @ApiOkResponse({ schema: targetListSchema })
  list(@Query() query: unknown): Promise<TargetListResponse> {
    return this.targets.list(listTargetsQuerySchema.parse(query ?? {}));
  }

  // Declared before `:id`, as sparklines is (no target id is `recent`: ids are `kind:…`).
  @Get('recent')
  @ApiOperation({
    summary: 'The targets whose status changed last',
    description:
      "Newest status change (`since`) first, equal times in id order, `limit` of them (1–100, default 12); targets that never had a status change are not listed. Read from live state: a sorted-set read, whatever the size of the fleet (until an aggregator of this version has built live state once — a gateway upgraded first — every target's `since` is read instead).",
  })
  @ApiZodQuery(recentTargetsQuerySchema)
  @ApiOkResponse({ schema: recentTargetsSchema })
  recent(@Query() query: unknown): Promise<RecentTargetsResponse> {
    return this.targets.recent(recentTargetsQuerySchema.parse(query ?? {}));
  }

  // Declared before `:id`: a static segment wins over the parameter (no target id is `sparklines`: ids are `kind:…`).
  @Get('sparklines')
  @ApiOperation({
    summary: 'The last hour of many targets, minute by minute',
    description: `For list rows: per target (\`id\` repeated, 1–${SPARKLINE_MAX_TARGETS}) 60 one-minute values from the rollups, the current minute last — the share of good samples (0–1) and the mean latency over every location; null where a minute had no sample. Unknown ids get only nulls.`,
  })
  @ApiZodQuery(sparklinesQuerySchema)
  @ApiOkResponse({ schema: responseSchemaOf(sparklinesResponseSchema) })
  sparklines(@Query() query: unknown): Promise<SparklinesResponse> {
    return this.targets.sparklines(sparklinesQuerySchema.parse(query ?? {}).id);
  }

  @Get(':id')
  @idParam
  @ApiOperation({ summary: 'One target: live status, per-location status, consensus, last seen' })
  @ApiOkResponse({ schema: targetViewSchema })
  @ApiNotFoundResponse({ schema: errorBodySchema })
  get(@Param('id') id: string): Promise<TargetView> {
    return this.targets.get(id);
  }

  @Get(':id/history')
  @idParam
  @ApiOperation({
    summary: "A target's trend and status events",
    description:
      'Raw observations for up to 60 minutes, 1-minute rollups (count, ok, min/avg/max/p95 latency) beyond, merged into steps of whole minutes past 1440 minutes (at most 1440 points a location, `stepSeconds`); status events in the window, in order.',
  })
  @ApiZodQuery(historyQuerySchema)
  @ApiOkResponse({ schema: historyResponseSchema })
  @ApiNotFoundResponse({ schema: errorBodySchema })
  history(@Param('id') id: string, @Query() query: unknown): Promise<HistoryResponse> {
    return this.targets.historyOf(id, historyQuerySchema.parse(query ?? {}));
  }
}
