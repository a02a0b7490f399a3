import { z } from 'zod';
import { storableText } from '../common/store-safe';
import { UUID_PATTERN } from '../common/ids';
import { actorSchema, type Page, type WriteResult } from '../checks/config-rpc.schema';
import type { Channel } from './channel.schema';
import { alertRuleIdSchema, channelIdSchema, type AlertRuleDefinition } from './rule.schema';
import type { MaintenanceWindowSpec, SilenceSpec } from './silence.schema';

// Alert configuration over the bus (issue 18): rules, channels, maintenance windows and silences are
// written by sync-orchestrator, the single writer of configuration (SPEC §2), through the same
// versioned, audited path as checks. Same envelope as ConfigRpcMethod (`rpc.request`, reply
// `RpcReply`); bodies (`body`: a rule, channel, window or silence) are validated once, by the owner, with
// the alert schemas — here they are only `unknown`.

export enum AlertConfigRpcMethod {
  RulesCreate = 'alert-rules.create',
  RulesReplace = 'alert-rules.replace',
  RulesPatch = 'alert-rules.patch',
  RulesDelete = 'alert-rules.delete',
  RulesList = 'alert-rules.list',
  RulesGet = 'alert-rules.get',
  RulesPrometheus = 'alert-rules.prometheus',
  ChannelsCreate = 'channels.create',
  ChannelsReplace = 'channels.replace',
  ChannelsPatch = 'channels.patch',
  ChannelsDelete = 'channels.delete',
  ChannelsList = 'channels.list',
  ChannelsGet = 'channels.get',
  WindowsCreate = 'maintenance-windows.create',
  WindowsReplace = 'maintenance-windows.replace',
  WindowsPatch = 'maintenance-windows.patch',
  WindowsDelete = 'maintenance-windows.delete',
  WindowsList = 'maintenance-windows.list',
  WindowsGet = 'maintenance-windows.get',
  SilencesCreate = 'silences.create',
  SilencesExpire = 'silences.expire',
  SilencesDelete = 'silences.delete',
  SilencesList = 'silences.list',
  SilencesGet = 'silences.get',
}

/** Maintenance windows are keyed like rules: a UUID given by the owner, or a slug from config as code. */
export const maintenanceWindowIdSchema = alertRuleIdSchema;
const silenceId = z.string().regex(UUID_PATTERN, 'a silence id (UUID)');
const MAX_VERSION = 2_147_483_647;
const expectedVersion = z.number().int().nonnegative().max(MAX_VERSION).optional();
const listParams = z.strictObject({
  limit: z.number().int().min(1).max(1000).default(100),
  /** Opaque cursor from the previous page. */
  cursor: storableText(256).optional(),
});

/** Which silences a list shows: active now, not yet started, or over (expired). */
export const SILENCE_STATES = ['active', 'pending', 'expired'] as const;
export const silenceStateSchema = z.enum(SILENCE_STATES);
export type SilenceState = z.infer<typeof silenceStateSchema>;

function writes<I extends z.ZodType>(id: I) {
  return {
    create: z.strictObject({ actor: actorSchema, body: z.unknown() }),
    replace: z.strictObject({ actor: actorSchema, id, body: z.unknown(), expectedVersion }),
    /** Top-level merge; a `null` member removes the field (its default applies). */
    patch: z.strictObject({ actor: actorSchema, id, patch: z.record(z.string(), z.unknown()), expectedVersion }),
    delete: z.strictObject({ actor: actorSchema, id, expectedVersion }),
    get: z.strictObject({ id }),
  };
}
const rules = writes(alertRuleIdSchema);
const channels = writes(channelIdSchema);
const windows = writes(maintenanceWindowIdSchema);

