import { z } from 'zod';
import { boundedJsonObject, isoDateTimeSchema, labelsSchema, storableDateTimeSchema } from '../common/safe-json';
import { instanceKindSchema, lifecycleStateSchema, targetKindSchema, targetStatusSchema } from '../common/status';
import { TargetIds, UUID_PATTERN } from '../common/ids';
import { storableText } from '../common/store-safe';
import { alertEndReasonSchema } from '../alerts/end-reason';

const name = (max: number) => storableText(max, 1);
/** Ids that travel in URLs, Redis keys and metric labels: no whitespace or control characters. */
export const instanceIdSchema = z
  .string()
  .min(1)
  .max(256)
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9._:/@+=-]*$/,
    'use letters, digits and . _ : / @ + = - (no spaces), starting with a letter or digit',
  );
export const locationSchema = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'use letters, digits and . _ -');
/** The location label of the consensus series on `/metrics` (`fleetwatch_target_up{location="all"}`): no location's. */
export const RESERVED_LOCATION = 'all';
export const RESERVED_LOCATION_MESSAGE = `"${RESERVED_LOCATION}" is reserved (the consensus series of /metrics): use another name`;
/**
 * A location a client or a collector names (a pushed update's, FLEETWATCH_LOCATION): not the reserved one, whose
 * series on /metrics would be the consensus's. Messages already on the bus are read with locationSchema.
 */
export const reportedLocationSchema = locationSchema.refine((v) => v !== RESERVED_LOCATION, RESERVED_LOCATION_MESSAGE);

export const METADATA_LIMITS = { maxDepth: 8, maxKeys: 256, maxBytes: 16 * 1024 } as const;

/**
 * One pushed status update as a client sends it (SPEC §6, §11). The same
 * schema validates the HTTP body at status-ingest and — extended below — the
 * bus payload at the aggregator.
 */
export const statusUpdateInputSchema = z.strictObject({
  /** Client-chosen id that makes retries idempotent. */
  updateId: z
    .string()
    .min(1)
    .max(128)
    .regex(/^[A-Za-z0-9._:-]+$/, 'use letters, digits and . _ : -')
    .optional(),
  instanceId: instanceIdSchema,
  kind: instanceKindSchema,
  status: z
    .string()
    .min(1)
    .max(32)
    .transform((s) => s.toLowerCase())
    .pipe(lifecycleStateSchema),
  source: name(256).optional(),
  location: reportedLocationSchema.optional(),
  occurredAt: isoDateTimeSchema.optional(),
  labels: labelsSchema.optional(),
  message: storableText(4096).optional(),
  metadata: boundedJsonObject(METADATA_LIMITS).optional(),
});
export type StatusUpdateInput = z.input<typeof statusUpdateInputSchema>;
export type StatusUpdate = z.output<typeof statusUpdateInputSchema>;

export const MAX_BATCH_UPDATES = 1000;

/**
 * What one `status.update.batch` bus message carries at most, as our producers
 * send it: an HTTP batch of up to MAX_BATCH_UPDATES travels as several messages.
 * Consumers size their prefetch for messages this large, so their memory stays
 * bounded under any mix of traffic (consumers still accept the schema's 1000).
 */
export const BUS_BATCH_MAX_UPDATES = 100;
/** Approximate JSON bytes of one `status.update.batch` message at most (a single update larger than this travels alone). */
export const BUS_BATCH_MAX_BYTES = 160 * 1024;
export const statusUpdateBatchSchema = z.strictObject({
  updates: z
    .array(z.unknown())
    .min(1, 'a batch needs at least one update')
    .max(MAX_BATCH_UPDATES, `at most ${MAX_BATCH_UPDATES} updates per batch`),
});

