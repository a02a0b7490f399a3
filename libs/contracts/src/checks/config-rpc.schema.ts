import { z } from 'zod';
import { storableText } from '../common/store-safe';
import { UUID_PATTERN } from '../common/ids';
import { locationSchema } from '../events/observations.schema';
import type { CheckDefinition } from './check.schema';
import type { CheckView } from './check-secrets';

// Request/response between the gateway (and the collector, for its assignment) and
// sync-orchestrator, the single writer of configuration (SPEC §2, §3). Requests travel as
// `rpc.request` commands with AMQP `replyTo` + `correlationId`; the answer is an
// `RpcReply` sent to `replyTo`. Params are validated by these schemas on both sides;
// check bodies inside them by `checkInputSchema`, once, by the owner.

/**
 * The largest config-as-code document (bytes at the gateway; its length as text here, never more). Parsing and
 * validating it holds the configuration owner's event loop: ~1 s a MiB on a 2-core box (~10,000 checks), so this keeps
 * a document well inside the broker's heartbeat window (a connection silent ~10 s is closed, and the import was
 * redelivered and parsed again). 16 MiB (~160,000 checks) held it long enough; applying that many would not fit the
 * gateway's 60 s bulk RPC deadline anyway.
 */
export const CONFIG_YAML_MAX_BYTES = 4 * 1024 * 1024;

export enum ConfigRpcMethod {
  ChecksCreate = 'checks.create',
  ChecksBulkCreate = 'checks.bulk-create',
  ChecksReplace = 'checks.replace',
  ChecksPatch = 'checks.patch',
  ChecksDelete = 'checks.delete',
  ChecksSetPaused = 'checks.set-paused',
  ChecksList = 'checks.list',
  ChecksGet = 'checks.get',
  ConfigExport = 'config.export',
  ConfigImport = 'config.import',
  ConfigVersions = 'config.versions',
  ConfigVersion = 'config.version',
  ConfigAudit = 'config.audit',
  AssignmentGet = 'assignment.get',
}

/** Who asks: recorded in the audit log. */
export const actorSchema = z.strictObject({
  /** `user:<id>` or `api-key:<id>` or `system:<name>`. */
  id: storableText(256).min(1),
  /** Human name for the audit log: username or key name. */
  name: storableText(256).min(1),
});
export type Actor = z.infer<typeof actorSchema>;

const checkId = z.string().regex(UUID_PATTERN, 'a check id (UUID)');
/** `If-Match`: the version the writer last saw (a check's `version`, or the config version for import). */
/** Versions are Postgres `int`: larger numbers are refused here (400), not by the database (500). */
const MAX_VERSION = 2_147_483_647;
const expectedVersion = z.number().int().nonnegative().max(MAX_VERSION).optional();

export const configRpcParams = {
  [ConfigRpcMethod.ChecksCreate]: z.strictObject({ actor: actorSchema, check: z.unknown() }),
  [ConfigRpcMethod.ChecksBulkCreate]: z.strictObject({
    actor: actorSchema,
    checks: z.array(z.unknown()).min(1).max(1000),
  }),
  [ConfigRpcMethod.ChecksReplace]: z.strictObject({
    actor: actorSchema,
    id: checkId,
    check: z.unknown(),
    expectedVersion,
  }),
  [ConfigRpcMethod.ChecksPatch]: z.strictObject({
    actor: actorSchema,
    id: checkId,
    patch: z.record(z.string(), z.unknown()),
    expectedVersion,
  }),
  [ConfigRpcMethod.ChecksDelete]: z.strictObject({ actor: actorSchema, id: checkId, expectedVersion }),
  [ConfigRpcMethod.ChecksSetPaused]: z.strictObject({
    actor: actorSchema,
    id: checkId,
    paused: z.boolean(),
    expectedVersion,
  }),
  [ConfigRpcMethod.ChecksList]: z.strictObject({
    type: storableText(32).optional(),
    tag: storableText(64).optional(),
    location: locationSchema.optional(),
    limit: z.number().int().min(1).max(1000).default(100),
    /** Opaque cursor from the previous page. */
    cursor: storableText(256).optional(),
  }),
  [ConfigRpcMethod.ChecksGet]: z.strictObject({ id: checkId }),
  [ConfigRpcMethod.ConfigExport]: z.strictObject({}),
  [ConfigRpcMethod.ConfigImport]: z.strictObject({
    actor: actorSchema,
    /** The YAML document (config as code), at most CONFIG_YAML_MAX_BYTES long. */
    yaml: z.string().max(CONFIG_YAML_MAX_BYTES),
    dryRun: z.boolean().default(false),
    /** Checks in the site but not in the file: deleted (`true`, the default: the file is the truth) or kept. */
    prune: z.boolean().default(true),
    expectedVersion,
  }),
  [ConfigRpcMethod.ConfigVersions]: z.strictObject({
    limit: z.number().int().min(1).max(500).default(50),
    before: z.number().int().positive().max(MAX_VERSION).optional(),
  }),
  [ConfigRpcMethod.ConfigVersion]: z.strictObject({ version: z.number().int().positive().max(MAX_VERSION) }),
  [ConfigRpcMethod.ConfigAudit]: z.strictObject({
    limit: z.number().int().min(1).max(500).default(50),
    /** Opaque cursor from the previous page. */
    cursor: storableText(256).optional(),
    subject: storableText(300).optional(),
  }),
  [ConfigRpcMethod.AssignmentGet]: z.strictObject({
    location: locationSchema,
    /**
     * The assignment the collector holds (its config version and hash): when the head is still that one, the
     * owner answers `notModified` without the checks, so a collector's periodic refresh does not move (and parse)
     * the whole assignment again. Owners before this field refuse it as `invalid`: collectors then ask without it.
     */
    known: z
      .strictObject({ version: z.number().int().nonnegative().max(MAX_VERSION), hash: z.string().max(128) })
      .optional(),
  }),
} as const satisfies Record<ConfigRpcMethod, z.ZodType>;

