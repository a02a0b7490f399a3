import { Inject, Injectable, OnModuleInit, Optional } from '@nestjs/common';
import {
  AlertConfigRpcMethod as M,
  alertConfigRpcParams,
  type AlertConfigRpcResults,
  type AlertRuleDefinition,
} from '@fleetwatch/contracts';
import { exportPrometheusRules } from '@fleetwatch/alerting';
import { RpcServer, type RpcContext } from '@fleetwatch/messaging';
import { FLEETWATCH_LOGGER } from '@fleetwatch/observability';
import type { SecretSealer } from '@fleetwatch/persistence';
import type { Logger } from 'pino';
import type { z } from 'zod';
import { requestOf } from '../config/write-request';
import { AlertConfigService, type AlertKind } from './alert-config.service';
import { CHANNEL_SEALER, SITE_NAME } from './alerting.tokens';
import { SilencesService } from './silences.service';

type Params<K extends M> = z.output<(typeof alertConfigRpcParams)[K]>;

/**
 * The alert configuration's RPC methods (contracts' AlertConfigRpcMethod) on the same RpcServer as
 * the checks': params validated by `alertConfigRpcParams[method]` (→ `invalid`), one service call
 * each; writes pass the request's id along (idempotent on redelivery, as for checks).
 */
@Injectable()
export class AlertingRpcHandler implements OnModuleInit {
  constructor(
    private readonly rpc: RpcServer,
    private readonly config: AlertConfigService,
    private readonly silences: SilencesService,
    @Inject(SITE_NAME) private readonly site: string,
    @Optional() @Inject(CHANNEL_SEALER) private readonly sealer: SecretSealer | null = null,
    @Optional() @Inject(FLEETWATCH_LOGGER) private readonly logger?: Pick<Logger, 'warn'>,
  ) {}

  private on<K extends M>(method: K, run: (p: Params<K>, ctx: RpcContext) => Promise<AlertConfigRpcResults[K]>) {
    const schema = alertConfigRpcParams[method] as z.ZodType;
    this.rpc.register(method, (params, ctx) => run(schema.parse(params) as Params<K>, ctx));
  }

  onModuleInit(): void {
    if (!this.sealer)
      this.logger?.warn(
        'FLEETWATCH_ENCRYPTION_KEY is not set: channel writes carrying a secret are refused (docs/runbooks/configuration.md)',
      );
    this.crud('rule', 'rule', M.RulesCreate, M.RulesReplace, M.RulesPatch, M.RulesDelete, M.RulesList, M.RulesGet);
    this.crud(
      'channel',
      'channel',
      M.ChannelsCreate,
      M.ChannelsReplace,
      M.ChannelsPatch,
      M.ChannelsDelete,
      M.ChannelsList,
      M.ChannelsGet,
    );
    this.crud(
      'window',
      'window',
      M.WindowsCreate,
      M.WindowsReplace,
      M.WindowsPatch,
      M.WindowsDelete,
      M.WindowsList,
      M.WindowsGet,
    );
    this.on(M.RulesPrometheus, async () => {
      const rules: AlertRuleDefinition[] = [];
      for (let cursor: string | undefined, page; (page = await this.config.list('rule', { limit: 1000, cursor }));) {
        rules.push(...page.items);
        if (!page.nextCursor) break;
        cursor = page.nextCursor;
      }
      return exportPrometheusRules(
        rules.map(({ version: _v, createdAt: _c, updatedAt: _u, ...rule }) => rule),
        { site: this.site },
      );
    });
    this.on(M.SilencesCreate, (p, ctx) => this.silences.create(p.actor, p.body, requestOf(ctx, p, this.sealer)));
    this.on(M.SilencesExpire, (p, ctx) => this.silences.expire(p.actor, p.id, requestOf(ctx, p, this.sealer)));
    this.on(M.SilencesDelete, (p, ctx) => this.silences.delete(p.actor, p.id, requestOf(ctx, p, this.sealer)));
    this.on(M.SilencesList, (p) => this.silences.list(p));
    this.on(M.SilencesGet, async (p) => ({ silence: await this.silences.get(p.id) }));
  }

  /** The six methods of one kind; answers carry the entry under `key` (`rule`, `channel`, `window`). */
  private crud<K extends AlertKind>(
    kind: K,
    key: string,
    create: M,
    replace: M,
    patch: M,
    del: M,
    list: M,
    get: M,
  ): void {
    type W = { actor: never; id: string; body: unknown; patch: Record<string, unknown>; expectedVersion?: number };
    const reg = (method: M, run: (p: W, ctx: RpcContext) => Promise<unknown>) =>
      this.on(method, run as unknown as (p: Params<M>, ctx: RpcContext) => Promise<AlertConfigRpcResults[M]>);
    const wrap = async (r: Promise<{ item: unknown; version: number }>) => {
      const { item, version } = await r;
      return { [key]: item, version };
    };
    reg(create, (p, ctx) => wrap(this.config.create(kind, p.actor, p.body, requestOf(ctx, p, this.sealer))));
    reg(replace, (p, ctx) =>
      wrap(
        this.config.change(kind, p.actor, p.id, { replace: p.body }, p.expectedVersion, requestOf(ctx, p, this.sealer)),
      ),
    );
    reg(patch, (p, ctx) =>
      wrap(
        this.config.change(kind, p.actor, p.id, { patch: p.patch }, p.expectedVersion, requestOf(ctx, p, this.sealer)),
      ),
    );
    reg(del, (p, ctx) => this.config.delete(kind, p.actor, p.id, p.expectedVersion, requestOf(ctx, p, this.sealer)));
    reg(list, (p) => this.config.list(kind, p as unknown as { limit: number; cursor?: string }));
    reg(get, async (p) => ({ [key]: await this.config.get(kind, p.id) }));
  }
}