/** Bus payload of `status.update`: the validated input plus what the edge adds. */
export const statusUpdatePayloadSchema = z.object({
  updateId: z
    .string()
    .min(1)
    .max(128)
    .regex(/^[A-Za-z0-9._:-]+$/, 'use letters, digits and . _ : -'),
  instanceId: instanceIdSchema,
  kind: instanceKindSchema,
  status: lifecycleStateSchema,
  source: storableText(256).optional(),
  location: locationSchema.optional(),
  occurredAt: isoDateTimeSchema,
  receivedAt: isoDateTimeSchema,
  labels: labelsSchema.optional(),
  message: storableText(4096).optional(),
  metadata: boundedJsonObject(METADATA_LIMITS).optional(),
  apiKeyId: storableText(128).optional(),
});
export type StatusUpdatePayload = z.infer<typeof statusUpdatePayloadSchema>;

/** One update inside a `status.update.batch`: the single update's payload plus the message id it would have had alone. */
export const statusUpdateBatchItemSchema = statusUpdatePayloadSchema.extend({
  id: z.string().regex(UUID_PATTERN, 'must be a UUID'),
});
export type StatusUpdateBatchItem = z.infer<typeof statusUpdateBatchItemSchema>;

/**
 * Many pushed updates in one bus message (`status.update.batch`): a batch POST
 * becomes one message, so the broker moves ~100× fewer frames. Each update keeps
 * its own `id` — the message id it would have had alone — and consumers stay
 * idempotent per update by it.
 */
export const statusUpdateBatchPayloadSchema = z.object({
  updates: z.array(statusUpdateBatchItemSchema).min(1).max(MAX_BATCH_UPDATES),
});

/**
 * What a consumer accepts as a `status.update.batch` payload: the envelope of the
 * batch only. Each update is then checked on its own with
 * `statusUpdateBatchItemSchema`, so one bad update is set aside alone instead of
 * dead-lettering the whole message with its good neighbours.
 */
export const statusUpdateBatchEnvelopePayloadSchema = z.object({
  updates: z.array(z.unknown()).min(1).max(MAX_BATCH_UPDATES),
});
export type StatusUpdateBatchPayload = z.infer<typeof statusUpdateBatchPayloadSchema>;

/** One execution of a check at one location (SPEC §1). */
/** Most figures one service-collector result carries. */
export const MAX_CHECK_METRICS = 500;
/** One figure of a service collector: `redis_connected_clients`, `{queue: "orders"}` → 12. */
export const checkMetricSchema = z.strictObject({
  name: z
    .string()
    .min(1)
    .max(128)
    .regex(/^[a-z_][a-z0-9_]*$/, 'lower-case letters, digits and _, not starting with a digit'),
  labels: z
    // JSON.parse makes `__proto__` an own key, which the record below would skip unchecked and drop.
    .custom<unknown>((v) => v === null || typeof v !== 'object' || !Object.hasOwn(v, '__proto__'), {
      message: 'a label name may not start with __ (reserved)',
    })
    .pipe(
      z.record(
        z
          .string()
          .min(1)
          .max(64)
          .regex(/^[a-z_][a-z0-9_]*$/, 'lower-case letters, digits and _')
          // Reserved by Prometheus (`__name__`); `__proto__` would also vanish from the parsed record.
          .refine((k) => !k.startsWith('__'), 'a label name may not start with __ (reserved)'),
        storableText(256),
      ),
    )
    .refine((l) => Object.keys(l).length <= 8, 'at most 8 labels')
    .optional(),
  value: z.number(),
});
export type CheckMetric = z.infer<typeof checkMetricSchema>;

/**
 * The longest latency a check result may carry: a day. No check runs that long (timeouts are at most 300 s, retries
 * at most 10); the bound keeps the rollups' float8 sums finite — avg() keeps a sum of squares, and one result of 1e200
 * ms overflowed it, failing every rollup run (their marks are taken oldest first) and the history reads.
 */
export const MAX_CHECK_LATENCY_MS = 86_400_000;

