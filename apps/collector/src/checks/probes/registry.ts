import type { CheckType } from '@fleetwatch/contracts';
import type { Probe } from '../probe';
import { amqpProbe } from './amqp.probe';
import { dnsProbe } from './dns.probe';
import { httpProbe } from './http.probe';
import { icmpProbe } from './icmp.probe';
import { postgresProbe } from './postgres.probe';
import { processProbe } from './process.probe';
import { prometheusProbe } from './prometheus.probe';
import { redisProbe } from './redis.probe';
import { tcpProbe } from './tcp.probe';
import { tlsProbe } from './tls.probe';

/**
 * Types collectors run: every check type but `push` (heartbeat monitors: nobody probes them,
 * the aggregator judges their pings).
 */
export type ProbedCheckType = Exclude<CheckType, 'push'>;

/** Every probed type's probe. The mapped type makes a type without a probe a compile error. */
export const PROBES: { readonly [T in ProbedCheckType]: Probe<T> } = {
  http: httpProbe,
  tcp: tcpProbe,
  icmp: icmpProbe,
  dns: dnsProbe,
  tls: tlsProbe,
  prometheus: prometheusProbe,
  postgres: postgresProbe,
  redis: redisProbe,
  amqp: amqpProbe,
  process: processProbe,
};

/** The probe of `type`; undefined for a type collectors do not run (`push`). */
export function probeFor(type: CheckType): Probe | undefined {
  return (PROBES as Record<string, Probe | undefined>)[type];
}
