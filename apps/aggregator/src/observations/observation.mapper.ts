import { v5 } from 'uuid';
import {
  BusHeader,
  describeIssues,
  locationSchema,
  Messages,
  statusUpdateBatchItemSchema,
  truncateText,
  TargetIds,
  TargetKind,
  TargetStatus,
  type CheckLifecyclePayload,
  type CheckResultPayload,
  type Envelope,
  type HostMetricsPayload,
  type HostRetirePayload,
  type PingReceivedPayload,
  type StatusUpdatePayload,
} from '@fleetwatch/contracts';
import {
  CHECK_STALE_SLACK_MS,
  checkStaleReason,
  HEARTBEAT_LOCATION,
  peerResultGraceMs,
  statusOfLifecycle,
  tagsOfLabels,
  type CheckLifecycle,
  type Deadline,
  type HeartbeatPing,
  type Observation,
} from '@fleetwatch/domain';
import type {
  CheckResultRow,
  HeartbeatPingRow,
  HostMetricRow,
  HostRetirementRow,
  StatusUpdateRow,
} from '@fleetwatch/persistence';
import { mapHostSample, type MappedHostSample } from '../hosts/host-observation';

/**
 * What a resumed check must do by when. A check: the same as a result's expectation, two intervals and the slack
 * (else STALE). A heartbeat monitor (`push`: its interval is its period + grace): a ping within period + grace, else
 * DOWN, as after any ping (SPEC §6: a missed deadline is DOWN) — STALE said nothing had been heard, never that the
 * job had stopped, and went to no DOWN alert.
 */
function resumeDeadlineOf(p: CheckLifecyclePayload, at: number): Deadline | null {
  if (!p.intervalSeconds) return null;
  if (p.checkType === 'push')
    return {
      at: at + p.intervalSeconds * 1000,
      expireTo: TargetStatus.Down,
      reason: `no ping within period + grace (${p.intervalSeconds}s) of the resume`,
    };
  return {
    at: at + 2 * p.intervalSeconds * 1000 + CHECK_STALE_SLACK_MS,
    expireTo: TargetStatus.Stale,
    reason: `${checkStaleReason(p.intervalSeconds)} of the resume`,
  };
}

/** Where a push without its own location is placed when its source names none. */
export const DEFAULT_PUSH_LOCATION = 'push';
export { CHECK_STALE_SLACK_MS };

export interface MapperOptions {
  staleAfterSeconds: number;
  /** The aggregator's clock when the messages arrived (epoch ms; default: now). */
  now?: number;
}

/**
 * How far ahead of the aggregator's clock a collector's timestamp (a result's start, a host sample) may be.
 * Pushed updates are refused at the edge when their time is implausible; a collector's message has no edge,
 * and one stamped years ahead would freeze its target: every later result counts as older, its STALE deadline
 * lies in that future, its live sample is written only forward in time. Beyond this skew the time is the
 * arrival time plus the skew — ahead still (order among its neighbours kept), never far.
 */
export const COLLECTOR_MAX_FUTURE_SKEW_MS = 60_000;

/** A collector's timestamp, clamped to the aggregator's clock plus the allowed skew. */
export function collectorTime(iso: string, options: MapperOptions): number {
  return Math.min(Date.parse(iso), (options.now ?? Date.now()) + COLLECTOR_MAX_FUTURE_SKEW_MS);
}

/**
 * Where a message's STALE deadline counts from: its time, or its arrival when that is later. The deadline
 * says when nothing will have been heard for too long, and this message was heard now. Counted from its own time
 * alone, a result stamped more than two intervals (+ slack) before it arrived — a collector's clock that far behind
 * (25 s at a 10 s interval), a backlog after an aggregator outage — came with its deadline already passed: the next
 * sweep turned its target STALE, the next result UP again, each with its events and alerts, every interval.
 */
export function heardAt(at: number, options: MapperOptions): number {
  return Math.max(at, options.now ?? Date.now());
}

interface Common {
  /** Envelope id, lower-case (the history tables' idempotency key). */
  messageId: string;
  targetId: string;
  /** The observation as a message of its own: what is dead-lettered if it alone cannot be stored. */
  origin: Origin;
}

/** A replayable single message (for a batch item: the `status.update` it would have been alone) and where it came from. */
export interface Origin {
  envelope: Envelope;
  headers: Record<string, string>;
}

