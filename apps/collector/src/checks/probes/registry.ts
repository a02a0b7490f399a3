import type { CheckType } from '@fleetwatch/contracts';
import type { Probe, ProbeSessions } from '../probe';
import { amqpProbe } from './amqp.probe';
import { dnsProbe } from './dns.probe';
import { httpProbe } from './http.probe';
import { icmpProbe } from './icmp.probe';
import { processProbe } from './process.probe';
import { createTapProbe, pipelineTaps } from './rabbitmq-tap.probe';
import { prometheusProbe } from './prometheus.probe';
import { tcpProbe } from './tcp.probe';
import { tlsProbe } from './tls.probe';

/**
 * Types collectors run: every check type but `push` (heartbeat monitors: nobody probes them,
 * the aggregator judges their pings).
 */
export type ProbedCheckType = Exclude<CheckType, 'push'>;

/**
 * A probe whose module loads on its first run. The postgres and redis probes pull in pg
 * and ioredis: ~8 MB of RSS that a collector without such checks never needs. A module
 * that fails to load fails every run of that type with the reason (the runner reports a
 * probe that throws as a failed result).
 */
function lazy<T extends ProbedCheckType>(load: () => Promise<Probe<T>>): Probe<T> {
  let loaded: Promise<Probe<T>> | undefined;
  return (check, ctx) => (loaded ??= load()).then((probe) => probe(check, ctx));
}

/** Every probed type's probe. The mapped type makes a type without a probe a compile error. */
export const PROBES: { readonly [T in ProbedCheckType]: Probe<T> } = {
  http: httpProbe,
  tcp: tcpProbe,
  icmp: icmpProbe,
  dns: dnsProbe,
  tls: tlsProbe,
  prometheus: prometheusProbe,
  postgres: lazy(() => import('./postgres.probe').then((m) => m.postgresProbe)),
  redis: lazy(() => import('./redis.probe').then((m) => m.redisProbe)),
  amqp: amqpProbe,
  process: processProbe,
  // Service collectors (issue 16): figures in the result's `metrics`.
  'redis-stats': lazy(() => import('./redis-stats.probe').then((m) => m.redisStatsProbe)),
  'rabbitmq-queues': lazy(() => import('./rabbitmq-queues.probe').then((m) => m.rabbitmqQueuesProbe)),
  'rabbitmq-tap': createTapProbe(pipelineTaps),
  'postgres-stats': lazy(() => import('./postgres-stats.probe').then((m) => m.postgresStatsProbe)),
  s3: lazy(() => import('./s3.probe').then((m) => m.s3Probe)),
};

/** Subscriptions held while checks are assigned: the rabbitmq-tap's private queues (ChecksService.apply). */
export const probeSessions: ProbeSessions = pipelineTaps;

/** The probe of `type`; undefined for a type collectors do not run (`push`). */
export function probeFor(type: CheckType): Probe | undefined {
  return (PROBES as Record<string, Probe | undefined>)[type];
}