export type ConfigRpcParams<M extends ConfigRpcMethod> = z.input<(typeof configRpcParams)[M]>;

/** One planned change of an import (dry run or applied). */
export interface ConfigPlanItem {
  action: 'create' | 'change' | 'delete' | 'unchanged';
  /** The check's `name` (unique key of config as code) and id when it exists. */
  name: string;
  id: string | null;
  /** Changed fields (change), as a JSON diff. */
  diff?: ConfigDiffEntry[];
}

/** One changed value: path, before and after (absent = not set). */
export interface ConfigDiffEntry {
  path: string;
  before?: unknown;
  after?: unknown;
}

export interface ConfigVersionSummary {
  version: number;
  hash: string;
  actor: string;
  createdAt: string;
  /** What this version changed, in one line. */
  summary: string;
}

export interface AuditEntry {
  id: string;
  at: string;
  actor: string;
  action: string;
  subject: string | null;
  version: number | null;
  diff: ConfigDiffEntry[];
}

export interface Page<T> {
  items: T[];
  /** Pass as `cursor` for the next page; null on the last. */
  nextCursor: string | null;
}

export interface WriteResult {
  /** The config version this write created (unchanged when it changed nothing). */
  version: number;
}

/** A `push` check's ping token, issued when the check is created: in this answer only (the owner keeps its hash). */
export interface PingTokenIssued {
  pingToken?: string;
}

/** The ping tokens of the `push` checks a write created, by check id: in this answer only. */
export interface PingTokensIssued {
  pingTokens?: Record<string, string>;
}

/** What each method answers. */
export interface ConfigRpcResults {
  // Checks as answers show them: credential headers redacted (check-secrets.ts); only the assignment has values.
  [ConfigRpcMethod.ChecksCreate]: { check: CheckView } & PingTokenIssued & WriteResult;
  [ConfigRpcMethod.ChecksBulkCreate]: { checks: CheckView[] } & PingTokensIssued & WriteResult;
  [ConfigRpcMethod.ChecksReplace]: { check: CheckView } & WriteResult;
  [ConfigRpcMethod.ChecksPatch]: { check: CheckView } & WriteResult;
  [ConfigRpcMethod.ChecksDelete]: WriteResult;
  [ConfigRpcMethod.ChecksSetPaused]: { check: CheckView } & WriteResult;
  [ConfigRpcMethod.ChecksList]: Page<CheckView>;
  [ConfigRpcMethod.ChecksGet]: { check: CheckView };
  [ConfigRpcMethod.ConfigExport]: { yaml: string; version: number; hash: string };
  [ConfigRpcMethod.ConfigImport]: { dryRun: boolean; plan: ConfigPlanItem[] } & PingTokensIssued & WriteResult;
  [ConfigRpcMethod.ConfigVersions]: { items: ConfigVersionSummary[] };
  [ConfigRpcMethod.ConfigVersion]: ConfigVersionSummary & { snapshot: Record<string, unknown> };
  [ConfigRpcMethod.ConfigAudit]: Page<AuditEntry>;
  [ConfigRpcMethod.AssignmentGet]: AssignmentFull | AssignmentNotModified;
}

/** `assignment.get`: the checks a collector's location runs, with the config version they belong to. */
export interface AssignmentFull {
  version: number;
  hash: string;
  location: string;
  checks: CheckDefinition[];
  notModified?: false;
}

/** `assignment.get` with `known` naming the head: what the collector holds is current (no checks sent). */
export interface AssignmentNotModified {
  version: number;
  hash: string;
  location: string;
  notModified: true;
}

/** Typed failures the owner answers with; the gateway maps them to HTTP (400, 404, 409, 422, 503). */
export const rpcErrorCodeSchema = z.enum(['invalid', 'not_found', 'conflict', 'denied', 'unavailable', 'internal']);
export type RpcErrorCode = z.infer<typeof rpcErrorCodeSchema>;

export const rpcReplySchema = z.discriminatedUnion('ok', [
  z.strictObject({ ok: z.literal(true), result: z.unknown() }),
  z.strictObject({
    ok: z.literal(false),
    error: z.strictObject({
      code: rpcErrorCodeSchema,
      message: z.string().max(4096),
      issues: z
        .array(z.strictObject({ path: z.string(), message: z.string() }))
        .max(200)
        .optional(),
      /** conflict: the current version, so the client can re-read. */
      currentVersion: z.number().int().nonnegative().optional(),
    }),
  }),
]);
export type RpcReply = z.infer<typeof rpcReplySchema>;