export const checkResultPayloadSchema = z
  .object({
    checkId: name(128),
    targetId: name(300),
    location: locationSchema,
    ok: z.boolean(),
    latencyMs: z.number().nonnegative().max(MAX_CHECK_LATENCY_MS).nullable(),
    failureReason: storableText(2048).optional(),
    attempt: z.number().int().min(1).default(1),
    /** Stored as timestamptz: a year Postgres refuses (zod takes 0000) is refused here, not at the commit. */
    startedAt: storableDateTimeSchema,
    /** The check's interval: the aggregator marks the location STALE when nothing arrives within ~2 intervals. */
    intervalSeconds: z
      .number()
      .int()
      .positive()
      .max(7 * 86_400)
      .optional(),
    metadata: boundedJsonObject(METADATA_LIMITS).optional(),
    /** The check's name and type when it ran (targets API shows them; the aggregator needs no config lookup). */
    checkName: storableText(256).optional(),
    checkType: storableText(32).optional(),
    tags: z.array(storableText(64)).max(64).optional(),
    /** The check's own consensus quorum (percentage of reporting locations DOWN → DOWN); absent: the site's. */
    downQuorumPct: z.number().int().min(1).max(100).optional(),
    /** Attempts made before this result (retries before DOWN); `attempt` is the one reported. */
    retries: z.number().int().min(0).max(10).optional(),
    /**
     * The check's timeout per attempt (s) when it ran: with `retries`, how long a run may take, so the aggregator knows
     * by when the same run's results from the other locations are due (every collector runs it at the same instants).
     * Absent (a collector from before): counted as the longest a check may have.
     */
    timeoutSeconds: z.number().min(0.001).max(300).optional(),
    /**
     * Figures a service collector read (Redis INFO, queue depths, replication lag …): bounded, finite, with
     * Prometheus-safe names and a few labels each, so history, `/metrics` and alert rules can use them as they are.
     */
    metrics: z.array(checkMetricSchema).max(MAX_CHECK_METRICS).optional(),
  })
  // A check's result is about its own target (SPEC §11: `check:<id>`): one naming another (`instance:web-1`, a host)
  // was folded into that target — a running instance turned into a PARTIAL "check" by one message.
  .refine((r) => r.targetId === TargetIds.check(r.checkId), {
    path: ['targetId'],
    message: "must be the check's own target, check:<checkId>",
  });
export type CheckResultPayload = z.infer<typeof checkResultPayloadSchema>;

const bytes = z.number().nonnegative();
/** A rate computed from two samples: null on the first sample (unknown, never a made-up zero). */
const rate = bytes.nullable();
const pct = z.number().min(0).max(100);
/**
 * One host sample from a collector (SPEC §5; issue 16). Fields added after the first version are optional so a
 * newer aggregator accepts an older collector's samples (schemaVersion stays 1 while only optional fields grow).
 */
