import { Controller, Get, Param, Query } from '@nestjs/common';
import { ApiNotFoundResponse, ApiOkResponse, ApiOperation, ApiParam, ApiTags } from '@nestjs/swagger';
import {
  pingsResponseSchema,
  pushedUpdatesResponseSchema,
  receivedQuerySchema,
  UserRole,
  type PingsResponse,
  type PushedUpdatesResponse,
} from '@fleetwatch/contracts';
import { RequireRole } from '../auth/access.decorator';
import { ApiZodQuery, errorBodySchema, responseSchemaOf } from '../web/openapi';
import { ReceivedService } from './received.service';

const idParam = ApiParam({ name: 'id', description: 'Target id, URL-encoded (`instance:web-1`, `check:{uuid}`)' });

/** What a target received, as stored: pushed status updates, heartbeat pings. Viewers read. */
@ApiTags('targets')
@Controller('api/v1/targets')
@RequireRole(UserRole.Viewer)
export class ReceivedController {
  constructor(private readonly received: ReceivedService) {}

  @Get(':id/updates')
  @idParam
  @ApiOperation({
    summary: "An instance's pushed status updates as stored, newest first (paged with `cursor`)",
    description:
      'Every field of every update answered 202, as accepted: the status as sent (`lifecycle`, lower-cased) and what ' +
      'it maps to, source, location, occurredAt and when it was received, labels, message, metadata. Kept for the ' +
      'raw retention window (`HISTORY_RAW_RETENTION_DAYS`).',
  })
  @ApiZodQuery(receivedQuerySchema)
  @ApiOkResponse({ schema: responseSchemaOf(pushedUpdatesResponseSchema) })
  @ApiNotFoundResponse({ schema: errorBodySchema })
  updates(@Param('id') id: string, @Query() query: unknown): Promise<PushedUpdatesResponse> {
    return this.received.updates(id, receivedQuerySchema.parse(query ?? {}));
  }

  @Get(':id/pings')
  @idParam
  @ApiOperation({
    summary: "A heartbeat monitor's pings as stored, newest first (paged with `cursor`)",
    description:
      'Each ping: signal (success, start, fail), run id, when it was received, and the body the job sent with it ' +
      '(its first 10,000 characters). Kept for the raw retention window.',
  })
  @ApiZodQuery(receivedQuerySchema)
  @ApiOkResponse({ schema: responseSchemaOf(pingsResponseSchema) })
  @ApiNotFoundResponse({ schema: errorBodySchema })
  pings(@Param('id') id: string, @Query() query: unknown): Promise<PingsResponse> {
    return this.received.pings(id, receivedQuerySchema.parse(query ?? {}));
  }
}
