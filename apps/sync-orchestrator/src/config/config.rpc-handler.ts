import { Inject, Injectable, OnModuleInit } from '@nestjs/common';
import { ConfigRpcMethod as M } from '@fleetwatch/contracts';
import { RpcServer } from '@fleetwatch/messaging';
import { ConfigAsCodeService } from './config-as-code.service';
import { ConfigService } from './config.service';
import { requestOf } from './write-request';
import type { SecretSealer } from '@fleetwatch/persistence';
import { CHANNEL_SEALER } from '../alerting/alerting.tokens';

export { requestOf };

/**
 * The configuration owner's RPC methods (contracts' ConfigRpcMethod), registered on the
 * bus RpcServer: params arrive validated by `configRpcParams[method]`; each method is one
 * service call. Typed domain errors become reply codes in RpcServer (InvalidError →
 * invalid with issues, VersionConflictError → conflict with currentVersion,
 * TargetDeniedError → denied). Writes pass the request's message id along, so a request
 * RabbitMQ redelivers after the write committed is answered again, not applied twice.
 */
@Injectable()
export class ConfigRpcHandler implements OnModuleInit {
  constructor(
    private readonly rpc: RpcServer,
    private readonly config: ConfigService,
    private readonly asCode: ConfigAsCodeService,
    /** Keys the request ids of Idempotency-Key writes (write-request.ts); null without FLEETWATCH_ENCRYPTION_KEY. */
    @Inject(CHANNEL_SEALER) private readonly sealer: SecretSealer | null,
  ) {}

  onModuleInit(): void {
    this.rpc
      .handle(M.ChecksCreate, (p, ctx) => this.config.create(p.actor, p.check, requestOf(ctx, p, this.sealer)))
      .handle(M.ChecksBulkCreate, (p, ctx) => this.config.bulkCreate(p.actor, p.checks, requestOf(ctx, p, this.sealer)))
      .handle(M.ChecksReplace, (p, ctx) =>
        this.config.replace(p.actor, p.id, p.check, p.expectedVersion, requestOf(ctx, p, this.sealer)),
      )
      .handle(M.ChecksPatch, (p, ctx) =>
        this.config.patch(p.actor, p.id, p.patch, p.expectedVersion, requestOf(ctx, p, this.sealer)),
      )
      .handle(M.ChecksDelete, (p, ctx) =>
        this.config.delete(p.actor, p.id, p.expectedVersion, requestOf(ctx, p, this.sealer)),
      )
      .handle(M.ChecksSetPaused, (p, ctx) =>
        this.config.setPaused(p.actor, p.id, p.paused, p.expectedVersion, requestOf(ctx, p, this.sealer)),
      )
      .handle(M.ChecksList, (p) => this.config.list(p))
      .handle(M.ChecksGet, (p) => this.config.get(p.id))
      .handle(M.ConfigExport, () => this.asCode.export())
      .handle(M.ConfigImport, (p, ctx) =>
        this.asCode.import(p.actor, p.yaml, {
          dryRun: p.dryRun,
          prune: p.prune,
          expectedVersion: p.expectedVersion,
          request: requestOf(ctx, p, this.sealer),
        }),
      )
      .handle(M.ConfigVersions, (p) => this.config.versionsList(p.limit, p.before))
      .handle(M.ConfigVersion, (p) => this.config.version(p.version))
      .handle(M.ConfigAudit, (p) => this.config.audit(p))
      .handle(M.AssignmentGet, (p) => this.config.assignment(p.location, p.known));
  }
}
