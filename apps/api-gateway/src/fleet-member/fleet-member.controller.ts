import { Controller, Get, Headers, Query, Res } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import {
  flowQuerySchema,
  UserRole,
  type FlowMetrics,
  type MemberReport,
  type MemberSnapshotView,
} from '@fleetwatch/contracts';
import type { FastifyReply } from 'fastify';
import { RequireRole } from '../auth/access.decorator';
import { ApiZodQuery } from '../web/openapi';
import { MemberReportService } from './member-report.service';
import { etagMatches, snapshotEtag, SnapshotService } from './snapshot.service';

/** What every site answers its leader (SPEC §8 member endpoints); readable like the other read routes. */
@ApiTags('fleet member')
@Controller('api/v1')
@RequireRole(UserRole.Viewer)
export class FleetMemberController {
  constructor(
    private readonly reports: MemberReportService,
    private readonly snapshots: SnapshotService,
  ) {}

  @Get('status/report')
  @ApiOperation({
    summary: "This site's member report",
    description:
      'Targets by status, error counts, queued / in-flight / dead-lettered messages read from RabbitMQ itself (management API, else passive declares: in-flight null), hosts summary, flow over the last 5 minutes, component versions. Figures the site cannot know are null.',
  })
  report(): Promise<MemberReport> {
    return this.reports.report();
  }

  @Get('metrics/flow')
  @ApiOperation({
    summary: 'Ingress, egress, stored and deleted counts and bytes per minute',
    description:
      'One point a minute over the last `minutes`, oldest first; `sources` says what each figure is measured from.',
  })
  @ApiZodQuery(flowQuerySchema)
  flow(@Query() query: unknown): Promise<FlowMetrics> {
    return this.reports.flow(flowQuerySchema.parse(query ?? {}).minutes);
  }

  @Get('system/snapshot/current')
  @ApiOperation({
    summary: "This site's config snapshot: canonical JSON and content hash (cached 5 s)",
    description:
      'Areas checks, alertRules, channels (secrets redacted), properties, statusPages, usersAndRoles (never password hashes), componentVersions; each an array sorted by `key`. `hash` is sha256 of the canonical JSON of `areas`. ' +
      'The ETag is the quoted hash: with `If-None-Match` naming it the answer is 304 without a body (a leader polling an unchanged snapshot).',
  })
  async snapshot(
    @Headers('if-none-match') ifNoneMatch: string | undefined,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<MemberSnapshotView | undefined> {
    const snapshot = await this.snapshots.current();
    const etag = snapshotEtag(snapshot.hash);
    void reply.header('etag', etag);
    if (etagMatches(ifNoneMatch, etag)) {
      void reply.status(304);
      return undefined;
    }
    return snapshot;
  }
}
