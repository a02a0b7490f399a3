import { rmSync } from 'node:fs';
import { createBus, observationShardQueueSpecs, type Bus } from '@fleetwatch/messaging';
import * as testing from '@fleetwatch/testing';
import { startAggregatorBeside, type AggregatorProcess } from './alerting/aggregator-process.int-helpers';
import { privateOwnerDist } from './checks/owner-process.int-helpers';
import { signInViewerAndOperator, startGateway, type GatewayHarness } from './int-spec.helpers';

export interface GatewayBesideAggregator {
  gw: GatewayHarness;
  /** Between the gateway and the broker: the test cuts or pauses it. */
  proxy: InstanceType<typeof testing.TcpProxy>;
  aggregator: AggregatorProcess;
  /** Publishes as `source` would (a collector, status-ingest), straight to the broker. */
  bus: Bus;
  viewer: string;
  operator: string;
  close(): Promise<void>;
}

/**
 * A gateway command sent to the aggregator, end to end: the real gateway (its bus through a TcpProxy the test can
 * cut), the real aggregator (built from today's sources, run as a process) and a publisher standing for the service
 * that feeds it, on one vhost; a viewer and an operator signed in. Whatever started is stopped if a later step fails.
 */
export async function startGatewayBesideAggregator(
  name: string,
  source: { service: 'collector' | 'status-ingest'; location: string },
  aggregatorEnv: Record<string, string> = {},
): Promise<GatewayBesideAggregator> {
  const undo: Array<() => Promise<unknown> | unknown> = [];
  const close = async () => {
    for (const step of undo.splice(0).reverse()) await Promise.resolve(step()).catch(() => undefined);
  };
  try {
    const vhost = await testing.createIsolatedVhost(name);
    undo.push(() => vhost.dispose());
    const proxy = testing.TcpProxy.forUrl(vhost.amqpUrl);
    await proxy.start();
    undo.push(() => proxy.stop());
    const gw = await startGateway(testing, name, { env: { AMQP_URL: proxy.rewriteUrl(vhost.amqpUrl) } });
    undo.push(() => gw.close());
    const dist = privateOwnerDist(`${name}-${testing.testEnv().runId}`);
    undo.push(() => rmSync(dist, { recursive: true, force: true }));
    const aggregator = await startAggregatorBeside(dist, gw, vhost.amqpUrl, aggregatorEnv);
    undo.push(() => aggregator.stop());
    const bus = createBus({
      url: vhost.amqpUrl,
      source: { site: 'test', ...source },
      name: `test-${name}-${source.service}`,
      queues: observationShardQueueSpecs(),
    });
    undo.push(() => bus.close());
    const { viewer, operator } = await signInViewerAndOperator(gw);
    return { gw, proxy, aggregator, bus, viewer, operator, close };
  } catch (e) {
    await close();
    throw e;
  }
}
