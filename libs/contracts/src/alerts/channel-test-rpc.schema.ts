import { z } from 'zod';
import { actorSchema } from '../checks/config-rpc.schema';
import { alertRuleIdSchema } from './rule.schema';
import { channelTestResultSchema, type ChannelTestResult } from './alerts-read.schema';

// Request/response over the bus to the aggregator (issue 18): it alone sends notifications and writes the
// delivery log, and it holds FLEETWATCH_ENCRYPTION_KEY to open the channels' sealed secrets. Requests go
// with the routing key RoutingKey.AggregatorRpcRequest to QueueName.AggregatorCommands (libs/contracts bus).

export enum AggregatorRpcMethod {
  /** Sends one test notification through a channel now (never retried) and answers how it went. */
  ChannelsTest = 'alerts.channels.test',
}

export const aggregatorRpcParams = {
  [AggregatorRpcMethod.ChannelsTest]: z.strictObject({ actor: actorSchema, channelId: alertRuleIdSchema }),
} as const;

export const aggregatorRpcResultSchemas = {
  [AggregatorRpcMethod.ChannelsTest]: channelTestResultSchema,
} as const;

export interface AggregatorRpcResults {
  [AggregatorRpcMethod.ChannelsTest]: ChannelTestResult;
}
