import { Inject, Injectable } from '@nestjs/common';
import {
  describeIssues,
  Messages,
  STATUS_CHANGED_BATCH_MAX,
  statusChangedBatchEventSchema,
  type StatusChangedBatchEvent,
  type StatusChangedPayload,
} from '@fleetwatch/contracts';
import { BusPublisher, InvalidMessageError, publishRequest } from '@fleetwatch/messaging';
import { FLEETWATCH_LOGGER } from '@fleetwatch/observability';
import { StatusEventsRepository, type LeasedJob, type StatusEventRecord } from '@fleetwatch/persistence';
import type { Logger } from 'pino';
import { AggregatorMetrics } from '../aggregator.metrics';
import { SerialLane } from '../status/serial-lane';

export function statusChangedPayloadOf(e: StatusEventRecord): StatusChangedPayload {
  return {
    targetId: e.targetId,
    kind: e.kind,
    location: e.location,
    from: e.from,
    to: e.to,
    reason: e.reason,
    at: new Date(e.at).toISOString(),
    sequence: e.sequence,
  };
}

/** A stored event as one event of a `status.changed.batch`. */
export function batchEventOf(e: StatusEventRecord): StatusChangedBatchEvent {
  return { ...statusChangedPayloadOf(e), eventId: e.id };
}

/**
 * Publishes stored status events (transactional outbox) as `status.changed.batch`
 * messages of up to STATUS_CHANGED_BATCH_MAX events, with broker confirms; each
 * event carries its id (a republish after a crash may group events differently, in
 * a new message: consumers de-duplicate by event id or by the target's sequence),
 * and drops the outbox rows once confirmed. What the broker did not confirm stays
 * in the outbox for `relayPending()` (the sweeper's relay job) — committed
 * events are never lost, only late.
 */
@Injectable()
export class StatusEventsRelay implements LeasedJob {
  readonly name = 'relay';
  private readonly metrics = AggregatorMetrics.get();

  /** The last publish queued by publishInOrder (settled, never rejected). */
  private inOrder: Promise<void> = Promise.resolve();

  constructor(
    private readonly publisher: BusPublisher,
    private readonly events: StatusEventsRepository,
    private readonly lane: SerialLane,
    @Inject(FLEETWATCH_LOGGER) private readonly logger: Logger,
  ) {}

  /**
   * The sweeper's relay job: in the lane (no commit runs meanwhile) and after every
   * publish already queued, so a relayed event never overtakes one a batch is publishing.
   */
  async run(): Promise<void> {
    await this.lane.run(async () => {
      await this.inOrder;
      return this.relayPending();
    });
  }

  /**
   * Publishes a commit's events after every earlier call's (commit order), without holding
   * the caller: resolves once confirmed or left in the outbox. Never rejects: a failure to
   * mark them published leaves them in the outbox, for the relay.
   */
  publishInOrder(events: readonly StatusEventRecord[]): Promise<void> {
    const done = this.inOrder.then(async () => {
      try {
        await this.publish(events);
      } catch (e) {
        this.logger.warn(
          { err: (e as Error).message },
          'status.changed publish failed; left in the outbox for the relay',
        );
      }
    });
    this.inOrder = done;
    return done;
  }

  /** Publishes these events; resolves with how many the broker confirmed. Never throws for bus trouble. */
  async publish(all: readonly StatusEventRecord[]): Promise<number> {
    if (all.length === 0) return 0;
    // The publisher validates every message (InvalidMessageError, before anything is sent): events are checked one
    // by one only when it refuses, not twice on every commit.
    try {
      return await this.publishBatches(all);
    } catch (e) {
      if (!(e instanceof InvalidMessageError)) throw e;
    }
    // An event no schema accepts would block the outbox forever: drop it loudly instead, publish the rest.
    const invalid = all.filter((e) => !statusChangedBatchEventSchema.safeParse(batchEventOf(e)).success);
    for (const e of invalid) {
      const issues = statusChangedBatchEventSchema.safeParse(batchEventOf(e));
      this.logger.error(
        { eventId: e.id, targetId: e.targetId, reason: issues.success ? '' : describeIssues(issues.error) },
        'status event cannot be published; dropped from the outbox',
      );
    }
    if (invalid.length) await this.events.markPublished(invalid.map((e) => e.id));
    const events = all.filter((e) => !invalid.includes(e));
    return events.length === 0 ? 0 : this.publishBatches(events);
  }

  private async publishBatches(events: readonly StatusEventRecord[]): Promise<number> {
    // One status.changed.batch per STATUS_CHANGED_BATCH_MAX events, in commit order: a commit's events (two per
    // change: the location's and the target's) cost the broker one message per queue they reach, not one each.
    // Each event keeps its id inside (consumers de-duplicate by it); the message gets an id of its own, since a
    // relay may later regroup what a failed publish left in the outbox.
    const chunks: StatusEventRecord[][] = [];
    for (let i = 0; i < events.length; i += STATUS_CHANGED_BATCH_MAX)
      chunks.push(events.slice(i, i + STATUS_CHANGED_BATCH_MAX));
    const outcomes = await this.publisher.publishManySettled(
      chunks.map((chunk) =>
        publishRequest(
          Messages.StatusChangedBatch,
          { events: chunk.map(batchEventOf) },
          // status.changed is a fan-out fact: no bound queue yet is not an error.
          { occurredAt: new Date(chunk[chunk.length - 1].at), mandatory: false },
        ),
      ),
    );
    const confirmed: string[] = [];
    outcomes.forEach((o, i) => {
      if (o.ok) for (const e of chunks[i]) confirmed.push(e.id);
    });
    const failed = events.length - confirmed.length;
    if (failed > 0) {
      const first = outcomes.find((o) => !o.ok);
      this.logger.warn(
        { failed, error: first && !first.ok ? first.error.message : undefined },
        'status.changed not confirmed; left in the outbox for the relay',
      );
    }
    this.metrics.eventsPublished.inc(confirmed.length);
    await this.events.markPublished(confirmed);
    return confirmed.length;
  }

  /** Publishes what earlier runs left in the outbox (a crash after commit, the bus away). */
  async relayPending(maxRounds = 20): Promise<number> {
    // With the bus away a publish would only wait out its timeout (inside the lane): try next time.
    if (!this.publisher.isConnected()) return 0;
    let total = 0;
    for (let i = 0; i < maxRounds; i++) {
      const pending = await this.events.pendingPublication(500);
      if (pending.length === 0) break;
      const confirmed = await this.publish(pending);
      total += confirmed;
      if (confirmed < pending.length || pending.length < 500) break;
    }
    return total;
  }
}
