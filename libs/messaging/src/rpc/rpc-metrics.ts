import { Histogram, register } from 'prom-client';

const NAME = 'fleetwatch_rpc_duration_seconds';

/**
 * Request/response calls by side, method and outcome (`ok` or the error code), on
 * prom-client's default registry: the caller's wait (client) and the owner's handling
 * (server). Labels stay bounded: an unregistered method is counted as `unknown`.
 */
export function observeRpc(side: 'client' | 'server', method: string, outcome: string, seconds: number): void {
  const histogram =
    (register.getSingleMetric(NAME) as Histogram<string> | undefined) ??
    new Histogram({
      name: NAME,
      help: 'Request/response calls over the bus: the caller waiting (side=client) or the owner handling (side=server), by method and outcome.',
      labelNames: ['side', 'method', 'outcome'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    });
  histogram.labels(side, method, outcome).observe(seconds);
}
