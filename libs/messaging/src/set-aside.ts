import { BusHeader, ExchangeName, type Envelope } from '@fleetwatch/contracts';
import { ConfirmSender } from './confirm-sender';
import { PublishUnroutableError } from './errors';
import type { BusConnection } from './connection';
import { deadLetterHeaders } from './delivery';
import type { BusLogger } from './logger';
import { BusMetrics } from './metrics';

/** One part of a message that could not be stored while the rest was: it goes to the DLQ alone, as its own message. */
export interface SetAsidePart {
  /** A complete, replayable envelope of its own (e.g. one `status.update` cut out of a `status.update.batch`). */
  envelope: Envelope;
  reason: string;
  /** Extra headers naming where it came from (BusHeader.ApiKeyId, BusHeader.UpdateId). */
  headers?: Record<string, string>;
}

/**
 * Dead-letters single parts of messages (SPEC §3: "inside a message carrying many
 * updates, only the bad update is set aside"). Each part is published, persistent
 * and confirmed, to the dead-letter exchange routed by the source queue — the same
 * place and headers as a whole dead-lettered message — so `npm run dlq` lists and
 * replays it like any other dead letter. The caller acks the original message only
 * after `setAside` resolved.
 */
export class SetAsideWriter {
  private readonly sender: ConfirmSender;
  private readonly metrics = BusMetrics.get();

  constructor(
    connection: BusConnection,
    private readonly logger: BusLogger,
    /**
     * Declares the queue's topology again (its DLQ and the DLQ's binding): called when
     * a copy was unroutable — someone deleted the DLQ — before the caller retries.
     */
    private readonly redeclare?: (queue: string) => Promise<void>,
    private readonly timeoutMs = 5_000,
  ) {
    this.sender = new ConfirmSender(connection);
  }

  async setAside(queue: string, parts: readonly SetAsidePart[]): Promise<void> {
    if (parts.length === 0) return;
    const errors = await this.sender.sendMany(
      parts.map((p) => ({
        exchange: ExchangeName.DeadLetter,
        routingKey: queue,
        type: p.envelope.type,
        content: Buffer.from(JSON.stringify(p.envelope)),
        properties: {
          persistent: true,
          mandatory: true,
          messageId: p.envelope.id,
          type: p.envelope.type,
          contentType: 'application/json',
          correlationId: p.envelope.correlationId,
          timestamp: Math.floor(Date.now() / 1000),
          headers: deadLetterHeaders(
            { reason: p.reason, queue, cause: 'isolated', deliveryCount: 0 },
            { [BusHeader.MessageType]: p.envelope.type, ...p.headers },
          ),
        },
      })),
      this.timeoutMs,
    );
    const failed = errors.find((e) => e !== undefined);
    if (failed) {
      if (failed instanceof PublishUnroutableError && this.redeclare) {
        this.logger.error({ queue }, 'dead-letter queue missing: declaring it again');
        await this.redeclare(queue).catch((e: unknown) =>
          this.logger.error({ queue, error: String(e) }, 'could not declare the dead-letter queue'),
        );
      }
      throw failed;
    }
    for (const p of parts) {
      this.metrics.deadLettered.inc([queue, p.envelope.type, 'isolated']);
      this.logger.warn(
        { queue, messageId: p.envelope.id, type: p.envelope.type, reason: p.reason, ...p.headers },
        'part of a message set aside to the dead-letter queue',
      );
    }
  }

  close(): Promise<void> {
    return this.sender.close();
  }

  /** Closed with the module that provides it (Nest calls this on shutdown). */
  onModuleDestroy(): Promise<void> {
    return this.close();
  }
}
