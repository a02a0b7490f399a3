import type { SchemaObject } from '@nestjs/swagger';
import { TargetStatus } from '@fleetwatch/contracts';
import { targetViewSchema } from '../web/response.schemas';

// OpenAPI shapes of the hosts answers (contracts declare them as TypeScript interfaces).

const str: SchemaObject = { type: 'string' };
const num: SchemaObject = { type: 'number' };
const int: SchemaObject = { type: 'integer' };
const nullableNum: SchemaObject = { type: 'number', nullable: true };
const nullableStr: SchemaObject = { type: 'string', nullable: true };
const dateTime: SchemaObject = { type: 'string', format: 'date-time' };
const nullableDateTime: SchemaObject = { ...dateTime, nullable: true };
const object = (properties: Record<string, SchemaObject>, extra: Partial<SchemaObject> = {}): SchemaObject => ({
  type: 'object',
  required: Object.keys(properties),
  properties,
  ...extra,
});

const systemSchema: SchemaObject = {
  type: 'object',
  nullable: true,
  description: 'What the host runs, as its collector last said',
  properties: Object.fromEntries(
    [
      'hostname',
      'platform',
      'distro',
      'release',
      'kernel',
      'arch',
      'collectorVersion',
      'nodeVersion',
      'gpuDriverVersion',
    ].map((k) => [k, str]),
  ),
};

const summarySchema = object(
  {
    sampledAt: dateTime,
    cpuPct: num,
    cores: int,
    load1: num,
    memoryUsedBytes: num,
    memoryTotalBytes: num,
    swapUsedBytes: nullableNum,
    swapTotalBytes: nullableNum,
    diskUsedBytes: { type: 'number', description: 'Sum over disks' },
    diskTotalBytes: { type: 'number', description: 'Sum over disks' },
    networkRxBytesPerSec: { type: 'number', nullable: true, description: 'Sum over interfaces; null until known' },
    networkTxBytesPerSec: { type: 'number', nullable: true, description: 'Sum over interfaces; null until known' },
    gpuCount: int,
    gpuMaxUtilizationPct: nullableNum,
    gpuMaxTemperatureC: nullableNum,
    gpusMissing: {
      type: 'integer',
      nullable: true,
      description:
        "GPUs the collector saw earlier and does not see now (fallen off the bus; listed in the sample's missingGpus); null when the collector does not say",
    },
  },
  { nullable: true },
);

const conflictSchema = object(
  {
    reporters: { type: 'integer', minimum: 2, description: 'How many reporters are interleaving' },
    since: { type: 'string', format: 'date-time', description: 'When the aggregator noticed it' },
  },
  {
    nullable: true,
    description:
      "Two or more collectors report this host id at once (cloned machines, one COLLECTOR_HOST_ID configured twice): the host's figures, history and alerts mix them. Null: one reporter, or collectors that do not say who they are",
  },
);

export const hostListSchema = object({
  items: {
    type: 'array',
    items: object({
      id: { type: 'string', description: "The collector's host id" },
      targetId: { type: 'string', description: '`host:{id}`' },
      name: str,
      status: { type: 'string', enum: Object.values(TargetStatus) },
      locations: { type: 'array', items: str },
      lastSeen: nullableDateTime,
      since: nullableDateTime,
      system: systemSchema,
      lastSample: summarySchema,
      conflict: conflictSchema,
    }),
  },
  nextCursor: nullableStr,
  total: int,
});

export const hostDetailSchema = object({
  id: str,
  target: targetViewSchema,
  system: systemSchema,
  sample: {
    type: 'object',
    nullable: true,
    description:
      'The latest sample as the collector sent it (the host.metrics payload: cpu, memory, disks, network, gpus, missingGpus, uptimeSeconds, system, reporter)',
  },
  conflict: conflictSchema,
});

export const hostMetricsSchema = object({
  hostId: str,
  minutes: int,
  resolution: { type: 'string', enum: ['raw', 'rollup'] },
  stepSeconds: { type: 'integer', nullable: true, description: 'Length of a rollup point; null for raw samples' },
  series: {
    type: 'array',
    items: object({
      series: {
        type: 'string',
        example: 'cpu_pct',
        description:
          'cpu_pct, load1, mem_used_bytes, mem_total_bytes, swap_used_bytes, swap_total_bytes, disk_used_bytes, disk_total_bytes, disk_read_bps, disk_write_bps, net_rx_bps, net_tx_bps, gpu_util_pct, gpu_mem_used_bytes, gpu_mem_total_bytes, gpu_temp_c, gpu_power_w',
      },
      device: {
        type: 'string',
        nullable: true,
        description: 'Mount, interface or GPU index; null for host-wide series',
      },
      points: { type: 'array', items: object({ at: dateTime, avg: num, max: num, count: int }) },
    }),
  },
});

export const hostRetirementSchema = object({
  hostId: str,
  targetId: { type: 'string', example: 'host:gpu-1' },
  retiredAt: { ...dateTime, description: 'When it was retired: a sample stamped after this brings the host back' },
  messageId: { type: 'string', format: 'uuid', description: "The retirement's message id on the bus" },
});
