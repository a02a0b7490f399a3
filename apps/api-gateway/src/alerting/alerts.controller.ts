import { Controller, Get, Query } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import {
  alertHistoryQuerySchema,
  alertHistoryResponseSchema,
  alertListResponseSchema,
  deliveryLogResponseSchema,
  listAlertsQuerySchema,
  listDeliveriesQuerySchema,
  UserRole,
  type AlertHistoryResponse,
  type AlertListResponse,
  type DeliveryLogResponse,
} from '@fleetwatch/contracts';
import { RequireRole } from '../auth/access.decorator';
import { ApiZodQuery, responseSchemaOf } from '../web/openapi';
import { AlertsReadService } from './alerts-read.service';

/** The alert pages' reads (issue 18): alerts pending and firing now, and the delivery log. Viewers read. */
@ApiTags('alerts')
@Controller('api/v1/alerts')
@RequireRole(UserRole.Viewer)
export class AlertsController {
  constructor(private readonly alerts: AlertsReadService) {}

  @Get()
  @ApiOperation({
    summary: 'Alerts pending and firing now, newest first (paged with `cursor`)',
    description:
      '`state` takes comma-separated values (pending, firing). Each alert says since when it is in its state, ' +
      'and whether a silence or a maintenance window mutes its notifications now (`muted`, `silenced`). ' +
      '`counts` covers every alert, whatever the filters.',
  })
  @ApiZodQuery(listAlertsQuerySchema)
  @ApiOkResponse({ schema: responseSchemaOf(alertListResponseSchema) })
  list(@Query() query: Record<string, string>): Promise<AlertListResponse> {
    return this.alerts.list(listAlertsQuerySchema.parse(query ?? {}));
  }

  @Get('history')
  @ApiOperation({
    summary: 'Alert history: every state change of every alert, newest first (paged with `cursor`)',
    description:
      'Each change the evaluator committed (inactive → pending → firing → resolved; pending → inactive when the ' +
      'condition cleared before `for`; firing → resolved when its rule was deleted), kept for the rollup window. ' +
      'Filters: `ruleId`, `targetId`, `since` (ISO time). Each change was also published as `alert.state-changed`.',
  })
  @ApiZodQuery(alertHistoryQuerySchema)
  @ApiOkResponse({ schema: responseSchemaOf(alertHistoryResponseSchema) })
  history(@Query() query: Record<string, string>): Promise<AlertHistoryResponse> {
    return this.alerts.history(alertHistoryQuerySchema.parse(query ?? {}));
  }

  @Get('deliveries')
  @ApiOperation({
    summary: 'The delivery log: every attempt to send a notification, and test-sends; newest first (paged)',
    description:
      'Filters: `channelId`, `outcome` (comma-separated: delivered, retrying, failed, skipped), `test` (true/false). ' +
      'Error texts never hold a channel secret.',
  })
  @ApiZodQuery(listDeliveriesQuerySchema)
  @ApiOkResponse({ schema: responseSchemaOf(deliveryLogResponseSchema) })
  deliveries(@Query() query: Record<string, string>): Promise<DeliveryLogResponse> {
    return this.alerts.deliveryLog(listDeliveriesQuerySchema.parse(query ?? {}));
  }
}
