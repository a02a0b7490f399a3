import { DynamicModule, Module } from '@nestjs/common';
import { MessagingModule, RpcClientModule } from '@fleetwatch/messaging';
import { FLEETWATCH_LOGGER } from '@fleetwatch/observability';
import type { Logger } from 'pino';
import {
  ChecksService,
  COLLECTOR_STARTED_AT,
  PROBE_LOOKUP,
  PROBE_SESSIONS,
  type ProbeLookup,
} from './checks/checks.service';
import type { ProbeSessions } from './checks/probe';
import { probeFor, probeSessions } from './checks/probes/registry';
import { COLLECTOR_QUEUES } from './bus-queues';
import type { CollectorConfig } from './config';
import { HeartbeatService } from './heartbeat/heartbeat.service';
import { ReadinessWiring } from './health/readiness.wiring';
import { HostService } from './host/host.service';
import { systemTime, type TimeSources } from './stamps/stamp-clock';
import { STAMP_TIME, StampService } from './stamps/stamp.service';
import { COLLECTOR_CONFIG } from './tokens';

export interface CollectorModuleOptions {
  /** Probes by check type (default: probes/registry.ts, every type). */
  probes?: ProbeLookup;
  /** Probes' subscriptions while checks are assigned (default: probes/registry.ts, the rabbitmq-tap's). */
  sessions?: ProbeSessions;
  /**
   * When this collector started, epoch ms (default: the process start). Check slots that
   * fell between then and the scheduler's start run at once, so after a restart every
   * check runs within one interval of the process start, boot included. A collector
   * booted inside a longer-lived process (tests) passes its own start.
   */
  startedAt?: number;
  /** The clocks stamps read (default: Date.now and performance.now); tests step the wall clock through it. */
  time?: TimeSources;
}

/**
 * Runs at each location: the heartbeat and the checks capability (assignment, scheduler,
 * runner, offline spool) on the bus, host sampling (host/), health and metrics.
 */
@Module({})
export class CollectorModule {
  static forRoot(config: CollectorConfig, options: CollectorModuleOptions = {}): DynamicModule {
    return {
      module: CollectorModule,
      imports: [
        MessagingModule.forRootAsync({
          inject: [FLEETWATCH_LOGGER],
          useFactory: (logger: Logger) => ({
            url: config.amqpUrl,
            site: config.site,
            service: 'collector',
            location: config.location,
            // Declared here too so results wait in the queue when the aggregator is not up yet.
            queues: COLLECTOR_QUEUES,
            logger,
          }),
        }),
        // assignment.get to sync-orchestrator; a call waits at most 5 s (the collector runs from disk meanwhile).
        RpcClientModule.forRoot({ timeoutMs: 5_000, ownerName: 'sync-orchestrator' }),
      ],
      providers: [
        { provide: COLLECTOR_CONFIG, useValue: config },
        { provide: PROBE_LOOKUP, useValue: options.probes ?? probeFor },
        { provide: PROBE_SESSIONS, useValue: options.sessions ?? probeSessions },
        // The process's start read on today's wall clock (performance.now() is monotonic): a clock stepped since the
        // process started (NTP at boot) does not move its boot's catch-up window, as timeOrigin (the clock then) would.
        { provide: COLLECTOR_STARTED_AT, useValue: options.startedAt ?? Math.round(Date.now() - performance.now()) },
        { provide: STAMP_TIME, useValue: options.time ?? systemTime },
        StampService,
        HeartbeatService,
        ChecksService,
        HostService,
        ReadinessWiring,
      ],
    };
  }
}
