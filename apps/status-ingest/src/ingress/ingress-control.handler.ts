import { Inject, Injectable } from '@nestjs/common';
import { Messages, QueueName, type Envelope, type IngressControlPayload } from '@fleetwatch/contracts';
import { ConsumeQueue, PermanentError } from '@fleetwatch/messaging';
import { FLEETWATCH_LOGGER } from '@fleetwatch/observability';
import type { Logger } from 'pino';
import { IngressStateService } from './ingress-state.service';

/**
 * `ingress.pause` / `ingress.resume` commands. One queue, so with several
 * ingest replicas only one would receive each command: scaling out needs a
 * per-replica queue (or a fan-out exchange) for these.
 */
@Injectable()
export class IngressControlHandler {
  constructor(
    private readonly ingress: IngressStateService,
    @Inject(FLEETWATCH_LOGGER) private readonly logger: Logger,
  ) {}

  @ConsumeQueue(QueueName.StatusIngestCommands, { prefetch: 10 })
  handle(envelope: Envelope): void {
    const payload = envelope.payload as IngressControlPayload;
    if (envelope.type === Messages.IngressPause.type) {
      const state = this.ingress.pause(payload);
      this.logger.warn(
        { reason: state.reason, until: state.until?.toISOString() ?? null, operationId: state.operationId },
        'ingress paused',
      );
    } else if (envelope.type === Messages.IngressResume.type) {
      this.ingress.resume();
      this.logger.info({ reason: payload.reason, operationId: payload.operationId }, 'ingress resumed');
    } else {
      throw new PermanentError(`status-ingest does not handle "${envelope.type}"`);
    }
  }
}
