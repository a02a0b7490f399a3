import { NotImplementedException } from '@nestjs/common';
import type { Actor } from '@fleetwatch/contracts';

// The seam for a channel's test-send (`POST /api/v1/channels/{id}/test`): delivery lives in the
// aggregator (apps/aggregator/src/alerts/delivery), which alone opens channel secrets. Provide an
// implementation under CHANNEL_TEST_SENDER (e.g. a bus request to the aggregator that sends one test
// notification and answers how it went); until then the route answers 501.

export const CHANNEL_TEST_SENDER = Symbol('fleetwatch.gateway.ChannelTestSender');

export interface ChannelTestResult {
  ok: boolean;
  /** The receiver's answer (status code, SMTP reply …), redacted: never a secret. */
  detail?: string;
  attempts?: number;
  durationMs?: number;
}

export interface ChannelTestSender {
  send(channelId: string, actor: Actor): Promise<ChannelTestResult>;
}

export class NotYetChannelTestSender implements ChannelTestSender {
  send(): Promise<ChannelTestResult> {
    return Promise.reject(
      new NotImplementedException('test-send is not available yet: channel delivery runs in the aggregator'),
    );
  }
}
