import {
  Messages,
  RoutingKey,
  type ConfigChangedPayload,
  type StatusChangedBatchPayload,
  type StatusChangedPayload,
} from '@fleetwatch/contracts';
import { EventFollower, type BusConnection, type EventFollowerLogger } from '@fleetwatch/messaging';

// How the evaluator hears of changes (issue 18): a queue of this replica's own (EventFollower) bound to
// `event.status.changed(-batch)` and `event.config.changed` on the events exchange.
//
// Why a queue per replica and not the durable AggregatorAlerts queue: status changes are committed by
// whichever replica holds a target's shard, and the evaluator is whichever replica holds the evaluator
// lease; a shared queue would hand each replica a share of the events. Each replica follows every event
// and only the lease holder acts on them. An event is a hint, not the record: target_states is. So
// events missed while the connection was down (`onConnected`) or before the lease was taken are covered
// by a full reload of target_states — at lease take, on every (re)connect and every `resyncMs` — and the
// sequence each event carries keeps an old event from moving a target back.
// (Polling target_states by updated_at instead would re-read every target on every observation: the
// location rows change with each result.)

export type AlertEventsLogger = EventFollowerLogger;

export interface AlertEventHandlers {
  onStatusChanged(payload: StatusChangedPayload): void;
  onConfigChanged(payload: ConfigChangedPayload): void;
  /** The queue is (again) in place: events may have been missed meanwhile. */
  onConnected(): void;
}

export class AlertEventsFollower extends EventFollower {
  constructor(connection: BusConnection, handlers: AlertEventHandlers, logger: AlertEventsLogger) {
    super(
      connection,
      {
        name: 'alert evaluator events',
        routingKeys: [RoutingKey.StatusChanged, RoutingKey.StatusChangedBatch, RoutingKey.ConfigChanged],
        onMessage: ({ type, payload }) => {
          if (type === Messages.StatusChangedBatch.type)
            for (const event of (payload as StatusChangedBatchPayload).events) handlers.onStatusChanged(event);
          else if (type === Messages.StatusChanged.type) handlers.onStatusChanged(payload as StatusChangedPayload);
          else if (type === Messages.ConfigChanged.type) handlers.onConfigChanged(payload as ConfigChangedPayload);
        },
        onConnected: () => handlers.onConnected(),
      },
      logger,
    );
  }
}