export type MappedMessage =
  | (Common & { type: 'status'; row: StatusUpdateRow; observation: Observation })
  | (Common & { type: 'check'; row: CheckResultRow; observation: Observation })
  | (Common & {
      type: 'host';
      row: HostMetricRow;
      observation: Observation;
      metrics: { hostId: string; json: string };
      reporter: MappedHostSample['reporter'];
    })
  | (Common & { type: 'ping'; row: HeartbeatPingRow; location: string; name: string; ping: HeartbeatPing })
  /** A host taken out of service (host.retire): its row records it and makes it idempotent; the fold retires the target. */
  | (Common & { type: 'retire'; row: HostRetirementRow; at: number; reason: string })
  /** No history row: idempotent by its config version against the target's. */
  | (Common & { type: 'lifecycle'; lifecycle: CheckLifecycle })
  | { type: 'ignored'; messageId: string; reason: string }
  /** An update of a batch that fails its schema: set aside alone, its neighbours are stored. */
  | { type: 'rejected'; messageId: string; reason: string; origin: Origin };

/** The envelope's source location when it is usable as a location name (it is looser in the envelope schema). */
function sourceLocation(envelope: Envelope): string | undefined {
  const loc = envelope.source.location;
  return loc !== undefined && locationSchema.safeParse(loc).success ? loc : undefined;
}

const t = (iso: string) => Date.parse(iso);

/** One pushed update (alone, or one of a `status.update.batch`) with its own message id. */
function mapStatusUpdate(
  p: StatusUpdatePayload,
  messageId: string,
  envelope: Envelope,
  origin: Origin,
  options: MapperOptions,
): MappedMessage {
  const staleMs = options.staleAfterSeconds * 1000;
  const targetId = TargetIds.instance(p.instanceId);
  const location = p.location ?? sourceLocation(envelope) ?? DEFAULT_PUSH_LOCATION;
  const status = statusOfLifecycle(p.status);
  const occurredAt = t(p.occurredAt);
  const receivedAt = t(p.receivedAt);
  return {
    type: 'status',
    messageId,
    targetId,
    origin,
    row: {
      messageId,
      updateId: p.updateId,
      targetId,
      instanceId: p.instanceId,
      kind: p.kind,
      lifecycleStatus: p.status,
      status,
      source: p.source ?? null,
      location,
      occurredAt,
      receivedAt,
      labels: p.labels ?? null,
      message: p.message ?? null,
      metadata: p.metadata ?? null,
    },
    observation: {
      targetId,
      kind: TargetKind.Instance,
      name: p.instanceId,
      location,
      at: occurredAt,
      status,
      reason: p.message ? truncateText(`${p.status}: ${p.message}`, 1024) : p.status,
      latencyMs: null,
      detail: p.message ?? null,
      lifecycle: p.status,
      // What the instance is: kept with its live state (the latest update's), listed by `?kind=container`.
      instanceKind: p.kind,
      tags: tagsOfLabels(p.labels),
      labels: p.labels,
      deadline: {
        // From when it was last heard: by the edge, or here (a backlog drained after an outage is not STALE at once).
        at: heardAt(Math.max(receivedAt, occurredAt), options) + staleMs,
        expireTo: TargetStatus.Stale,
        reason: `no update for ${options.staleAfterSeconds}s`,
      },
    },
  };
}

