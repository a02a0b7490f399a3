import { createServer, type Server } from 'node:http';
import type { PushLog, StatusPusher } from './status-pusher';

// What every pushing daemon needs beside the push client: a JSON-lines log and a small
// HTTP port for liveness (/healthz) and Prometheus counters (/metrics).

const LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type DaemonLogLevel = (typeof LEVELS)[number];

/** One JSON object per line on stdout (pino's field names, so the same tooling reads it). */
export function jsonLogger(name: string, level: DaemonLogLevel = 'info'): PushLog & { debug: PushLog['info'] } {
  const min = LEVELS.indexOf(level);
  const write = (lvl: DaemonLogLevel, msg: string, fields?: Record<string, unknown>) => {
    if (LEVELS.indexOf(lvl) < min) return;
    process.stdout.write(JSON.stringify({ level: lvl, time: new Date().toISOString(), name, msg, ...fields }) + '\n');
  };
  return {
    debug: (m, f) => write('debug', m, f),
    info: (m, f) => write('info', m, f),
    warn: (m, f) => write('warn', m, f),
    error: (m, f) => write('error', m, f),
  };
}

export interface DaemonMetric {
  name: string;
  help: string;
  type: 'counter' | 'gauge';
  value: number;
}

/** Prometheus text format for a handful of unlabelled series. */
export function metricsText(metrics: DaemonMetric[]): string {
  return metrics
    .map(
      (m) =>
        `# HELP ${m.name} ${m.help}\n# TYPE ${m.name} ${m.type}\n${m.name} ${Number.isFinite(m.value) ? m.value : 0}\n`,
    )
    .join('');
}

/**
 * `/healthz` answers 200 while `healthy()` says so (503 with the reason otherwise);
 * `/metrics` the daemon's series. Port 0 picks a free one (tests).
 */
export async function startDaemonServer(opts: {
  port: number;
  /** The variable that set `port`, named when the port cannot be opened (`DOCKER_WATCHER_PORT`). */
  portVariable?: string;
  host?: string;
  healthy: () => { ok: boolean; detail: Record<string, unknown> };
  metrics: () => DaemonMetric[];
}): Promise<Server> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/healthz' || path === '/readyz') {
      const h = opts.healthy();
      res.writeHead(h.ok ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify(h.detail));
    } else if (path === '/metrics') {
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(metricsText(opts.metrics()));
    } else {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not_found"}');
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: Error & { code?: string }) => reject(new DaemonStartError(listenProblem(opts, e))));
    server.listen(opts.port, opts.host ?? '0.0.0.0', () => resolve());
  });
  return server;
}

/** What stops a daemon from starting, said in one line for its operator (no stack trace: see daemonMain). */
export class DaemonStartError extends Error {}

function listenProblem(opts: { port: number; portVariable?: string }, e: Error & { code?: string }): string {
  const variable = opts.portVariable ?? 'port';
  if (e.code === 'EADDRINUSE')
    return `${variable}: port ${opts.port} is already in use by another process (stop it, or set ${variable} to a free port)`;
  if (e.code === 'EACCES')
    return `${variable}: port ${opts.port} may not be opened by this user (below 1024 needs privileges: set ${variable} to 1024 or above)`;
  return `${variable}: cannot listen on port ${opts.port}: ${e.message}`;
}

/**
 * Runs a daemon's `main`: a DaemonStartError (a port taken) ends it with its line on stderr and exit code 1, as the
 * services do; anything else with its stack (a defect), exit code 1 too — never an unhandled rejection.
 */
export function daemonMain(name: string, main: () => Promise<void>): void {
  main().catch((e: unknown) => {
    process.stderr.write(
      e instanceof DaemonStartError
        ? `[${name}] cannot start:\n  - ${e.message}\n`
        : `[${name}] ${String((e as Error)?.stack ?? e)}\n`,
    );
    process.exit(1);
  });
}

/**
 * Starts the pusher and the watcher, and on SIGINT/SIGTERM stops them in that order's reverse: the watcher
 * first (nothing new is queued), then the pusher gets up to 5 s to deliver what is queued, then the server; a
 * shutdown not done within 15 s exits anyway (code 1).
 */
export function runDaemon(parts: {
  log: PushLog;
  /** `persist`: what the watcher keeps across restarts, written once the pusher has drained. */
  watcher: { start(): void; stop(): Promise<void>; persist?(): Promise<void> };
  pusher: StatusPusher;
  server: Server;
}): void {
  const { log, watcher, pusher, server } = parts;
  pusher.start();
  watcher.start();
  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info('stopping', { signal });
    // Whatever hangs (an engine that never answers), the process ends: the pusher's grace is 5 s of this.
    setTimeout(() => {
      log.error('shutdown did not finish within 15 s: exiting');
      process.exit(1);
    }, 15_000).unref();
    await watcher.stop();
    await pusher.stop(5000);
    await watcher.persist?.();
    server.close();
    process.exit(0);
  };
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
}

/** The push client's counters, for a daemon's /metrics. */
export function pusherMetrics(pusher: StatusPusher) {
  const s = pusher.stats;
  return [
    {
      name: 'fleetwatch_pusher_accepted_total',
      help: 'Updates the ingest accepted (202).',
      type: 'counter' as const,
      value: s.accepted,
    },
    {
      name: 'fleetwatch_pusher_requests_total',
      help: 'Push requests sent, retries included.',
      type: 'counter' as const,
      value: s.requests,
    },
    {
      name: 'fleetwatch_pusher_retries_total',
      help: 'Requests answered 429/5xx/401/403/404/405/410/415/421/426 or lost: retried.',
      type: 'counter' as const,
      value: s.retries,
    },
    {
      name: 'fleetwatch_pusher_auth_refused_total',
      help: 'Requests answered 401/403 (the API key refused); the updates are held and retried.',
      type: 'counter' as const,
      value: s.authRefused,
    },
    {
      name: 'fleetwatch_pusher_endpoint_refused_total',
      help: 'Requests answered 404/405/410/415/421/426 (a wrong URL or a proxy); the updates are held and retried.',
      type: 'counter' as const,
      value: s.endpointRefused,
    },
    {
      name: 'fleetwatch_pusher_dropped_invalid_total',
      help: 'Updates the contract refused before sending.',
      type: 'counter' as const,
      value: s.droppedInvalid,
    },
    {
      name: 'fleetwatch_pusher_dropped_refused_total',
      help: 'Updates the ingest refused (4xx), not retried.',
      type: 'counter' as const,
      value: s.droppedRefused,
    },
    {
      name: 'fleetwatch_pusher_dropped_overflow_total',
      help: 'Oldest updates dropped from a full queue (WATCHER_QUEUE_MAX or WATCHER_QUEUE_MAX_BYTES).',
      type: 'counter' as const,
      value: s.droppedOverflow,
    },
    {
      name: 'fleetwatch_pusher_refreshed_total',
      help: 'Updates sent again unchanged (WATCHER_REFRESH_SECONDS) so that a steady instance does not go STALE.',
      type: 'counter' as const,
      value: s.refreshed,
    },
    {
      name: 'fleetwatch_pusher_pending',
      help: 'Updates queued or in flight.',
      type: 'gauge' as const,
      value: pusher.pending,
    },
    {
      name: 'fleetwatch_pusher_queued_bytes',
      help: 'JSON bytes of the updates queued (bound: WATCHER_QUEUE_MAX_BYTES).',
      type: 'gauge' as const,
      value: pusher.queuedBytes,
    },
  ];
}
