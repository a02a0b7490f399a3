import { ConfigError } from '@fleetwatch/config';
import { loadDockerWatcherConfig } from './config';

describe('docker-watcher configuration', () => {
  it('defaults to the local socket and ingest; label filters are key or key=value', () => {
    expect(
      loadDockerWatcherConfig({
        FLEETWATCH_INGEST_API_KEY: 'k',
        DOCKER_WATCHER_LABEL_FILTER: 'fleetwatch.watch=true, team',
      }),
    ).toMatchObject({
      socketPath: '/var/run/docker.sock',
      dockerHost: undefined,
      ingestUrl: 'http://127.0.0.1:3001',
      labelFilters: ['fleetwatch.watch=true', 'team'],
      port: 3005,
      maxBatch: 500,
      maxAgeMs: 24 * 3600_000,
      probeAfterMs: 30_000,
      answerTimeoutMs: 10_000,
      resyncMs: 300_000,
    });
  });

  it('names every bad variable at once', () => {
    let error: ConfigError | undefined;
    try {
      loadDockerWatcherConfig({
        DOCKER_WATCHER_LABEL_FILTER: 'a b',
        FLEETWATCH_INGEST_URL: 'ftp://x',
        DOCKER_WATCHER_INSTANCE_PREFIX: ' x',
        WATCHER_BATCH_MAX: '1001',
      });
    } catch (e) {
      error = e as ConfigError;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect(error?.problems.map((p) => p.variable).sort()).toEqual([
      'DOCKER_WATCHER_INSTANCE_PREFIX',
      'DOCKER_WATCHER_LABEL_FILTER',
      'FLEETWATCH_INGEST_API_KEY',
      'FLEETWATCH_INGEST_URL',
      'WATCHER_BATCH_MAX',
    ]);
  });
});
