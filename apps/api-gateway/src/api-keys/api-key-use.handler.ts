import { Injectable } from '@nestjs/common';
import { apiKeyUsedPayloadSchema, Messages, type Envelope } from '@fleetwatch/contracts';
import { ConsumeQueue, PermanentError } from '@fleetwatch/messaging';
import { API_GATEWAY_CONSUMED_QUEUE } from '../bus-queues';
import { ApiKeyLastUse } from './api-key-last-use.service';

/**
 * `apikey.used` reports from status-ingest (which may not write `api_keys`, SPEC §2): each moves the key's
 * `last_used_at` forward (never back; a time ahead of this gateway's clock counts as now), through the one
 * throttle the gateway's own uses go through. Acked after the write commits; a database failure redelivers. A
 * key deleted meanwhile (or never known) updates nothing and is acked: nothing to record, nothing to retry.
 * Invalid payloads are dead-lettered by the consumer before they get here. The queue is shared: any replica
 * takes a report.
 */
@Injectable()
export class ApiKeyUseHandler {
  constructor(private readonly lastUse: ApiKeyLastUse) {}

  @ConsumeQueue(API_GATEWAY_CONSUMED_QUEUE, { prefetch: 50, concurrency: 10 })
  async handle(envelope: Envelope): Promise<void> {
    if (envelope.type !== Messages.ApiKeyUsed.type)
      throw new PermanentError(`api-gateway does not handle "${envelope.type}" on ${API_GATEWAY_CONSUMED_QUEUE}`);
    const { keyId, at } = apiKeyUsedPayloadSchema.parse(envelope.payload);
    const now = Date.now();
    const used = Date.parse(at);
    await this.lastUse.record(keyId, new Date(Math.min(used, now)));
  }
}