export const hostMetricsPayloadSchema = z.object({
  hostId: name(256),
  location: locationSchema,
  /** Stored as timestamptz: a year Postgres refuses (zod takes 0000) is refused here, not at the commit. */
  sampledAt: storableDateTimeSchema,
  /** The sampling interval: the host target turns STALE when no sample arrives within ~2 intervals. */
  intervalSeconds: z.number().int().positive().max(86_400).optional(),
  /**
   * Who sent the sample: the collector installation (a random id kept in its spool directory, so a restart keeps it)
   * and the kernel's boot id (random at every boot, so VMs cloned from one image — spool directory and
   * /etc/machine-id included — still differ). Two reporters interleaving their samples for one host id are two
   * machines or two collectors claiming it: the aggregator marks the host as conflicting. A reboot changes the boot id:
   * one switch, never read as a conflict. Absent: a collector of before (no detection for its samples, nothing
   * refused). Optional, and the schema is not strict: an aggregator of before drops it.
   */
  reporter: z
    .object({
      installId: storableText(64, 1),
      /** /proc/sys/kernel/random/boot_id; absent where there is none (not Linux). */
      bootId: storableText(64, 1).optional(),
    })
    .optional(),
  cpu: z.object({
    usagePct: pct,
    cores: z.number().int().positive(),
    load1: z.number().nonnegative(),
    load5: z.number().nonnegative(),
    load15: z.number().nonnegative(),
    /** Busy percentage per logical core, in core order. */
    perCorePct: z.array(pct).max(4096).optional(),
  }),
  memory: z.object({
    totalBytes: bytes,
    usedBytes: bytes,
    /** What applications can still get (MemAvailable), when the OS says. */
    availableBytes: bytes.optional(),
    swapTotalBytes: bytes.optional(),
    swapUsedBytes: bytes.optional(),
  }),
  disks: z
    .array(
      z.object({
        mount: name(512),
        totalBytes: bytes,
        usedBytes: bytes,
        fsType: storableText(64).optional(),
        device: storableText(256).optional(),
        readBytesPerSec: rate.optional(),
        writeBytesPerSec: rate.optional(),
      }),
    )
    .max(256),
  network: z
    .array(
      z.object({
        iface: name(128),
        rxBytesPerSec: rate,
        txBytesPerSec: rate,
        rxErrorsPerSec: rate.optional(),
        txErrorsPerSec: rate.optional(),
      }),
    )
    .max(256),
  gpus: z
    .array(
      z.object({
        index: z.number().int().nonnegative(),
        name: name(256),
        uuid: storableText(128).optional(),
        utilizationPct: pct.nullable(),
        memoryUsedBytes: bytes.nullable(),
        memoryTotalBytes: bytes.nullable(),
        temperatureC: z.number().nullable(),
        powerW: z.number().nullable(),
        powerLimitW: z.number().nullable().optional(),
        fanPct: pct.nullable().optional(),
        smClockMhz: z.number().nonnegative().nullable().optional(),
        memClockMhz: z.number().nonnegative().nullable().optional(),
        processCount: z.number().int().nonnegative().nullable().optional(),
        /** Why this device's figures are missing (nvidia-smi reported an error state for it). */
        error: storableText(512).optional(),
      }),
    )
    .max(64),
  /**
   * GPUs the collector saw on this host (in its `-q -x` inventory at start or in an earlier sample) and does not see
   * now: one fallen off the bus (Xid 79, "GPU is lost"), every GPU when nvidia-smi gives no readings in two runs in a
   * row. `[]`: none missing. Absent: the collector has never seen a GPU here, or predates the field (older collectors).
   * Remembered by UUID for the collector's lifetime: a restart forgets a GPU already missing then, unless its inventory
   * lists it.
   */
  missingGpus: z
    .array(
      z.object({
        /** nvidia-smi's index when last seen (its place in the inventory when never sampled). */
        index: z.number().int().nonnegative(),
        uuid: storableText(128, 1),
        name: storableText(256).optional(),
        /** PCI bus id from the inventory (`00000000:3B:00.0`), when known. */
        busId: storableText(64).optional(),
        /** When the collector first found it missing (this time). */
        since: storableDateTimeSchema,
        /** The nvidia-smi line naming its bus id ("Unable to determine the device handle … GPU is lost …"), if any. */
        problem: storableText(300).optional(),
      }),
    )
    .max(64)
    .optional(),
  uptimeSeconds: z.number().nonnegative().optional(),
  /** What the host runs (sent with every sample; small). */
  system: z
    .object({
      hostname: storableText(256).optional(),
      platform: storableText(64).optional(),
      distro: storableText(128).optional(),
      release: storableText(128).optional(),
      kernel: storableText(128).optional(),
      arch: storableText(32).optional(),
      collectorVersion: storableText(64).optional(),
      nodeVersion: storableText(64).optional(),
      gpuDriverVersion: storableText(64).optional(),
    })
    .optional(),
});
export type HostMetricsPayload = z.infer<typeof hostMetricsPayloadSchema>;

/**
 * `host.retire`: a person took a host out of service (`DELETE /api/v1/hosts/{id}`: decommissioned, renamed). From
 * the gateway to the aggregator, which owns live state: an observation of the host's target, sharded like its samples
 * so that it is folded in order with them (`event.host.retire.shard-NN`). The host leaves live state, the host list
 * and /metrics, its alerts resolve, its history stays; a sample stamped after `at` brings it back.
 */
