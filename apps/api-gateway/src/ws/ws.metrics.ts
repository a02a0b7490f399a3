import { Injectable, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import { Counter, Gauge, register } from 'prom-client';
import { emptyWsStats, WsHub, type WsStats } from './ws-hub.service';

/** The hubs of the gateways running in this process (one in a deployment; tests run several). */
const hubs = new Set<WsHub>();

/** The figures of every hub in this process, added up: /metrics (the default registry) is the process's. */
export function processWsStats(): WsStats {
  const total = emptyWsStats();
  for (const hub of hubs) {
    const s = hub.snapshot();
    for (const k of Object.keys(total) as Array<keyof WsStats>) total[k] += s[k];
  }
  return total;
}

/**
 * The WebSocket hub's figures on the gateway's /metrics, read from the hub at scrape time (per replica: a process;
 * where one process runs several gateways, as tests do, their figures are added up):
 *
 *   fleetwatch_gateway_ws_sockets                          open sockets now
 *   fleetwatch_gateway_ws_closed_total{reason}             sockets the gateway closed: slow (did not read its
 *                                                          messages), session_ended (logout or expiry), no_pong,
 *                                                          flooding (kept sending past its frame budget)
 *   fleetwatch_gateway_ws_refused_total                    sockets refused at the per-session/key or per-user cap
 *   fleetwatch_gateway_ws_resubscribes_total               reconnects of the Redis fan-out subscriber
 *   fleetwatch_gateway_ws_resyncs_total                    resync messages sent to every open socket after one
 *   fleetwatch_gateway_ws_degraded_total                   degraded messages sent to every open socket: once per
 *                                                          outage (subscriber lost, or READ_FAILURES_DEGRADED reads
 *                                                          failed in a row), ended by a resync
 *   fleetwatch_gateway_ws_corrupt_records_total            reads by the hub of a record of live state that cannot be
 *                                                          read (corrupt): skipped, never counted as Redis failing
 */
@Injectable()
export class WsMetrics implements OnModuleInit, OnModuleDestroy {
  private readonly names = [
    'fleetwatch_gateway_ws_sockets',
    'fleetwatch_gateway_ws_closed_total',
    'fleetwatch_gateway_ws_refused_total',
    'fleetwatch_gateway_ws_resubscribes_total',
    'fleetwatch_gateway_ws_resyncs_total',
    'fleetwatch_gateway_ws_degraded_total',
    'fleetwatch_gateway_ws_corrupt_records_total',
  ];

  constructor(private readonly hub: WsHub) {}

  onModuleInit(): void {
    hubs.add(this.hub);
    if (register.getSingleMetric(this.names[0])) return;
    const stats = processWsStats;
    new Gauge({
      name: 'fleetwatch_gateway_ws_sockets',
      help: 'Open WebSocket connections on this gateway replica.',
      collect() {
        this.set(stats().open);
      },
    });
    new Counter({
      name: 'fleetwatch_gateway_ws_closed_total',
      help: 'WebSocket connections closed by the gateway: slow (not reading), session_ended (logout or expiry), no_pong (no answer to a ping), flooding (kept sending past its frame budget).',
      labelNames: ['reason'],
      collect() {
        const s = stats();
        this.reset();
        this.labels('slow').inc(s.droppedSlow);
        this.labels('session_ended').inc(s.closedSessionEnded);
        this.labels('no_pong').inc(s.closedNoPong);
        this.labels('flooding').inc(s.closedFlooding);
      },
    });
    const counter = (name: string, help: string, value: () => number) =>
      new Counter({
        name,
        help,
        collect() {
          this.reset();
          this.inc(value());
        },
      });
    counter(
      'fleetwatch_gateway_ws_refused_total',
      'WebSocket connections refused (close code 4429) at GATEWAY_WS_MAX_SOCKETS_PER_PRINCIPAL or GATEWAY_WS_MAX_SOCKETS_PER_USER.',
      () => stats().refusedTooMany,
    );
    counter(
      'fleetwatch_gateway_ws_resubscribes_total',
      'Reconnects of the Redis subscriber that fans status changes out to WebSockets (changes published meanwhile were missed).',
      () => stats().resubscribes,
    );
    counter(
      'fleetwatch_gateway_ws_resyncs_total',
      'Times every open WebSocket was told to resync (re-read over REST) after the fan-out subscriber reconnected.',
      () => stats().resyncs,
    );
    counter(
      'fleetwatch_gateway_ws_degraded_total',
      'Times every open WebSocket was told live updates paused (degraded): the fan-out subscriber lost its Redis connection, or reads of live state failed 3 times in a row; once per outage, ended by a resync.',
      () => stats().degraded,
    );
    counter(
      'fleetwatch_gateway_ws_corrupt_records_total',
      "Reads by the WebSocket hub of a record of live state that cannot be read (corrupt: a target's tags or labels or one of its location entries, a host's sample): the record is skipped (a subscription's first read is answered with an error naming the target); Redis answered, so never counted toward degraded.",
      () => stats().corruptRecords,
    );
  }

  onModuleDestroy(): void {
    hubs.delete(this.hub);
    if (hubs.size === 0)
      for (const name of this.names) if (register.getSingleMetric(name)) register.removeSingleMetric(name);
  }
}
