import {
  databaseSettings,
  databaseShape,
  env,
  parseServiceEnv,
  SERVICE_PORTS,
  type ServiceId,
} from '@fleetwatch/config';
import { z } from 'zod';

const SIBLINGS = (Object.keys(SERVICE_PORTS) as ServiceId[]).filter((s) => s !== 'api-gateway');

/** FLEETWATCH_COMPONENT_URLS: `none`, or `service=http(s)://host[:port][/path]` pairs → base URL per named service. */
export const componentUrlsSchema = z
  .string()
  .trim()
  .transform((text, ctx) => {
    const urls: Partial<Record<ServiceId, string>> = {};
    if (text === 'none') return urls;
    for (const entry of text.split(',').map((e) => e.trim())) {
      const eq = entry.indexOf('=');
      const name = (eq < 0 ? entry : entry.slice(0, eq).trim()) as ServiceId;
      const value = eq < 0 ? '' : entry.slice(eq + 1).trim();
      const problem = !(SIBLINGS as readonly ServiceId[]).includes(name)
        ? `"${entry}": name one of ${SIBLINGS.join(', ')} (service=URL), or write none`
        : urls[name] !== undefined
          ? `${name} is named twice`
          : !/^https?:\/\/[^/?#\s]+(\/[^?#\s]*)?$/.test(value)
            ? `${name}: "${value}" is not a base URL such as http://${name}:${SERVICE_PORTS[name].port}`
            : null;
      if (problem) {
        ctx.addIssue({ code: 'custom', message: problem });
        return z.NEVER;
      }
      urls[name] = value.replace(/\/+$/, '');
    }
    return urls;
  });

/** api-gateway's whole configuration, validated once at boot. */
export function loadGatewayConfig(source: Record<string, string | undefined> = process.env) {
  const { common, values } = parseServiceEnv(
    'api-gateway',
    {
      /** DATABASE_URL and its connections' limits (timeouts, keep-alive). */
      ...databaseShape,
      REDIS_URL: env.redisUrl(),
      /**
       * A Redis command without an answer within this fails, and the request answers 503 (Retry-After) as for any
       * outage. Without it, a read in flight when Redis's connection dropped waited for Redis to come back.
       */
      GATEWAY_REDIS_TIMEOUT_MS: env.int(5_000, 1_500, 60_000),
      /**
       * How long a request waits for the database's answer about its session token or API key (not cached), then 503
       * + Retry-After: with Postgres hanging it waited the query timeout, and forged well-formed credentials (a query
       * each) queued without bound ahead of every other query (CredentialLookups).
       */
      GATEWAY_CREDENTIAL_LOOKUP_TIMEOUT_MS: env.int(2_000, 100, 60_000),
      /** Such lookups under way at once, one per credential; a request needing one more gets 503 + Retry-After. */
      GATEWAY_CREDENTIAL_LOOKUP_MAX_CONCURRENT: env.int(64, 1, 10_000),
      AMQP_URL: env.amqpUrl(),
      /**
       * The first admin's password, as it is (SPEC §11): a short one is not refused — the site would not start — but
       * warned about when admin is created. At most what a sign-in may present.
       */
      FLEETWATCH_ADMIN_PASSWORD: z
        .string()
        .max(1024, 'at most 1024 characters (a sign-in presents no more)')
        .optional(),
      SESSION_TTL_HOURS: env.int(12, 1, 24 * 30),
      LOGIN_RATE_LIMIT_PER_MINUTE: env.int(10, 1, 10_000),
      /** Login attempts per client address per minute, whatever the username. */
      LOGIN_RATE_LIMIT_PER_IP_PER_MINUTE: env.int(30, 1, 100_000),
      DASHBOARD_DIR: z.string().optional(),
      /** Base URL of status-ingest as pushers reach it; heartbeat ping URLs are built on it. */
      STATUS_INGEST_PUBLIC_URL: z
        .string()
        .url('must be a URL such as http://fleetwatch.example:3001')
        .regex(/^https?:\/\//, 'must start with http:// or https://')
        .optional(),
      STATUS_INGEST_PORT: env.port(SERVICE_PORTS['status-ingest'].port),
      COLLECTOR_PORT: env.port(SERVICE_PORTS.collector.port),
      AGGREGATOR_PORT: env.port(SERVICE_PORTS.aggregator.port),
      SYNC_ORCHESTRATOR_PORT: env.port(SERVICE_PORTS['sync-orchestrator'].port),
      /**
       * Where the gateway asks the site's other services for their versions (member report and config snapshot,
       * SPEC §8): `service=baseURL` pairs, comma-separated (`collector=http://collector:3002,…`), or `none`. A service
       * not named is not asked and its version is null. Unset: each at 127.0.0.1 on the port its variable gives
       * (every service on one host, as `npm start`).
       */
      FLEETWATCH_COMPONENT_URLS: componentUrlsSchema.optional(),
      /** Proxies (CIDRs) whose X-Forwarded-For is believed (login limits and key allow-lists use the client address). */
      GATEWAY_TRUST_PROXY: env.trustedProxies(),
      /** How long a call to the configuration owner about one check (or a read) waits for its answer. */
      GATEWAY_RPC_TIMEOUT_MS: env.int(5_000, 100, 600_000),
      /** The same for calls whose work grows with the site: bulk create, import (dry run and apply), export. */
      GATEWAY_RPC_BULK_TIMEOUT_MS: env.int(60_000, 100, 3_600_000),
      /**
       * Origins besides the gateway's own that may open /ws and make cookie-authenticated writes
       * (comma-separated, e.g. `https://ops.example,http://localhost:5173`).
       */
      GATEWAY_WS_ALLOWED_ORIGINS: z
        .string()
        .default('')
        .transform((s) =>
          s
            .split(',')
            .map((v) => v.trim())
            .filter(Boolean),
        )
        .pipe(z.array(z.string().regex(/^https?:\/\/[^/\s]+$/, 'each must be an origin such as https://ops.example'))),
      /** A socket whose unsent data exceeds this many bytes is closed (a client that does not read). */
      GATEWAY_WS_MAX_BUFFERED_BYTES: env.int(1024 * 1024, 1024, 256 * 1024 * 1024),
      /** How often each replica re-checks its sockets' sessions (revoked or expired → closed). */
      GATEWAY_WS_SESSION_CHECK_MS: env.int(2_000, 100, 60_000),
      /** Most sockets one session or API key may hold open on one replica; the next is closed with 4429. */
      GATEWAY_WS_MAX_SOCKETS_PER_PRINCIPAL: env.int(16, 1, 10_000),
      /**
       * Most sockets one user (all their sessions together) or one API key may hold open on one replica;
       * unset: 4 × GATEWAY_WS_MAX_SOCKETS_PER_PRINCIPAL. Signing in again does not buy more places.
       */
      GATEWAY_WS_MAX_SOCKETS_PER_USER: z.coerce
        .number({ message: 'must be a number' })
        .int('must be a whole number')
        .min(1, 'must be ≥ 1')
        .max(100_000, 'must be ≤ 100000')
        .optional(),
      /** How often each socket is pinged; one that has not answered the previous ping by then is cut. */
      GATEWAY_WS_PING_INTERVAL_MS: env.int(30_000, 100, 600_000),
      /**
       * Least time between two resyncs sent to the sockets after the Redis subscriber reconnected; reconnects
       * within it are answered by one trailing resync at its end (a flapping subscriber cannot make every page
       * re-read everything every few seconds).
       */
      GATEWAY_WS_RESYNC_MIN_INTERVAL_MS: env.int(10_000, 100, 600_000),
    },
    source,
  );
  return {
    ...common,
    databaseUrl: values.DATABASE_URL,
    database: databaseSettings(values),
    redisUrl: values.REDIS_URL,
    redisTimeoutMs: values.GATEWAY_REDIS_TIMEOUT_MS,
    credentialLookupTimeoutMs: values.GATEWAY_CREDENTIAL_LOOKUP_TIMEOUT_MS,
    credentialLookupMaxConcurrent: values.GATEWAY_CREDENTIAL_LOOKUP_MAX_CONCURRENT,
    amqpUrl: values.AMQP_URL,
    adminPassword: values.FLEETWATCH_ADMIN_PASSWORD,
    sessionTtlMs: values.SESSION_TTL_HOURS * 3600_000,
    loginRatePerMinute: values.LOGIN_RATE_LIMIT_PER_MINUTE,
    loginIpRatePerMinute: values.LOGIN_RATE_LIMIT_PER_IP_PER_MINUTE,
    dashboardDir: values.DASHBOARD_DIR,
    ingestPublicUrl: (values.STATUS_INGEST_PUBLIC_URL ?? `http://127.0.0.1:${values.STATUS_INGEST_PORT}`).replace(
      /\/+$/,
      '',
    ),
    trustedProxies: values.GATEWAY_TRUST_PROXY,
    /** Each other service's base URL for its version, or null: not asked (FLEETWATCH_COMPONENT_URLS). */
    componentUrls: Object.fromEntries(
      SIBLINGS.map((s) => [
        s,
        values.FLEETWATCH_COMPONENT_URLS
          ? (values.FLEETWATCH_COMPONENT_URLS[s] ?? null)
          : `http://127.0.0.1:${values[SERVICE_PORTS[s].variable]}`,
      ]),
    ) as Partial<Record<ServiceId, string | null>>,
    rpcTimeoutMs: values.GATEWAY_RPC_TIMEOUT_MS,
    rpcBulkTimeoutMs: values.GATEWAY_RPC_BULK_TIMEOUT_MS,
    // Normalised as request Origins are (lower case, default port dropped): `https://ops.example:443` matches.
    allowedOrigins: values.GATEWAY_WS_ALLOWED_ORIGINS.map((o) => {
      const url = new URL(o);
      return `${url.protocol}//${url.host}`.toLowerCase();
    }),
    wsMaxBufferedBytes: values.GATEWAY_WS_MAX_BUFFERED_BYTES,
    wsSessionCheckMs: values.GATEWAY_WS_SESSION_CHECK_MS,
    wsMaxSocketsPerPrincipal: values.GATEWAY_WS_MAX_SOCKETS_PER_PRINCIPAL,
    wsMaxSocketsPerUser: values.GATEWAY_WS_MAX_SOCKETS_PER_USER ?? 4 * values.GATEWAY_WS_MAX_SOCKETS_PER_PRINCIPAL,
    wsPingIntervalMs: values.GATEWAY_WS_PING_INTERVAL_MS,
    wsResyncMinIntervalMs: values.GATEWAY_WS_RESYNC_MIN_INTERVAL_MS,
  };
}
export type GatewayConfig = ReturnType<typeof loadGatewayConfig>;
