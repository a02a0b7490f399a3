import { env, parseServiceEnv } from '@fleetwatch/config';
import { DEFAULT_DENY_NETWORKS as DENY_NETWORK_LIST } from '@fleetwatch/domain';
import { join } from 'node:path';
import { z } from 'zod';
import { dnsServersEnv } from './checks/net/dns-servers';

/** Cloud metadata and link-local by default (SPEC §5), as the env variable's comma-separated text. */
export const DEFAULT_DENY_NETWORKS = DENY_NETWORK_LIST.join(',');

/** collector's whole configuration, validated once at boot. It never needs the database. */
export function loadCollectorConfig(source: Record<string, string | undefined> = process.env) {
  const { common, values } = parseServiceEnv(
    'collector',
    {
      AMQP_URL: env.amqpUrl(),
      FLEETWATCH_CHECK_DENY_NETWORKS: env.cidrList(DEFAULT_DENY_NETWORKS),
      COLLECTOR_DNS_SERVERS: dnsServersEnv(),
      COLLECTOR_HOST_ID: z.string().max(256).optional(),
      COLLECTOR_SAMPLE_INTERVAL_SECONDS: env.int(15, 1, 3600),
      COLLECTOR_SPOOL_DIR: z.string().min(1).optional(),
      COLLECTOR_SPOOL_MAX_BYTES: env.int(256 * 1024 * 1024, 1024 * 1024, 64 * 1024 * 1024 * 1024),
      COLLECTOR_CHECK_CONCURRENCY: env.int(256, 1, 10_000),
      COLLECTOR_ASSIGNMENT_FILE: z.string().min(1).optional(),
      COLLECTOR_ASSIGNMENT_REFRESH_SECONDS: env.int(60, 5, 3600),
      COLLECTOR_HOST_INTERVAL_SECONDS: env.int(5, 0, 3600),
      COLLECTOR_NVIDIA_SMI: z.string().max(1024).default('nvidia-smi'),
      // A GPU missing this long is forgotten (7 days by default; a minute at least, ten years at most).
      COLLECTOR_GPU_FORGET_AFTER_SECONDS: env.int(7 * 24 * 3600, 60, 10 * 365 * 24 * 3600),
    },
    source,
  );
  // One directory per location by default, so two collectors on one machine never share a spool (it is locked).
  const spoolDir = values.COLLECTOR_SPOOL_DIR ?? join('tmp', 'collector-spool', common.location);
  return {
    ...common,
    amqpUrl: values.AMQP_URL,
    denyNetworks: values.FLEETWATCH_CHECK_DENY_NETWORKS,
    dnsServers: values.COLLECTOR_DNS_SERVERS,
    hostId: values.COLLECTOR_HOST_ID,
    sampleIntervalMs: values.COLLECTOR_SAMPLE_INTERVAL_SECONDS * 1000,
    spool: { dir: spoolDir, maxBytes: values.COLLECTOR_SPOOL_MAX_BYTES },
    checks: {
      concurrency: values.COLLECTOR_CHECK_CONCURRENCY,
      assignmentFile: values.COLLECTOR_ASSIGNMENT_FILE ?? join(spoolDir, 'assignment.json'),
      assignmentRefreshMs: values.COLLECTOR_ASSIGNMENT_REFRESH_SECONDS * 1000,
    },
    host: {
      /** 0: host sampling off. */
      intervalSeconds: values.COLLECTOR_HOST_INTERVAL_SECONDS,
      /** The nvidia-smi to run; `off`: no GPU sampling. */
      nvidiaSmi: values.COLLECTOR_NVIDIA_SMI === 'off' ? undefined : values.COLLECTOR_NVIDIA_SMI,
      /** The GPUs seen are remembered across restarts in this file (gpu-sampler.ts); one missing this long is forgotten. */
      gpuMemoryFile: join(spoolDir, 'known-gpus.json'),
      gpuForgetAfterMs: values.COLLECTOR_GPU_FORGET_AFTER_SECONDS * 1000,
      // Samples wait in a spool of their own, so a long outage's samples never push check results out.
      spoolDir: join(spoolDir, 'host'),
      spoolMaxBytes: Math.max(1024 * 1024, Math.floor(values.COLLECTOR_SPOOL_MAX_BYTES / 8)),
    },
  };
}
export type CollectorConfig = ReturnType<typeof loadCollectorConfig>;
