import { hostname } from 'node:os';
import Dockerode from 'dockerode';
import { loadConfigOrExit } from '@fleetwatch/config';
import { daemonMain, jsonLogger, pusherMetrics, runDaemon, startDaemonServer, StatusPusher } from '@fleetwatch/pusher';
import { loadDockerWatcherConfig } from './config';
import { DockerWatcher } from './docker-watcher';
import { SentLedger } from './sent-ledger';

// The Docker events watcher (SPEC §6): an outside daemon that follows one Docker engine and
// pushes each container's status to status-ingest with an API key, like any other pusher.
async function main() {
  const config = loadConfigOrExit(() => loadDockerWatcherConfig(), 'docker-watcher');
  const log = jsonLogger('docker-watcher', config.logLevel);
  // DOCKER_HOST (and DOCKER_TLS_VERIFY / DOCKER_CERT_PATH) are read by docker-modem itself.
  const docker = config.dockerHost ? new Dockerode() : new Dockerode({ socketPath: config.socketPath });
  const pusher = new StatusPusher({
    url: config.ingestUrl,
    apiKey: config.apiKey,
    log,
    maxBatch: config.maxBatch,
    maxQueue: config.maxQueue,
    maxQueueBytes: config.maxQueueBytes,
    baseDelayMs: config.retryBaseMs,
    maxDelayMs: config.retryMaxMs,
    refreshMs: config.refreshMs,
    // A state is reported again only while the engine is followed and answers (`connected`): an engine out of reach
    // is not "still running".
    refreshWhile: () => watcher.stats.connected,
  });
  const watcher: DockerWatcher = new DockerWatcher(
    docker,
    pusher,
    {
      labelFilters: config.labelFilters,
      instancePrefix: config.instancePrefix,
      location: config.location,
      source: `docker-watcher@${hostname()}`.slice(0, 256),
      maxAgeMs: config.maxAgeMs,
      reconnectBaseMs: 500,
      reconnectMaxMs: config.reconnectMaxMs,
      inspectConcurrency: config.inspectConcurrency,
      probeAfterMs: config.probeAfterMs,
      answerTimeoutMs: config.answerTimeoutMs,
      resyncMs: config.resyncMs,
    },
    log,
    new SentLedger(config.stateFile, log),
  );
  const server = await startDaemonServer({
    port: config.port,
    portVariable: 'DOCKER_WATCHER_PORT',
    healthy: () => ({ ok: true, detail: { ...watcher.stats, pending: pusher.pending } }),
    metrics: () => [
      {
        name: 'fleetwatch_watcher_connected',
        help: 'Whether the Docker events stream is open and the engine answered lately (1) or not (0).',
        type: 'gauge',
        value: watcher.stats.connected ? 1 : 0,
      },
      {
        name: 'fleetwatch_watcher_watched',
        help: 'Containers the watcher follows.',
        type: 'gauge',
        value: watcher.stats.watched,
      },
      {
        name: 'fleetwatch_watcher_resyncs_total',
        help: 'Full resyncs (start, every reconnect, and every DOCKER_WATCHER_RESYNC_SECONDS).',
        type: 'counter',
        value: watcher.stats.resyncs,
      },
      {
        name: 'fleetwatch_watcher_last_resync_seconds',
        help: 'Duration of the last resync.',
        type: 'gauge',
        value: watcher.stats.lastResyncMs / 1000,
      },
      {
        name: 'fleetwatch_watcher_events_total',
        help: 'Container lifecycle events handled.',
        type: 'counter',
        value: watcher.stats.events,
      },
      {
        name: 'fleetwatch_watcher_reconnects_total',
        help: 'Reconnects to the Docker engine.',
        type: 'counter',
        value: watcher.stats.reconnects,
      },
      ...pusherMetrics(pusher),
    ],
  });
  runDaemon({ log, watcher, pusher, server });
  log.info('docker-watcher started', {
    engine: config.dockerHost ?? `unix://${config.socketPath}`,
    ingest: config.ingestUrl,
    labelFilters: config.labelFilters,
    port: config.port,
    stateFile: config.stateFile ?? 'off',
  });
}

daemonMain('docker-watcher', main);