export const hostRetirePayloadSchema = z.object({
  hostId: hostMetricsPayloadSchema.shape.hostId,
  /** When it was retired (the gateway's clock). */
  at: storableDateTimeSchema,
  /** Who retired it (said in the status events' reason). */
  actor: z.object({ id: name(256), name: name(256) }),
});
export type HostRetirePayload = z.infer<typeof hostRetirePayloadSchema>;

/** The highest exit code a ping URL takes (`/ping/{token}/{0–255}`, as a shell's `$?`). */
export const MAX_PING_EXIT_CODE = 255;

/**
 * A heartbeat-monitor ping (`/ping/{token}`, `/start`, `/fail`, `/{exit code}`). Not strict: a reader of the version
 * before a field was added (a rolling upgrade) drops it and reads the rest — keep new fields optional.
 */
export const pingReceivedPayloadSchema = z.object({
  monitorId: name(128),
  targetId: name(300),
  signal: z.enum(['success', 'start', 'fail']),
  /** The exit code of `/ping/{token}/{code}` (0: `success`, 1–255: `fail`); absent for the other ping URLs. */
  exitCode: z.number().int().min(0).max(MAX_PING_EXIT_CODE).optional(),
  receivedAt: isoDateTimeSchema,
  runId: storableText(128).optional(),
  body: storableText(10_000).optional(),
  /** The monitor's schedule as the edge found it, so the aggregator sets the deadline without a lookup. */
  periodSeconds: z.number().int().positive(),
  graceSeconds: z.number().int().nonnegative(),
  /**
   * The config version of the check that schedule was read at (`checks.version`, read with it in one statement).
   * The aggregator counts the ping with its own schedule when this is newer than the window it holds (the
   * `check.lifecycle` of that version not folded yet), else with the window held. Absent: a sender of before, or a
   * monitor with no check row — the window held counts. Optional, and the schema is not strict: an aggregator of
   * before drops it.
   */
  configVersion: z.number().int().positive().optional(),
  /** A `start` without a finishing ping within this long turns the monitor DOWN. */
  maxRuntimeSeconds: z.number().int().positive().nullable(),
  name: storableText(256).optional(),
});
export type PingReceivedPayload = z.infer<typeof pingReceivedPayloadSchema>;

/** Liveness of a collector or of a member site. */
export const heartbeatPayloadSchema = z.object({
  kind: z.enum(['collector', 'site']),
  id: name(256),
  location: locationSchema.optional(),
  version: storableText(64),
  startedAt: isoDateTimeSchema,
  sentAt: isoDateTimeSchema,
  intervalSeconds: z.number().int().positive(),
});
export type HeartbeatPayload = z.infer<typeof heartbeatPayloadSchema>;

/** A status transition of a target, per location or (location null) for the consensus. */
export const statusChangedPayloadSchema = z.object({
  targetId: name(300),
  kind: targetKindSchema,
  location: locationSchema.nullable(),
  from: targetStatusSchema,
  to: targetStatusSchema,
  reason: storableText(1024),
  at: isoDateTimeSchema,
  /** Monotonic per target: consumers order and de-duplicate by it. */
  sequence: z.number().int().nonnegative(),
});
export type StatusChangedPayload = z.infer<typeof statusChangedPayloadSchema>;

/** Most events one `status.changed.batch` message carries: the relay publishes a commit's events in messages of at most this many. */
export const STATUS_CHANGED_BATCH_MAX = 500;
/** One event of a `status.changed.batch`: a status.changed payload and its event id (consumers de-duplicate by it). */
export const statusChangedBatchEventSchema = statusChangedPayloadSchema.extend({ eventId: z.guid() });
export type StatusChangedBatchEvent = z.infer<typeof statusChangedBatchEventSchema>;
/**
 * Several status events in one message, in commit order (the aggregator's relay: one message per commit instead of
 * one per event — each change stores two events, and each message costs the broker per queue it reaches).
 */
export const statusChangedBatchPayloadSchema = z.object({
  events: z.array(statusChangedBatchEventSchema).min(1).max(STATUS_CHANGED_BATCH_MAX),
});
export type StatusChangedBatchPayload = z.infer<typeof statusChangedBatchPayloadSchema>;

