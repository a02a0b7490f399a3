import { Injectable } from '@nestjs/common';
import type { TargetSnapshot } from '@fleetwatch/domain';
import type { StatusEventRecord } from '@fleetwatch/persistence';
import { statusChangedPayloadOf, StatusEventsRelay } from '../events/status-events.relay';
import { LiveProjection, type IndexedAs } from '../live/live-projection.service';

/** What one committed transaction changed: the targets' final state and the events it stored. */
export interface CommittedChange {
  targets: TargetSnapshot[];
  /** Index entries Redis holds for each target; a target left out is read from Redis first (resync). */
  previous: Map<string, IndexedAs | null>;
  events: StatusEventRecord[];
}

/**
 * After a commit: live state in Redis, the live fan-out to gateways, then
 * `status.changed` on the bus (confirmed, via the outbox). Safe to repeat: a
 * retried job re-projects the same committed state.
 */
@Injectable()
export class StatusPropagation {
  constructor(
    private readonly live: LiveProjection,
    private readonly relay: StatusEventsRelay,
  ) {}

  async propagate(change: CommittedChange): Promise<void> {
    await this.live.project(change.targets, change.previous);
    if (change.events.length === 0) return;
    await this.live.fanOut(change.events.map((e) => JSON.stringify(statusChangedPayloadOf(e))));
    await this.relay.publish(change.events);
  }
}
