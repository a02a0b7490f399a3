import { Inject, Injectable } from '@nestjs/common';
import {
  AggregatorRpcMethod as M,
  aggregatorRpcParams,
  channelTestResultSchema,
  RoutingKey,
  type Actor,
  type ChannelTestResult,
} from '@fleetwatch/contracts';
import { UnavailableError } from '@fleetwatch/domain';
import { RpcClient, RpcError } from '@fleetwatch/messaging';
import type { GatewayConfig } from '../config';
import { GATEWAY_CONFIG } from '../tokens';
import { domainErrorOf } from '../checks/owner-errors';

// A channel's test-send (`POST /api/v1/channels/{id}/test`): delivery lives in the aggregator
// (apps/aggregator/src/alerts/delivery), which alone writes the delivery log and opens channel secrets
// (FLEETWATCH_ENCRYPTION_KEY). One request over the bus to it (RoutingKey.AggregatorRpcRequest); its
// answer is the outcome. No answer in time → 503 with Retry-After; an unknown channel → 404.

export const CHANNEL_TEST_SENDER = Symbol('fleetwatch.gateway.ChannelTestSender');

export type { ChannelTestResult };

/**
 * How long a test-send may take at least: the aggregator bounds the send to end before this (its own
 * delivery timeout, 10 s by default, is the other bound), so a slow receiver is a `failed: timed out`
 * answer, not a 503.
 */
export const CHANNEL_TEST_MIN_TIMEOUT_MS = 12_000;

export interface ChannelTestSender {
  send(channelId: string, actor: Actor): Promise<ChannelTestResult>;
}

@Injectable()
export class BusChannelTestSender implements ChannelTestSender {
  constructor(
    private readonly rpc: RpcClient,
    @Inject(GATEWAY_CONFIG) private readonly config: Pick<GatewayConfig, 'rpcTimeoutMs'>,
  ) {}

  async send(channelId: string, actor: Actor): Promise<ChannelTestResult> {
    const params = aggregatorRpcParams[M.ChannelsTest].parse({ actor, channelId });
    let answer: unknown;
    try {
      answer = await this.rpc.request(M.ChannelsTest, params, {
        timeoutMs: Math.max(this.config.rpcTimeoutMs, CHANNEL_TEST_MIN_TIMEOUT_MS),
        routingKey: RoutingKey.AggregatorRpcRequest,
        ownerName: 'aggregator',
      });
    } catch (e) {
      throw e instanceof RpcError ? domainErrorOf(e) : e;
    }
    const parsed = channelTestResultSchema.safeParse(answer);
    if (!parsed.success) throw new UnavailableError('the aggregator answered the test-send in an unknown form', 2);
    return parsed.data;
  }
}
