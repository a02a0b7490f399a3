import { env, parseEnv } from '@fleetwatch/config';
import { pusherSettings, pusherShape, watcherStateFile } from '@fleetwatch/pusher';
import { z } from 'zod';

/** The Kubernetes pod watcher's environment, validated once at boot (README, "Watchers"). */
export function loadK8sWatcherConfig(source: Record<string, string | undefined> = process.env) {
  const v = parseEnv(
    {
      ...pusherShape,
      K8S_WATCHER_PORT: env.port(3006),
      /** Empty: every namespace (the ClusterRole variant of deploy/kubernetes). */
      K8S_WATCHER_NAMESPACE: z
        .string()
        .max(63)
        .regex(
          /^([a-z0-9]([-a-z0-9]*[a-z0-9])?)?$/,
          'a namespace name (lower-case letters, digits, -), or empty for all',
        )
        .default(''),
      /**
       * A Kubernetes label selector (`app=web,tier!=cache`), passed to the API as is: no whitespace but spaces, none
       * at the end. One character per repetition: `^[^\s]*( *[^\s]+)*$` backtracked exponentially on a selector
       * ending in a newline or a tab (a YAML block scalar's), hanging the watcher at boot with no word.
       */
      K8S_WATCHER_LABEL_SELECTOR: z
        .string()
        .max(1024)
        .regex(/^(?: *[^\s])*$/, 'a label selector such as app=web,tier in (a,b)')
        .default(''),
      K8S_WATCHER_INSTANCE_PREFIX: z
        .string()
        .max(64)
        .regex(
          /^([A-Za-z0-9][A-Za-z0-9._:/@+=-]*)?$/,
          'use letters, digits and . _ : / @ + = -, starting with a letter or digit',
        )
        .default(''),
      K8S_WATCHER_CONTEXT: env.optionalString(),
      K8S_WATCHER_RESYNC_SECONDS: env.int(900, 0, 86_400),
      K8S_WATCHER_LIST_PAGE_SIZE: env.int(500, 1, 5000),
      K8S_WATCHER_WATCH_TIMEOUT_SECONDS: env.int(300, 5, 3600),
      K8S_WATCHER_RECONNECT_MAX_SECONDS: env.int(30, 1, 3600),
      /** A watch silent this long (no event, no bookmark) is checked: is the API server still answering? */
      K8S_WATCHER_PROBE_AFTER_SECONDS: env.int(30, 1, 3600),
      /** No answer within this (the probe, a watch request's headers): not connected, and the watch restarts. */
      K8S_WATCHER_ANSWER_TIMEOUT_SECONDS: env.int(10, 1, 300),
      /** The pods reported, kept across restarts (default: a file in ~/.fleetwatch per cluster and filters; `off`: none). */
      K8S_WATCHER_STATE_FILE: env.optionalString(),
    },
    source,
  );
  return {
    ...pusherSettings(v),
    port: v.K8S_WATCHER_PORT,
    namespace: v.K8S_WATCHER_NAMESPACE || undefined,
    labelSelector: v.K8S_WATCHER_LABEL_SELECTOR,
    instancePrefix: v.K8S_WATCHER_INSTANCE_PREFIX,
    context: v.K8S_WATCHER_CONTEXT,
    resyncMs: v.K8S_WATCHER_RESYNC_SECONDS * 1000,
    listPageSize: v.K8S_WATCHER_LIST_PAGE_SIZE,
    watchTimeoutSeconds: v.K8S_WATCHER_WATCH_TIMEOUT_SECONDS,
    reconnectMaxMs: v.K8S_WATCHER_RECONNECT_MAX_SECONDS * 1000,
    probeAfterMs: v.K8S_WATCHER_PROBE_AFTER_SECONDS * 1000,
    answerTimeoutMs: v.K8S_WATCHER_ANSWER_TIMEOUT_SECONDS * 1000,
    /** As set (`off`: none); unset: per cluster (known once the kubeconfig is read: stateFileFor). */
    stateFile: v.K8S_WATCHER_STATE_FILE,
  };
}
export type K8sWatcherConfig = ReturnType<typeof loadK8sWatcherConfig>;

/** The state file of a watcher of `server` (the cluster's API URL) with `config`'s filters (watcherStateFile). */
export function stateFileFor(config: K8sWatcherConfig, server: string): string | undefined {
  return watcherStateFile('k8s-watcher', config.stateFile, [
    server,
    config.namespace ?? '',
    config.labelSelector,
    config.instancePrefix,
  ]);
}
