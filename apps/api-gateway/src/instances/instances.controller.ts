import { Controller, Delete, HttpCode, Param } from '@nestjs/common';
import {
  ApiAcceptedResponse,
  ApiBadRequestResponse,
  ApiNotFoundResponse,
  ApiOperation,
  ApiParam,
  ApiServiceUnavailableResponse,
  ApiTags,
} from '@nestjs/swagger';
import { instanceRemovalAcceptedSchema, UserRole, type InstanceRemovalAccepted } from '@fleetwatch/contracts';
import { RequireRole } from '../auth/access.decorator';
import { CurrentPrincipal, type Principal } from '../auth/principal';
import { errorBodySchema, responseSchemaOf } from '../web/openapi';
import { InstanceRemovalService } from './instance-removal.service';

@ApiTags('status')
@Controller('api/v1/instances')
export class InstancesController {
  constructor(private readonly removal: InstanceRemovalService) {}

  @Delete(':instanceId')
  @ApiParam({
    name: 'instanceId',
    description: 'The pushed instance id, URL-encoded (its target id is `instance:{id}`)',
  })
  @HttpCode(202)
  @RequireRole(UserRole.Operator)
  @ApiOperation({
    summary: 'Remove a pushed instance (operator): one whose pusher is gone and will not report its removal',
    description:
      "What a pusher's `removed` update does, for every location the instance has: sent to the aggregator over the bus, answered once the broker confirmed it. The instance leaves live state, the lists and /metrics (no STALE any more), its status events go to UNKNOWN (its alerts resolve), its history stays readable, and an update newer than `removedAt` brings it back. 404 for an instance not in live state (never pushed, or removed already).",
  })
  @ApiAcceptedResponse({ schema: responseSchemaOf(instanceRemovalAcceptedSchema) })
  @ApiBadRequestResponse({ schema: errorBodySchema })
  @ApiNotFoundResponse({ schema: errorBodySchema })
  @ApiServiceUnavailableResponse({
    description: 'The message broker is away or blocks publishing; Retry-After says when to retry',
    schema: errorBodySchema,
  })
  remove(
    @CurrentPrincipal() principal: Principal,
    @Param('instanceId') instanceId: string,
  ): Promise<InstanceRemovalAccepted> {
    return this.removal.remove(principal, instanceId);
  }
}
