import { z } from 'zod';

/** Status classes every target resolves to (SPEC §1). */
export enum TargetStatus {
  Up = 'UP',
  Down = 'DOWN',
  Partial = 'PARTIAL',
  Stale = 'STALE',
  Paused = 'PAUSED',
  Unknown = 'UNKNOWN',
}
export const targetStatusSchema = z.enum(TargetStatus);

export enum TargetKind {
  Check = 'check',
  Host = 'host',
  Instance = 'instance',
}
export const targetKindSchema = z.enum(TargetKind);

/** What a pushed instance is (SPEC §6). */
export enum InstanceKind {
  Container = 'container',
  Pod = 'pod',
  Process = 'process',
  Service = 'service',
  Job = 'job',
}
export const instanceKindSchema = z.enum(InstanceKind);

/**
 * What a filter or selector picks targets by: a target's kind (`check`, `host`, `instance`), or a pushed instance's
 * own kind (`container`, `pod`, `process`, `service`, `job`, as its latest update said). One vocabulary of both: the
 * target list's `kind`, alert-rule and subscription selectors' `kinds`, the WebSocket status filter's `kind`.
 */
export const SelectableKind = { ...TargetKind, ...InstanceKind } as const;
export type SelectableKind = TargetKind | InstanceKind;
export const selectableKindSchema = z.enum(SelectableKind);

const INSTANCE_KINDS: ReadonlySet<string> = new Set(Object.values(InstanceKind));
/** Whether a selectable kind is a pushed instance's own kind (else a target kind). */
export function isInstanceKind(kind: string): kind is InstanceKind {
  return INSTANCE_KINDS.has(kind);
}

/**
 * Whether a target of `kind` (and, for a pushed instance, `instanceKind`) is one of `kinds`: its target kind or its
 * own kind is listed. An instance stored before its kind was kept has none, and matches only `instance`.
 */
export function kindSelected(
  kinds: ReadonlySet<string> | readonly string[],
  kind: TargetKind,
  instanceKind: InstanceKind | null | undefined,
): boolean {
  const has = (k: string) => ('has' in kinds ? kinds.has(k) : kinds.includes(k));
  return has(kind) || (instanceKind != null && has(instanceKind));
}

/**
 * Lifecycle states a pusher may report, lower-case on the wire. The mapping
 * onto status classes lives in libs/domain (`statusOfLifecycle`).
 */
export const LIFECYCLE_STATES = [
  'running',
  'healthy',
  'up',
  'ok',
  'succeeded',
  'completed',
  'starting',
  'pending',
  'created',
  'restarting',
  /**
   * On its way out on purpose (a pod being deleted, a container being removed): not an outage, so UNKNOWN rather than
   * DOWN — a rollout that replaces pods raises no "Target down" — and `removed` follows once it is gone. The k8s
   * watcher reports a pod still there a minute after its grace period `stopped` (stuck: a node out of reach, a finalizer).
   */
  'stopping',
  'degraded',
  'unhealthy',
  'stopped',
  'exited',
  'failed',
  'error',
  'dead',
  'down',
  'crashloopbackoff',
  'paused',
  'unknown',
  /**
   * The instance is gone for good (a pod deleted, a container removed): its target leaves live state — no status,
   * no deadline, no alert — and its history stays. A later update (newer than the removal) brings it back.
   */
  'removed',
] as const;
export type LifecycleState = (typeof LIFECYCLE_STATES)[number];
export const lifecycleStateSchema = z.enum(LIFECYCLE_STATES);

export enum UserRole {
  Admin = 'admin',
  Operator = 'operator',
  Viewer = 'viewer',
}
export const userRoleSchema = z.enum(UserRole);

export enum ApiKeyScope {
  Ingest = 'ingest',
  Read = 'read',
  Write = 'write',
  Fleet = 'fleet',
  Admin = 'admin',
}
export const apiKeyScopeSchema = z.enum(ApiKeyScope);
