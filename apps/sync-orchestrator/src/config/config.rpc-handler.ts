import { createHash } from 'node:crypto';
import { Injectable, OnModuleInit } from '@nestjs/common';
import { ConfigRpcMethod as M } from '@fleetwatch/contracts';
import { RpcServer, type RpcContext } from '@fleetwatch/messaging';
import { ConfigAsCodeService } from './config-as-code.service';
import { ConfigService } from './config.service';
import type { WriteRequest } from './config-writer';

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
  ) {}

  onModuleInit(): void {
    this.rpc
      .handle(M.ChecksCreate, (p, ctx) => this.config.create(p.actor, p.check, requestOf(ctx, p)))
      .handle(M.ChecksBulkCreate, (p, ctx) => this.config.bulkCreate(p.actor, p.checks, requestOf(ctx, p)))
      .handle(M.ChecksReplace, (p, ctx) =>
        this.config.replace(p.actor, p.id, p.check, p.expectedVersion, requestOf(ctx, p)),
      )
      .handle(M.ChecksPatch, (p, ctx) =>
        this.config.patch(p.actor, p.id, p.patch, p.expectedVersion, requestOf(ctx, p)),
      )
      .handle(M.ChecksDelete, (p, ctx) => this.config.delete(p.actor, p.id, p.expectedVersion, requestOf(ctx, p)))
      .handle(M.ChecksSetPaused, (p, ctx) =>
        this.config.setPaused(p.actor, p.id, p.paused, p.expectedVersion, requestOf(ctx, p)),
      )
      .handle(M.ChecksList, (p) => this.config.list(p))
      .handle(M.ChecksGet, (p) => this.config.get(p.id))
      .handle(M.ConfigExport, () => this.asCode.export())
      .handle(M.ConfigImport, (p, ctx) =>
        this.asCode.import(p.actor, p.yaml, {
          dryRun: p.dryRun,
          prune: p.prune,
          expectedVersion: p.expectedVersion,
          request: requestOf(ctx, p),
        }),
      )
      .handle(M.ConfigVersions, (p) => this.config.versionsList(p.limit, p.before))
      .handle(M.ConfigVersion, (p) => this.config.version(p.version))
      .handle(M.ConfigAudit, (p) => this.config.audit(p))
      .handle(M.AssignmentGet, (p) => this.config.assignment(p.location, p.known));
  }
}

/**
 * What makes a write idempotent: the request's message id (the same on a redelivery) — or, when the HTTP client
 * sent an `Idempotency-Key`, an id derived from that key, the method and the params (which name the caller): the
 * client's retry after a 503 is then answered as the first request was, even though it is another message.
 */
export function requestOf(ctx: RpcContext, params: unknown): WriteRequest {
  if (ctx.idempotencyKey === undefined) return { id: ctx.messageId, method: ctx.method, deadline: ctx.deadline };
  const digest = createHash('sha256')
    .update(canonicalJson([ctx.idempotencyKey, ctx.method, params]))
    .digest('hex');
  // Shaped as a UUID (config_requests' key), version 8 (custom), RFC 9562 variant.
  const id = `${digest.slice(0, 8)}-${digest.slice(8, 12)}-8${digest.slice(13, 16)}-${((parseInt(digest[16], 16) & 0x3) | 0x8).toString(16)}${digest.slice(17, 20)}-${digest.slice(20, 32)}`;
  return { id, method: ctx.method, deadline: ctx.deadline, keyed: true };
}

/**
 * JSON with every object's fields in one order (sorted): a retry is the same request whatever order its client wrote
 * the body's fields in (JSON objects are unordered; a client that builds its body again may order them differently).
 */
function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v !== null && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}
