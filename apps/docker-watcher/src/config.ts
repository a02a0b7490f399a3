import { env, parseEnv } from '@fleetwatch/config';
import { z } from 'zod';
import { pusherShape, pusherSettings, watcherStateFile } from '@fleetwatch/pusher';

/** The Docker watcher's environment, validated once at boot (README, "Watchers"). */
export function loadDockerWatcherConfig(source: Record<string, string | undefined> = process.env) {
  const v = parseEnv(
    {
      ...pusherShape,
      DOCKER_WATCHER_PORT: env.port(3005),
      /** Unix socket of the engine; DOCKER_HOST (unix://, tcp://, with DOCKER_TLS_VERIFY/DOCKER_CERT_PATH) wins when set. */
      DOCKER_SOCKET: z.string().min(1).default('/var/run/docker.sock'),
      DOCKER_HOST: env.optionalString(),
      DOCKER_WATCHER_LABEL_FILTER: z
        .string()
        .default('')
        .transform((s) =>
          s
            .split(',')
            .map((v) => v.trim())
            .filter(Boolean),
        )
        .superRefine((list, ctx) => {
          for (const f of list)
            if (!/^[^=\s]+(=[^\s]*)?$/.test(f))
              ctx.addIssue({ code: 'custom', message: `"${f}" is not a label filter (key or key=value)` });
        }),
      DOCKER_WATCHER_INSTANCE_PREFIX: z
        .string()
        .max(64)
        .regex(
          /^([A-Za-z0-9][A-Za-z0-9._:/@+=-]*)?$/,
          'use letters, digits and . _ : / @ + = -, starting with a letter or digit',
        )
        .default(''),
      DOCKER_WATCHER_RECONNECT_MAX_SECONDS: env.int(30, 1, 3600),
      DOCKER_WATCHER_INSPECT_CONCURRENCY: env.int(8, 1, 64),
      /** The engine silent this long (no event, no answer) is pinged: is it still answering? */
      DOCKER_WATCHER_PROBE_AFTER_SECONDS: env.int(30, 1, 3600),
      /** A ping, list or inspect given no answer within this: not connected, and the watcher reconnects (resyncs). */
      DOCKER_WATCHER_ANSWER_TIMEOUT_SECONDS: env.int(10, 1, 300),
      /** A full resync this often while the events are followed (0: only on start and after a reconnect). */
      DOCKER_WATCHER_RESYNC_SECONDS: env.int(300, 0, 86_400),
      /** What the ingest accepted per container, kept across restarts; `off` keeps nothing (see SentLedger). */
      DOCKER_WATCHER_STATE_FILE: env.optionalString(),
    },
    source,
  );
  return {
    ...pusherSettings(v),
    port: v.DOCKER_WATCHER_PORT,
    dockerHost: v.DOCKER_HOST,
    socketPath: v.DOCKER_SOCKET,
    labelFilters: v.DOCKER_WATCHER_LABEL_FILTER,
    instancePrefix: v.DOCKER_WATCHER_INSTANCE_PREFIX,
    reconnectMaxMs: v.DOCKER_WATCHER_RECONNECT_MAX_SECONDS * 1000,
    inspectConcurrency: v.DOCKER_WATCHER_INSPECT_CONCURRENCY,
    probeAfterMs: v.DOCKER_WATCHER_PROBE_AFTER_SECONDS * 1000,
    answerTimeoutMs: v.DOCKER_WATCHER_ANSWER_TIMEOUT_SECONDS * 1000,
    resyncMs: v.DOCKER_WATCHER_RESYNC_SECONDS * 1000,
    stateFile: watcherStateFile('docker-watcher', v.DOCKER_WATCHER_STATE_FILE, [
      v.DOCKER_HOST ?? v.DOCKER_SOCKET,
      v.DOCKER_WATCHER_INSTANCE_PREFIX,
      v.DOCKER_WATCHER_LABEL_FILTER.join(','),
    ]),
  };
}
export type DockerWatcherConfig = ReturnType<typeof loadDockerWatcherConfig>;
