import { Controller, Get, Param, Query } from '@nestjs/common';
import { ApiNotFoundResponse, ApiOperation, ApiParam, ApiTags } from '@nestjs/swagger';
import { leaderFlowQuerySchema, UserRole } from '@fleetwatch/contracts';
import { z } from 'zod';
import { RequireRole } from '../auth/access.decorator';
import { ApiZodQuery, errorBodySchema } from '../web/openapi';
import { FleetLeaderService } from './fleet-leader.service';

const membersQuerySchema = z.strictObject({ tag: z.string().min(1).max(64).optional() });
const memberParam = ApiParam({ name: 'member', description: "The member's name (FLEETWATCH_LEADER_CONFIG)" });

/** What a leader shows of its members (SPEC §8 leader endpoints); read from the poller's tables and cache. */
@ApiTags('fleet leader')
@Controller('api/v1/leader')
@RequireRole(UserRole.Viewer)
export class FleetLeaderController {
  constructor(private readonly fleet: FleetLeaderService) {}

  @Get('members')
  @ApiOperation({
    summary: 'Members with their last good report',
    description:
      'state OK (last poll succeeded), STALE (it failed: the data is the last good one, with `ageSeconds` and `error`) or NEVER. Filter by `tag`.',
  })
  @ApiZodQuery(membersQuerySchema)
  members(@Query() query: unknown) {
    return this.fleet.members(membersQuerySchema.parse(query ?? {}).tag);
  }

  @Get('stats')
  @ApiOperation({ summary: 'Aggregated over members: states, targets by status, errors, in-flight, queued, hosts' })
  stats() {
    return this.fleet.stats();
  }

  @Get('flow-metrics')
  @ApiOperation({ summary: 'Flow per member and summed per minute over the last `minutes` (≤ 60, as polled)' })
  @ApiZodQuery(leaderFlowQuerySchema)
  flow(@Query() query: unknown) {
    return this.fleet.flow(leaderFlowQuerySchema.parse(query ?? {}).minutes);
  }

  @Get('config/components')
  @ApiOperation({ summary: 'Component versions matrix; `differing` lists components whose versions differ' })
  components() {
    return this.fleet.components();
  }

  @Get('config/snapshot/:member')
  @memberParam
  @ApiOperation({ summary: "A member's last good config snapshot" })
  @ApiNotFoundResponse({ schema: errorBodySchema })
  snapshot(@Param('member') member: string) {
    return this.fleet.snapshot(member);
  }

  @Get('config/drift')
  @ApiOperation({
    summary: "Drift counts per member and area against this site's snapshot (overridden properties excluded)",
  })
  drift() {
    return this.fleet.drift();
  }

  @Get('config/drift/:member')
  @memberParam
  @ApiOperation({
    summary: "A member's drift, side by side: per area, each differing item with its changed values only",
  })
  @ApiNotFoundResponse({ schema: errorBodySchema })
  driftOf(@Param('member') member: string) {
    return this.fleet.driftOf(member);
  }
}
