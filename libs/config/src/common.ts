import { z } from 'zod';
import { env, parseEnv } from './env';

/** Variables every service reads (SPEC §10, §11). */
export const commonShape = {
  FLEETWATCH_SITE: env.name('local'),
  FLEETWATCH_ROLE: env.role(),
  FLEETWATCH_LOCATION: env.location('local'),
  LOG_LEVEL: env.logLevel(),
  /** How long a service waits for its dependencies at boot before exiting with a named error. */
  FLEETWATCH_BOOT_TIMEOUT_SECONDS: env.int(30, 1, 600),
  /** Hard limit on graceful shutdown: in-flight work gets this long. */
  FLEETWATCH_SHUTDOWN_TIMEOUT_SECONDS: env.int(8, 1, 120),
  /** Prefix of every Redis key (and pub/sub channel) of this site; lets sites or test runs share one Redis. */
  FLEETWATCH_REDIS_PREFIX: z
    .string()
    .max(128, 'at most 128 characters')
    .regex(/^[A-Za-z0-9:._-]*$/, 'use letters, digits and : . _ -')
    .default(''),
};

export const SERVICE_PORTS = {
  'api-gateway': { variable: 'API_GATEWAY_PORT', port: 3000 },
  'status-ingest': { variable: 'STATUS_INGEST_PORT', port: 3001 },
  collector: { variable: 'COLLECTOR_PORT', port: 3002 },
  aggregator: { variable: 'AGGREGATOR_PORT', port: 3003 },
  'sync-orchestrator': { variable: 'SYNC_ORCHESTRATOR_PORT', port: 3004 },
} as const;
export type ServiceId = keyof typeof SERVICE_PORTS;

export interface CommonConfig {
  service: ServiceId;
  site: string;
  role: 'standalone' | 'leader' | 'member';
  location: string;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  port: number;
  bootTimeoutMs: number;
  shutdownTimeoutMs: number;
  redisPrefix: string;
}

/**
 * Parses the common variables plus the service's own `extra` shape in one pass,
 * so every problem is reported together.
 */
export function parseServiceEnv<S extends z.ZodRawShape>(
  service: ServiceId,
  extra: S,
  source: Record<string, string | undefined> = process.env,
): { common: CommonConfig; values: z.output<z.ZodObject<S>> } {
  const portVar = SERVICE_PORTS[service].variable;
  const parsed = parseEnv(
    { ...commonShape, [portVar]: env.port(SERVICE_PORTS[service].port), ...extra },
    source,
  ) as Record<string, unknown>;
  const common: CommonConfig = {
    service,
    site: parsed.FLEETWATCH_SITE as string,
    role: parsed.FLEETWATCH_ROLE as CommonConfig['role'],
    location: parsed.FLEETWATCH_LOCATION as string,
    logLevel: parsed.LOG_LEVEL as CommonConfig['logLevel'],
    port: parsed[portVar] as number,
    bootTimeoutMs: (parsed.FLEETWATCH_BOOT_TIMEOUT_SECONDS as number) * 1000,
    shutdownTimeoutMs: (parsed.FLEETWATCH_SHUTDOWN_TIMEOUT_SECONDS as number) * 1000,
    redisPrefix: parsed.FLEETWATCH_REDIS_PREFIX as string,
  };
  return { common, values: parsed as z.output<z.ZodObject<S>> };
}
