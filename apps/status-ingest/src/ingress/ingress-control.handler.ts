import { Inject, Injectable } from '@nestjs/common';
import type { Envelope, IngressControlPayload } from '@fleetwatch/contracts';
import { ConsumeQueue, PermanentError } from '@fleetwatch/messaging';
import { FLEETWATCH_LOGGER } from '@fleetwatch/observability';
import type { Logger } from 'pino';
import { STATUS_INGEST_CONSUMED_QUEUE } from '../bus-queues';
import { ingressRecordOf } from './ingress-command';
import { IngressStateSync } from './ingress-state.sync';

/**
 * `ingress.pause` / `ingress.resume` commands. The queue is shared, so one replica
 * receives each command: it stores the command in Redis (only when newer than the
 * state in force there) and acks after the write; every replica then follows the
 * stored state (IngressStateSync). A command Redis could not take is applied here
 * and held while the write is retried; handlers run side by side, so one held
 * command does not delay the next (their stamps, not their order, decide).
 */
@Injectable()
export class IngressControlHandler {
  constructor(
    private readonly sync: IngressStateSync,
    @Inject(FLEETWATCH_LOGGER) private readonly logger: Logger,
  ) {}

  @ConsumeQueue(STATUS_INGEST_CONSUMED_QUEUE, { prefetch: 10, concurrency: 10 })
  async handle(envelope: Envelope): Promise<void> {
    const record = ingressRecordOf(envelope as Envelope<IngressControlPayload>);
    if (!record) throw new PermanentError(`status-ingest does not handle "${envelope.type}"`);
    const { applied, current } = await this.sync.apply(record);
    if (!applied)
      this.logger.info(
        { commandId: record.commandId, stamp: record.stamp, inForce: current.commandId, inForceStamp: current.stamp },
        `ingress command ignored: the state in force is as new or newer (${current.paused ? 'paused' : 'open'})`,
      );
  }
}
