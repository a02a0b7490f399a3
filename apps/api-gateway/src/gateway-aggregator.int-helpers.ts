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

/** What startGatewayBesideAggregator hands back at once: `close` works before `ready` settles (a set-up timed out). */
export interface StartingGatewayBesideAggregator {
  ready: Promise<GatewayBesideAggregator>;
  close(): Promise<void>;
}

/**
 * A gateway command sent to the aggregator, end to end: the real gateway (its bus through a TcpProxy the test can
 * cut), the real aggregator (built from today's sources, run as a process) and a publisher standing for the service
 * that feeds it, on one vhost; a viewer and an operator signed in. `close()` stops whatever started — if a step
 * fails, and if it is called while the set-up is still under way (jest's afterAll after a beforeAll timed out): what
 * starts after that is stopped at once, and the set-up ends with an error.
 */
export function startGatewayBesideAggregator(
  name: string,
  source: { service: 'collector' | 'status-ingest'; location: string },
  aggregatorEnv: Record<string, string> = {},
): StartingGatewayBesideAggregator {
  const undo: Array<() => Promise<unknown> | unknown> = [];
  let closed = false;
  const close = async () => {
    closed = true;
    for (const step of undo.splice(0).reverse()) await Promise.resolve(step()).catch(() => undefined);
  };
  /** Remembers how to stop what just started; stops it at once if close() came meanwhile. */
  const started = async (stop: () => Promise<unknown> | unknown) => {
    undo.push(stop);
    if (closed) {
      await close();
      throw new Error(`${name}: closed during the set-up`);
    }
  };
  const ready = (async (): Promise<GatewayBesideAggregator> => {
    try {
      const vhost = await testing.createIsolatedVhost(name);
      await started(() => vhost.dispose());
      const proxy = testing.TcpProxy.forUrl(vhost.amqpUrl);
      await proxy.start();
      await started(() => proxy.stop());
      const gw = await startGateway(testing, name, { env: { AMQP_URL: proxy.rewriteUrl(vhost.amqpUrl) } });
      await started(() => gw.close());
      const dist = await privateOwnerDist(`${name}-${testing.testEnv().runId}`);
      await started(() => rmSync(dist, { recursive: true, force: true }));
      const aggregator = await startAggregatorBeside(dist, gw, vhost.amqpUrl, aggregatorEnv);
      await started(() => aggregator.stop());
      const bus = createBus({
        url: vhost.amqpUrl,
        source: { site: 'test', ...source },
        name: `test-${name}-${source.service}`,
        queues: observationShardQueueSpecs(),
      });
      await started(() => bus.close());
      const { viewer, operator } = await signInViewerAndOperator(gw);
      return { gw, proxy, aggregator, bus, viewer, operator, close };
    } catch (e) {
      await close();
      throw e;
    }
  })();
  return { ready, close };
}
