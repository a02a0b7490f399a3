import { z } from 'zod';
import { ExchangeName, RoutingKey } from './names';
import { TargetIds } from '../common/ids';
import { Envelope, envelopeSchema } from './envelope.schema';
import {
  alertStateChangedPayloadSchema,
  checkLifecyclePayloadSchema,
  checkResultPayloadSchema,
  configChangedPayloadSchema,
  heartbeatPayloadSchema,
  hostMetricsPayloadSchema,
  hostRetirePayloadSchema,
  pingReceivedPayloadSchema,
  statusChangedBatchPayloadSchema,
  statusChangedPayloadSchema,
  statusUpdateBatchEnvelopePayloadSchema,
  statusUpdateBatchPayloadSchema,
  statusUpdatePayloadSchema,
} from '../events/observations.schema';
import { apiKeyUsedPayloadSchema } from '../events/api-key-used.schema';
import {
  configApplyPayloadSchema,
  ingressControlPayloadSchema,
  rpcRequestPayloadSchema,
  syncStepPayloadSchema,
} from '../commands/commands.schema';

export interface MessageDefinition<S extends z.ZodType = z.ZodType> {
  /** Envelope `type`. Wire name: never rename. */
  type: string;
  /** Bump when the payload changes incompatibly; consumers accept versions they know. */
  schemaVersion: number;
  exchange: ExchangeName;
  routingKey: RoutingKey;
  /** What publishers must send. */
  payload: S;
  /**
   * Consumers validate with this looser schema instead when set, and check the
   * message's parts one by one with their part schema, so one bad part (an update
   * of a batch) is set aside alone rather than taking the whole message with it.
   */
  consumerPayload?: z.ZodType;
  /**
   * Observations only: the target id(s) the message is about, whose shard routes it
   * (`shardedRoutingKey`). Every key of one message must fall in one shard; publishers
   * split a batch per shard first.
   */
  shardKeys?: (payload: z.infer<S>) => readonly string[];
}

function define<S extends z.ZodType>(d: MessageDefinition<S>): MessageDefinition<S> {
  return d;
}

/** Every message on the bus (SPEC §3). DO NOT RENAME `type` values. */
export const Messages = {
  CheckResult: define({
    type: 'check.result',
    schemaVersion: 1,
    exchange: ExchangeName.Events,
    routingKey: RoutingKey.CheckResult,
    payload: checkResultPayloadSchema,
    shardKeys: (p) => [p.targetId],
  }),
  CheckLifecycle: define({
    type: 'check.lifecycle',
    schemaVersion: 1,
    exchange: ExchangeName.Events,
    routingKey: RoutingKey.CheckLifecycle,
    payload: checkLifecyclePayloadSchema,
    shardKeys: (p) => [p.targetId],
  }),
  HostMetrics: define({
    type: 'host.metrics',
    schemaVersion: 1,
    exchange: ExchangeName.Events,
    routingKey: RoutingKey.HostMetrics,
    payload: hostMetricsPayloadSchema,
    shardKeys: (p) => [TargetIds.host(p.hostId)],
  }),
  HostRetire: define({
    type: 'host.retire',
    schemaVersion: 1,
    exchange: ExchangeName.Events,
    routingKey: RoutingKey.HostRetire,
    payload: hostRetirePayloadSchema,
    shardKeys: (p) => [TargetIds.host(p.hostId)],
  }),
  StatusUpdate: define({
    type: 'status.update',
    schemaVersion: 1,
    exchange: ExchangeName.Events,
    routingKey: RoutingKey.StatusUpdate,
    payload: statusUpdatePayloadSchema,
    shardKeys: (p) => [TargetIds.instance(p.instanceId)],
  }),
  StatusUpdateBatch: define({
    type: 'status.update.batch',
    schemaVersion: 1,
    exchange: ExchangeName.Events,
    routingKey: RoutingKey.StatusUpdateBatch,
    payload: statusUpdateBatchPayloadSchema,
    consumerPayload: statusUpdateBatchEnvelopePayloadSchema,
    shardKeys: (p) => p.updates.map((u) => TargetIds.instance(u.instanceId)),
  }),
  PingReceived: define({
    type: 'ping.received',
    schemaVersion: 1,
    exchange: ExchangeName.Events,
    routingKey: RoutingKey.PingReceived,
    payload: pingReceivedPayloadSchema,
    shardKeys: (p) => [p.targetId],
  }),
  CollectorHeartbeat: define({
    type: 'heartbeat.collector',
    schemaVersion: 1,
    exchange: ExchangeName.Events,
    routingKey: RoutingKey.CollectorHeartbeat,
    payload: heartbeatPayloadSchema,
    shardKeys: (p) => [`${p.kind}:${p.id}`],
  }),
  SiteHeartbeat: define({
    type: 'heartbeat.site',
    schemaVersion: 1,
    exchange: ExchangeName.Events,
    routingKey: RoutingKey.SiteHeartbeat,
    payload: heartbeatPayloadSchema,
    shardKeys: (p) => [`${p.kind}:${p.id}`],
  }),
  StatusChanged: define({
    type: 'status.changed',
    schemaVersion: 1,
    exchange: ExchangeName.Events,
    routingKey: RoutingKey.StatusChanged,
    payload: statusChangedPayloadSchema,
  }),
  StatusChangedBatch: define({
    type: 'status.changed.batch',
    schemaVersion: 1,
    exchange: ExchangeName.Events,
    routingKey: RoutingKey.StatusChangedBatch,
    payload: statusChangedBatchPayloadSchema,
  }),
  AlertStateChanged: define({
    type: 'alert.state-changed',
    schemaVersion: 1,
    exchange: ExchangeName.Events,
    routingKey: RoutingKey.AlertStateChanged,
    payload: alertStateChangedPayloadSchema,
  }),
  ConfigChanged: define({
    type: 'config.changed',
    schemaVersion: 1,
    exchange: ExchangeName.Events,
    routingKey: RoutingKey.ConfigChanged,
    payload: configChangedPayloadSchema,
  }),
  ApiKeyUsed: define({
    type: 'apikey.used',
    schemaVersion: 1,
    exchange: ExchangeName.Events,
    routingKey: RoutingKey.ApiKeyUsed,
    payload: apiKeyUsedPayloadSchema,
  }),
  ConfigApply: define({
    type: 'config.apply',
    schemaVersion: 1,
    exchange: ExchangeName.Commands,
    routingKey: RoutingKey.ConfigApply,
    payload: configApplyPayloadSchema,
  }),
  IngressPause: define({
    type: 'ingress.pause',
    schemaVersion: 1,
    exchange: ExchangeName.Commands,
    routingKey: RoutingKey.IngressPause,
    payload: ingressControlPayloadSchema,
  }),
  IngressResume: define({
    type: 'ingress.resume',
    schemaVersion: 1,
    exchange: ExchangeName.Commands,
    routingKey: RoutingKey.IngressResume,
    payload: ingressControlPayloadSchema,
  }),
  SyncStep: define({
    type: 'sync.step',
    schemaVersion: 1,
    exchange: ExchangeName.Commands,
    routingKey: RoutingKey.SyncStep,
    payload: syncStepPayloadSchema,
  }),
  RpcRequest: define({
    type: 'rpc.request',
    schemaVersion: 1,
    exchange: ExchangeName.Commands,
    routingKey: RoutingKey.RpcRequest,
    payload: rpcRequestPayloadSchema,
  }),
} as const;

