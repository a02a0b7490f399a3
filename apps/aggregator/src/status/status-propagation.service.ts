import { Injectable } from '@nestjs/common';
import type { TargetSnapshot } from '@fleetwatch/domain';
import type { StatusEventRecord } from '@fleetwatch/persistence';
import { statusChangedPayloadOf, StatusEventsRelay } from '../events/status-events.relay';
import { LiveProjection, type IndexedAs } from '../live/live-projection.service';
import { ProjectionQueue } from '../live/projection.queue';

/** What one committed transaction changed: the targets' final state and the events it stored. */
export interface CommittedChange {
  targets: TargetSnapshot[];
  /** Index entries Redis holds for each target; a target left out is read from Redis first (resync). */
  previous: Map<string, IndexedAs | null>;
  events: StatusEventRecord[];
}

/**
 * After a commit: `status.changed` on the bus (confirmed, via the outbox) before
 * the commit's messages are acked, and — queued, in commit order, overlapping the
 * next commit — live state in Redis followed by the live fan-out to gateways.
 * Safe to repeat: a retried job re-projects the same committed state.
 */
@Injectable()
export class StatusPropagation {
  constructor(
    private readonly live: LiveProjection,
    private readonly relay: StatusEventsRelay,
    private readonly projections: ProjectionQueue,
  ) {}

  /** Call inside the lane, right after the commit. `after` runs after the projection (same queue). */
  async propagate(change: CommittedChange, after?: () => Promise<void>): Promise<void> {
    await this.start(change, after);
  }

  /**
   * Call inside the lane, right after the commit: queues the projection (in commit order)
   * and the `status.changed` publish (in commit order, after earlier commits' publishes),
   * and returns without waiting for the broker — the next commit overlaps it. The
   * returned promise settles once the events were confirmed (or left in the outbox for
   * the relay: it never rejects for bus trouble); ack the commit's messages only then.
   */
  start(change: CommittedChange, after?: () => Promise<void>): Promise<void> {
    this.projections.enqueue(async () => {
      await this.live.project(change.targets, change.previous);
      if (change.events.length)
        await this.live.fanOut(change.events.map((e) => JSON.stringify(statusChangedPayloadOf(e))));
      await after?.();
    });
    return this.relay.publishInOrder(change.events);
  }
}