export const alertConfigRpcParams = {
  [AlertConfigRpcMethod.RulesCreate]: rules.create,
  [AlertConfigRpcMethod.RulesReplace]: rules.replace,
  [AlertConfigRpcMethod.RulesPatch]: rules.patch,
  [AlertConfigRpcMethod.RulesDelete]: rules.delete,
  [AlertConfigRpcMethod.RulesList]: listParams,
  [AlertConfigRpcMethod.RulesGet]: rules.get,
  [AlertConfigRpcMethod.RulesPrometheus]: z.strictObject({}),
  [AlertConfigRpcMethod.ChannelsCreate]: channels.create,
  [AlertConfigRpcMethod.ChannelsReplace]: channels.replace,
  [AlertConfigRpcMethod.ChannelsPatch]: channels.patch,
  [AlertConfigRpcMethod.ChannelsDelete]: channels.delete,
  [AlertConfigRpcMethod.ChannelsList]: listParams,
  [AlertConfigRpcMethod.ChannelsGet]: channels.get,
  [AlertConfigRpcMethod.WindowsCreate]: windows.create,
  [AlertConfigRpcMethod.WindowsReplace]: windows.replace,
  [AlertConfigRpcMethod.WindowsPatch]: windows.patch,
  [AlertConfigRpcMethod.WindowsDelete]: windows.delete,
  [AlertConfigRpcMethod.WindowsList]: listParams,
  [AlertConfigRpcMethod.WindowsGet]: windows.get,
  /** The silence's `createdBy` is the caller (`actor.name`), whatever the body says. */
  [AlertConfigRpcMethod.SilencesCreate]: z.strictObject({ actor: actorSchema, body: z.unknown() }),
  /** Ends an active or pending silence now (kept, listed as expired). */
  [AlertConfigRpcMethod.SilencesExpire]: z.strictObject({ actor: actorSchema, id: silenceId }),
  [AlertConfigRpcMethod.SilencesDelete]: z.strictObject({ actor: actorSchema, id: silenceId }),
  [AlertConfigRpcMethod.SilencesList]: listParams.extend({ state: silenceStateSchema.optional() }),
  [AlertConfigRpcMethod.SilencesGet]: z.strictObject({ id: silenceId }),
} as const satisfies Record<AlertConfigRpcMethod, z.ZodType>;

export type AlertConfigRpcParams<M extends AlertConfigRpcMethod> = z.input<(typeof alertConfigRpcParams)[M]>;

/** A stored maintenance window. */
export type MaintenanceWindowDefinition = MaintenanceWindowSpec & {
  id: string;
  version: number;
  createdAt: string;
  updatedAt: string;
};

/** A stored silence, with where it stands now. */
export type SilenceDefinition = SilenceSpec & {
  id: string;
  state: SilenceState;
  /** The config version that created or last ended it. */
  version: number;
  createdAt: string;
  updatedAt: string;
};

/** The Prometheus rule file of the stored rules (libs/alerting's export) and what it left out. */
export interface PrometheusRulesExport {
  yaml: string;
  exported: string[];
  skipped: Array<{ ruleId: string; name: string; reason: string }>;
  notes: Array<{ ruleId: string; annotation: string; reason: string }>;
}

type M = AlertConfigRpcMethod;
export interface AlertConfigRpcResults {
  [AlertConfigRpcMethod.RulesCreate]: { rule: AlertRuleDefinition } & WriteResult;
  [AlertConfigRpcMethod.RulesReplace]: { rule: AlertRuleDefinition } & WriteResult;
  [AlertConfigRpcMethod.RulesPatch]: { rule: AlertRuleDefinition } & WriteResult;
  [AlertConfigRpcMethod.RulesDelete]: WriteResult;
  [AlertConfigRpcMethod.RulesList]: Page<AlertRuleDefinition>;
  [AlertConfigRpcMethod.RulesGet]: { rule: AlertRuleDefinition };
  [AlertConfigRpcMethod.RulesPrometheus]: PrometheusRulesExport;
  [AlertConfigRpcMethod.ChannelsCreate]: { channel: Channel } & WriteResult;
  [AlertConfigRpcMethod.ChannelsReplace]: { channel: Channel } & WriteResult;
  [AlertConfigRpcMethod.ChannelsPatch]: { channel: Channel } & WriteResult;
  [AlertConfigRpcMethod.ChannelsDelete]: WriteResult;
  [AlertConfigRpcMethod.ChannelsList]: Page<Channel>;
  [AlertConfigRpcMethod.ChannelsGet]: { channel: Channel };
  [AlertConfigRpcMethod.WindowsCreate]: { window: MaintenanceWindowDefinition } & WriteResult;
  [AlertConfigRpcMethod.WindowsReplace]: { window: MaintenanceWindowDefinition } & WriteResult;
  [AlertConfigRpcMethod.WindowsPatch]: { window: MaintenanceWindowDefinition } & WriteResult;
  [AlertConfigRpcMethod.WindowsDelete]: WriteResult;
  [AlertConfigRpcMethod.WindowsList]: Page<MaintenanceWindowDefinition>;
  [AlertConfigRpcMethod.WindowsGet]: { window: MaintenanceWindowDefinition };
  [AlertConfigRpcMethod.SilencesCreate]: { silence: SilenceDefinition } & WriteResult;
  [AlertConfigRpcMethod.SilencesExpire]: { silence: SilenceDefinition } & WriteResult;
  [AlertConfigRpcMethod.SilencesDelete]: WriteResult;
  [AlertConfigRpcMethod.SilencesList]: Page<SilenceDefinition>;
  [AlertConfigRpcMethod.SilencesGet]: { silence: SilenceDefinition };
}
export type AlertConfigRpcResult<K extends M> = AlertConfigRpcResults[K];