function originHeaders(p: { updateId?: unknown; apiKeyId?: unknown }): Record<string, string> {
  const headers: Record<string, string> = {};
  if (typeof p.updateId === 'string') headers[BusHeader.UpdateId] = p.updateId;
  if (typeof p.apiKeyId === 'string') headers[BusHeader.ApiKeyId] = p.apiKeyId;
  return headers;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Namespace of the ids given to batch items that carry no usable one (name-based UUIDv5). */
const BATCH_ITEM_NAMESPACE = 'f3c4a7d2-5e61-4b8a-9c0d-2a7e4f1b6c93';

/** The id a batch item without a usable one gets: stable across redeliveries, so a replay stays idempotent. */
function derivedId(envelope: Envelope, index: number): string {
  return v5(`${envelope.id}:${index}`, BATCH_ITEM_NAMESPACE);
}

/**
 * A batch item as the `status.update` it would have been alone, built when first read:
 * only an item set aside needs it, and building it for every item of every batch cost
 * two object copies an update.
 */
function lazyOrigin(raw: unknown, rawObject: Record<string, unknown>, id: string, envelope: Envelope): Origin {
  let built: Origin | undefined;
  const build = (): Origin => {
    if (built) return built;
    const { id: _id, ...single } = rawObject;
    built = {
      envelope: {
        ...envelope,
        id,
        type: Messages.StatusUpdate.type,
        schemaVersion: Messages.StatusUpdate.schemaVersion,
        payload: raw === rawObject ? single : raw,
      },
      headers: originHeaders(rawObject),
    };
    return built;
  };
  return {
    get envelope() {
      return build().envelope;
    },
    get headers() {
      return build().headers;
    },
  };
}

function mapBatchItem(raw: unknown, index: number, envelope: Envelope, options: MapperOptions): MappedMessage {
  const rawObject =
    raw !== null && typeof raw === 'object' && !Array.isArray(raw) ? (raw as Record<string, unknown>) : {};
  const id = typeof rawObject.id === 'string' && UUID.test(rawObject.id) ? rawObject.id : derivedId(envelope, index);
  // Alone, the update is the `status.update` it would have been without the batch.
  const origin = lazyOrigin(raw, rawObject, id, envelope);
  const parsed = statusUpdateBatchItemSchema.safeParse(raw);
  if (!parsed.success)
    return {
      type: 'rejected',
      messageId: id.toLowerCase(),
      reason: `invalid update at updates.${index}: ${describeIssues(parsed.error)}`,
      origin,
    };
  return mapStatusUpdate(parsed.data, parsed.data.id.toLowerCase(), envelope, origin, options);
}

/**
 * Turns one validated bus message into what the aggregator stores (the history
 * row; its insert also marks the rollup bucket) and folds (the observation) — one
 * per update for a `status.update.batch`. Pure: no I/O.
 */
export function mapEnvelope(envelope: Envelope, options: MapperOptions): MappedMessage[] {
  const messageId = envelope.id.toLowerCase();
  switch (envelope.type) {
    case Messages.StatusUpdate.type: {
      const p = envelope.payload as StatusUpdatePayload;
      return [mapStatusUpdate(p, messageId, envelope, { envelope, headers: originHeaders(p) }, options)];
    }
    case Messages.StatusUpdateBatch.type:
      // Each update is checked alone and keeps the id it would have had as its own message:
      // idempotency stays per update, and a bad one is set aside without its neighbours.
      return (envelope.payload as { updates: unknown[] }).updates.map((raw, index) =>
        mapBatchItem(raw, index, envelope, options),
      );
    case Messages.CheckResult.type: {
      const p = envelope.payload as CheckResultPayload;
      const at = collectorTime(p.startedAt, options);
      return [
        {
          type: 'check',
          messageId,
          targetId: p.targetId,
          origin: { envelope, headers: {} },
          row: {
            messageId,
            checkId: p.checkId,
            targetId: p.targetId,
            location: p.location,
            ok: p.ok,
            latencyMs: p.latencyMs,
            failureReason: p.failureReason ?? null,
            metadata: p.metadata ?? null,
            metrics: p.metrics ?? null,
            occurredAt: at,
          },
          observation: {
            targetId: p.targetId,
            kind: TargetKind.Check,
            name: p.checkName ?? p.checkId,
            // The collector sends the check's tags, type and quorum with every result (no config lookup here);
            // results from a collector older than that keep what the target has. Once a check.lifecycle has been
            // applied the target takes them from there only (applyObservation).
            tags: p.tags,
            labels: p.checkType ? { type: p.checkType } : undefined,
            downQuorumPct: p.checkName !== undefined ? (p.downQuorumPct ?? null) : undefined,
            location: p.location,
            at,
            status: p.ok ? TargetStatus.Up : TargetStatus.Down,
            reason: p.ok ? 'check ok' : truncateText(p.failureReason ?? 'check failed', 1024),
            latencyMs: p.latencyMs,
            detail: p.ok ? null : (p.failureReason ?? null),
            // Without an interval there is no expectation to miss.
            deadline: p.intervalSeconds
              ? {
                  at: heardAt(at, options) + 2 * p.intervalSeconds * 1000 + CHECK_STALE_SLACK_MS,
                  expireTo: TargetStatus.Stale,
                  reason: checkStaleReason(p.intervalSeconds),
                }
              : undefined,
            // Every collector runs the check at the same instants: the other locations' results of this run are due
            // within its attempts' time, a healthy location's lateness and missed slot, and the slack
            // (peerResultGraceMs), and a location still awaited after the creation or resume is awaited no longer
            // (applyObservation: boundAwaited).
            peersDueBy: p.intervalSeconds
              ? heardAt(at, options) +
                peerResultGraceMs({
                  intervalSeconds: p.intervalSeconds,
                  timeoutSeconds: p.timeoutSeconds,
                  retries: p.retries,
                })
              : undefined,
          },
        },
      ];
    }
    case Messages.HostMetrics.type: {
      const p = envelope.payload as HostMetricsPayload;
      const at = collectorTime(p.sampledAt, options);
      const host = mapHostSample(p, messageId, options.staleAfterSeconds, at, heardAt(at, options));
      return [{ type: 'host', messageId, origin: { envelope, headers: {} }, ...host }];
    }
    case Messages.HostRetire.type: {
      const p = envelope.payload as HostRetirePayload;
      // Dated by the gateway when the person asked (its clock, not a collector's): the fold dates the retirement
      // after the host's newest sample anyway, so a clock behind retires it all the same. A clock ahead is held to
      // this one plus the collectors' skew, as a collector's is: a gateway a day ahead (a VM resumed, NTP not yet
      // synced) dated the retirement tomorrow, and the host — retired by mistake, or its collector kept — could
      // not come back until then (every sample stamped before it is stored and changes nothing).
      const at = collectorTime(p.at, options);
      return [
        {
          type: 'retire',
          messageId,
          targetId: TargetIds.host(p.hostId),
          origin: { envelope, headers: {} },
          row: { messageId, hostId: p.hostId, retiredAt: at, actorId: p.actor.id, actorName: p.actor.name },
          at,
          reason: truncateText(`retired by ${p.actor.name} (${p.actor.id})`, 1024),
        },
      ];
    }
    case Messages.PingReceived.type: {
      const p = envelope.payload as PingReceivedPayload;
      // Not the receiving ingest's location: a monitor has one, whichever replica its pings reach (HEARTBEAT_LOCATION).
      const location = HEARTBEAT_LOCATION;
      // The receiving ingest replica's clock: held to this one plus the skew a collector's is (a replica a day ahead
      // froze its monitors: every later ping counted as older, a fail ping was not applied, its deadline lay a day
      // on), and the deadline counts from when it was heard here when that is later (a replica behind: DOWN at once).
      const at = collectorTime(p.receivedAt, options);
      return [
        {
          type: 'ping',
          messageId,
          targetId: p.targetId,
          origin: { envelope, headers: {} },
          location,
          name: p.name ?? p.monitorId,
          row: {
            messageId,
            monitorId: p.monitorId,
            targetId: p.targetId,
            location,
            signal: p.signal,
            // Absent when sent by /ping/{token}, /start, /fail — or by a status-ingest of the version before.
            exitCode: p.exitCode ?? null,
            runId: p.runId ?? null,
            receivedAt: at,
            body: p.body ?? null,
          },
          ping: {
            signal: p.signal,
            at,
            runId: p.runId ?? null,
            periodSeconds: p.periodSeconds,
            graceSeconds: p.graceSeconds,
            ...(p.configVersion !== undefined ? { configVersion: p.configVersion } : {}),
            maxRuntimeSeconds: p.maxRuntimeSeconds,
            heardAt: heardAt(at, options),
            output: p.body ?? null,
            exitCode: p.exitCode ?? null,
          },
        },
      ];
    }
    case Messages.CheckLifecycle.type: {
      const p = envelope.payload as CheckLifecyclePayload;
      const at = t(p.at);
      return [
        {
          type: 'lifecycle',
          messageId,
          targetId: p.targetId,
          origin: { envelope, headers: {} },
          lifecycle: {
            targetId: p.targetId,
            state: p.state,
            version: p.version,
            at,
            name: p.name,
            checkType: p.checkType,
            tags: p.tags,
            resumeDeadline: resumeDeadlineOf(p, at),
            ...(p.locations ? { locations: p.locations } : {}),
            ...(p.downQuorumPct !== undefined ? { downQuorumPct: p.downQuorumPct } : {}),
            ...(p.intervalSeconds
              ? p.checkType === 'push'
                ? { pingWindowMs: p.intervalSeconds * 1000 }
                : { checkIntervalSeconds: p.intervalSeconds }
              : {}),
          },
        },
      ];
    }
    default:
      // Collector and site heartbeats: liveness of the senders, not of targets (nothing to fold yet).
      return [{ type: 'ignored', messageId, reason: envelope.type }];
  }
}