export const alertStateSchema = z.enum(['inactive', 'pending', 'firing', 'resolved']);
export const alertStateChangedPayloadSchema = z.object({
  ruleId: name(128),
  fingerprint: name(128),
  from: alertStateSchema,
  to: alertStateSchema,
  labels: labelsSchema,
  annotations: z.record(z.string(), storableText(4096)),
  value: z.number().nullable(),
  at: isoDateTimeSchema,
  /**
   * Why the alert ended (to resolved, or pending to inactive); absent otherwise, and in messages of aggregators
   * before it existed. A reason this version does not know (a newer aggregator's) reads as absent: never a dead letter.
   */
  endReason: alertEndReasonSchema.optional().catch(undefined),
});
export type AlertStateChangedPayload = z.infer<typeof alertStateChangedPayloadSchema>;

export const configAreaSchema = z.enum([
  'checks',
  'rules',
  'channels',
  'maintenance',
  'silences',
  'statusPages',
  'properties',
  'versions',
  'subscriptions',
]);
export const configChangedPayloadSchema = z.object({
  version: z.number().int().positive(),
  hash: z.string().regex(/^[0-9a-f]{64}$/, 'sha256 hex'),
  areas: z.array(configAreaSchema),
  actor: storableText(256),
  origin: z.enum(['local', 'leader']),
});
export type ConfigChangedPayload = z.infer<typeof configChangedPayloadSchema>;

/** Where a check stands in the configuration (SPEC §1 PAUSED; §2: the configuration owner says, the aggregator follows). */
export const checkLifecycleStateSchema = z.enum(['active', 'paused', 'deleted']);
export type CheckLifecycleState = z.infer<typeof checkLifecycleStateSchema>;

/**
 * `check.lifecycle`: a configuration write touched this check (created, changed, paused,
 * resumed or deleted it). Published by sync-orchestrator from its outbox with the config
 * version of the write, at least once and in version order; the aggregator keeps the
 * highest version it applied per target, so a redelivered or older one changes nothing.
 */
export const checkLifecyclePayloadSchema = z.object({
  checkId: z.string().regex(UUID_PATTERN, 'must be a UUID'),
  targetId: name(300),
  state: checkLifecycleStateSchema,
  /** The config version of the write (orders a check's lifecycle messages). */
  version: z.number().int().positive(),
  /** When the write was committed. */
  at: isoDateTimeSchema,
  /** The check as configured (absent when deleted): the targets API shows a check before its first result. */
  name: storableText(256).optional(),
  checkType: storableText(32).optional(),
  tags: z.array(storableText(64)).max(64).optional(),
  /**
   * The longest expected gap between two results (a probed check's interval, a push check's
   * period + grace): after a resume, nothing heard within two of these reads STALE.
   */
  intervalSeconds: z
    .number()
    .int()
    .positive()
    .max(62 * 86_400)
    .optional(),
  /**
   * The locations that run it, as configured by this version; empty: every location. A location left out is dropped
   * from the check's live state (to UNKNOWN, in events) and its results no longer move the status: without that, a
   * location taken off a check stayed in its consensus and read STALE for ever, and 'Target stale' notified. Absent
   * (a sender from before): the aggregator keeps what it held.
   */
  locations: z.array(locationSchema).max(64).optional(),
  /**
   * The check's own consensus quorum (percentage of reporting locations DOWN → DOWN) as configured by this version;
   * null: none, the site's. Once told, the aggregator judges the check with it alone and at once (results carry the
   * quorum of whatever assignment their collector last read: after an edit, collectors on the old and the new one set
   * it in turn and the consensus flapped DOWN ↔ PARTIAL). Absent (a sender from before): the aggregator keeps what it
   * held.
   */
  downQuorumPct: z.number().int().min(1).max(100).nullable().optional(),
});
export type CheckLifecyclePayload = z.infer<typeof checkLifecyclePayloadSchema>;

export const observationTargetKind = targetKindSchema;
