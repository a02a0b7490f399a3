import { Inject, Injectable, type OnModuleInit } from '@nestjs/common';
import { AggregatorRpcMethod as M, aggregatorRpcParams, type AggregatorRpcResults } from '@fleetwatch/contracts';
import { NotFoundError, UnavailableError } from '@fleetwatch/domain';
import { RpcServer } from '@fleetwatch/messaging';
import { FLEETWATCH_LOGGER } from '@fleetwatch/observability';
import type { Logger } from 'pino';
import { NotificationDelivery } from './notification-delivery.service';

/** Time kept back from the caller's deadline to log the attempt and publish the answer. */
const ANSWER_MARGIN_MS = 750;

/**
 * The aggregator's RPC method for a channel's test-send (`POST /api/v1/channels/{id}/test`): requests come
 * over the bus (QueueName.AggregatorCommands; any replica answers), the send is bounded to end before the
 * caller gives up, and the answer is the outcome — delivered, the receiver's refusal, or the error text, with
 * the channel's secrets scrubbed. The attempt is in the delivery log, marked as a test.
 */
@Injectable()
export class ChannelTestRpcHandler implements OnModuleInit {
  constructor(
    private readonly rpc: RpcServer,
    @Inject(NotificationDelivery) private readonly delivery: NotificationDelivery,
    @Inject(FLEETWATCH_LOGGER) private readonly logger: Pick<Logger, 'info'>,
  ) {}

  onModuleInit(): void {
    this.rpc.register(M.ChannelsTest, async (params, ctx): Promise<AggregatorRpcResults[M.ChannelsTest]> => {
      const p = aggregatorRpcParams[M.ChannelsTest].parse(params);
      const timeoutMs = ctx.deadline.getTime() - Date.now() - ANSWER_MARGIN_MS;
      if (timeoutMs < 200)
        throw new UnavailableError('too little time left to send a test before the caller gives up', 1);
      const result = await this.delivery.testSendTo(p.channelId, { timeoutMs });
      if (!result) throw new NotFoundError(`channel ${p.channelId} not found`);
      this.logger.info(
        {
          channelId: p.channelId,
          actor: p.actor.id,
          correlationId: ctx.correlationId,
          outcome: result.outcome,
        },
        'alert channel test-send requested',
      );
      return result;
    });
  }
}