export type MessageKey = keyof typeof Messages;
export type PayloadOf<D extends MessageDefinition> = z.output<D['payload']>;
export type PayloadInputOf<D extends MessageDefinition> = z.input<D['payload']>;

const byType = new Map<string, MessageDefinition>(Object.values(Messages).map((d) => [d.type, d]));

export function messageDefinitionOf(type: string): MessageDefinition | undefined {
  return byType.get(type);
}

export type ParseResult<T> = { ok: true; value: T } | { ok: false; reason: string };

/** Renders zod issues as `path: message; …` — used for dead-letter reasons and 4xx bodies. */
export function describeIssues(error: z.ZodError): string {
  return error.issues.map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`).join('; ');
}

/**
 * Validates raw bytes as an envelope of a known type and version and its payload.
 * Both sides use this: publishers before sending, consumers before handling.
 */
export function parseMessage(raw: Buffer | Uint8Array | string): ParseResult<Envelope> {
  let json: unknown;
  try {
    json = JSON.parse(typeof raw === 'string' ? raw : new TextDecoder('utf-8', { fatal: true }).decode(raw));
  } catch (e) {
    return { ok: false, reason: `body is not valid UTF-8 JSON: ${(e as Error).message}` };
  }
  const env = envelopeSchema.safeParse(json);
  if (!env.success) return { ok: false, reason: `invalid envelope: ${describeIssues(env.error)}` };
  return validateEnvelope(env.data as Envelope);
}

export function validateEnvelope(envelope: Envelope): ParseResult<Envelope> {
  const def = byType.get(envelope.type);
  if (!def) return { ok: false, reason: `unknown message type "${envelope.type}"` };
  if (envelope.schemaVersion !== def.schemaVersion) {
    return {
      ok: false,
      reason: `unsupported schemaVersion ${envelope.schemaVersion} for "${envelope.type}" (supported: ${def.schemaVersion})`,
    };
  }
  const payload = (def.consumerPayload ?? def.payload).safeParse(envelope.payload);
  if (!payload.success)
    return { ok: false, reason: `invalid payload for "${envelope.type}": ${describeIssues(payload.error)}` };
  return { ok: true, value: { ...envelope, payload: payload.data } };
}
