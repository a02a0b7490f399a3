import { hostname } from 'node:os';
import { loadConfigOrExit } from '@fleetwatch/config';
import { daemonMain, jsonLogger, pusherMetrics, runDaemon, startDaemonServer, StatusPusher } from '@fleetwatch/pusher';
import { loadK8sWatcherConfig, stateFileFor } from './config';
import { KubeConfigError, loadKubeConfig } from './kube-api';
import { PodWatcher } from './pod-watcher';

// The Kubernetes pod watcher (SPEC §6): an outside daemon that follows pods with the
// @kubernetes/client-node informer and pushes each pod's status to status-ingest with an
// API key, like any other pusher.
async function main() {
  const config = loadConfigOrExit(() => loadK8sWatcherConfig(), 'k8s-watcher');
  const log = jsonLogger('k8s-watcher', config.logLevel);
  let connection;
  try {
    connection = loadKubeConfig(process.env, config.context);
  } catch (e) {
    if (!(e instanceof KubeConfigError)) throw e;
    process.stderr.write(`[k8s-watcher] ${e.message}\n`);
    process.exit(78);
  }
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
    // A state is reported again only while the API server is watched and answers (`connected`): pods out of sight
    // are not "still running".
    refreshWhile: () => watcher.stats.connected,
  });
  // One file per cluster (its API URL) and filters: another cluster's pods are never taken for pods deleted here.
  const stateFile = stateFileFor(config, connection.kc.getCurrentCluster()?.server ?? connection.origin);
  const watcher: PodWatcher = new PodWatcher(
    connection.kc,
    pusher,
    {
      namespace: config.namespace,
      labelSelector: config.labelSelector,
      instancePrefix: config.instancePrefix,
      location: config.location,
      source: `k8s-watcher@${hostname()}`.slice(0, 256),
      maxAgeMs: config.maxAgeMs,
      resyncMs: config.resyncMs,
      listPageSize: config.listPageSize,
      reconnectBaseMs: 500,
      reconnectMaxMs: config.reconnectMaxMs,
      watchTimeoutSeconds: config.watchTimeoutSeconds,
      probeAfterMs: config.probeAfterMs,
      answerTimeoutMs: config.answerTimeoutMs,
      stateFile,
    },
    log,
  );
  const s = watcher.stats;
  const server = await startDaemonServer({
    port: config.port,
    portVariable: 'K8S_WATCHER_PORT',
    healthy: () => ({ ok: true, detail: { ...s, pending: pusher.pending } }),
    metrics: () => [
      {
        name: 'fleetwatch_watcher_connected',
        help: 'Whether the pods are listed and watched and the API server answered lately (1) or not (0).',
        type: 'gauge',
        value: s.connected ? 1 : 0,
      },
      { name: 'fleetwatch_watcher_watched', help: 'Pods the watcher follows.', type: 'gauge', value: s.watched },
      {
        name: 'fleetwatch_watcher_resyncs_total',
        help: 'Full relists (start, 410 Gone, resync period).',
        type: 'counter',
        value: s.relists,
      },
      {
        name: 'fleetwatch_watcher_gone_total',
        help: 'Watches that ended with 410 Gone.',
        type: 'counter',
        value: s.gone,
      },
      {
        name: 'fleetwatch_watcher_last_resync_seconds',
        help: 'Duration of the last relist.',
        type: 'gauge',
        value: s.lastRelistMs / 1000,
      },
      { name: 'fleetwatch_watcher_events_total', help: 'Pod watch events handled.', type: 'counter', value: s.events },
      {
        name: 'fleetwatch_watcher_reconnects_total',
        help: 'Watch reconnects after an error.',
        type: 'counter',
        value: s.reconnects,
      },
      ...pusherMetrics(pusher),
    ],
  });
  runDaemon({ log, watcher, pusher, server });
  log.info('k8s-watcher started', {
    api: connection.origin,
    namespace: config.namespace ?? '(all)',
    labelSelector: config.labelSelector,
    stateFile: stateFile ?? '(off)',
    ingest: config.ingestUrl,
    port: config.port,
  });
}

daemonMain('k8s-watcher', main);
