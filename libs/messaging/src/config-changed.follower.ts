import { Messages, RoutingKey, type ConfigChangedPayload } from '@fleetwatch/contracts';
import type { BusConnection } from './connection';
import { EventFollower, type EventFollowerLogger } from './event-follower';

// Follows `config.changed` so a configuration change reaches this process within a second or two (issue 15:
// < 2 s): a collector's assignment, status-ingest's cached heartbeat monitors. Every process must see EVERY event
// (each decides for itself whether what it holds changed), so it follows them in a queue of its own (EventFollower)
// and NOT through the durable quorum queue QueueName.CollectorConfig, whose consumers would share its messages.
// Events sent while the process is disconnected are lost by design: every (re)connect triggers a refetch too
// (`onConnected`), and what is held is also re-read periodically.

export type ConfigEventsLogger = EventFollowerLogger;

export class ConfigChangedFollower extends EventFollower {
  constructor(
    connection: BusConnection,
    handlers: {
      onChanged(payload: ConfigChangedPayload): void;
      /** The queue is (again) in place: events may have been missed meanwhile. */
      onConnected(): void;
    },
    logger: ConfigEventsLogger,
  ) {
    super(
      connection,
      {
        name: 'config.changed follower',
        routingKeys: [RoutingKey.ConfigChanged],
        onMessage: (envelope) => {
          if (envelope.type !== Messages.ConfigChanged.type) {
            logger.warn({ reason: `type ${envelope.type}` }, 'config.changed: ignored');
            return;
          }
          handlers.onChanged(envelope.payload as ConfigChangedPayload);
        },
        onConnected: () => handlers.onConnected(),
      },
      logger,
    );
  }
}
