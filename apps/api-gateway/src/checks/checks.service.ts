import { Inject, Injectable } from '@nestjs/common';
import { ConfigRpcMethod, type CheckView, type ConfigRpcResults, type Page } from '@fleetwatch/contracts';
import { z } from 'zod';
import type { Principal } from '../auth/principal';
import type { GatewayConfig } from '../config';
import { GATEWAY_CONFIG } from '../tokens';
import { ConfigOwner } from './config-owner.service';
import { actorOf, listChecksQuerySchema } from './request-envelope';

export type ListChecksQuery = z.output<typeof listChecksQuerySchema>;

/** A created check; a `push` check with its ping token and URL, shown this once (the owner keeps a hash). */
export type CreatedCheck = CheckView & { pingToken?: string; pingUrl?: string };

/** Ping URLs (on status-ingest) of the tokens a write issued, by check id. */
export type PingUrls = { pingUrls?: Record<string, string> };

/** Checks (SPEC §5, §11) as the gateway serves them: each operation one call to their owner. */
@Injectable()
export class ChecksService {
  constructor(
    private readonly owner: ConfigOwner,
    @Inject(GATEWAY_CONFIG) private readonly config: Pick<GatewayConfig, 'ingestPublicUrl'>,
  ) {}

  async create(principal: Principal, check: Record<string, unknown>, key?: string): Promise<CreatedCheck> {
    const { check: created, pingToken } = await this.owner.call(
      ConfigRpcMethod.ChecksCreate,
      { actor: actorOf(principal), check },
      key,
    );
    return pingToken ? { ...created, pingToken, pingUrl: this.pingUrlOf(pingToken) } : created;
  }

  async bulkCreate(
    principal: Principal,
    checks: unknown[],
    key?: string,
  ): Promise<ConfigRpcResults[ConfigRpcMethod.ChecksBulkCreate] & PingUrls> {
    return this.withPingUrls(
      await this.owner.call(ConfigRpcMethod.ChecksBulkCreate, { actor: actorOf(principal), checks }, key),
    );
  }

  /** Adds `pingUrls` beside the `pingTokens` an answer carries. */
  withPingUrls<T extends { pingTokens?: Record<string, string> }>(result: T): T & PingUrls {
    if (!result.pingTokens || Object.keys(result.pingTokens).length === 0) return result;
    const pingUrls = Object.fromEntries(
      Object.entries(result.pingTokens).map(([id, token]) => [id, this.pingUrlOf(token)]),
    );
    return { ...result, pingUrls };
  }

  /** Where a push check's pinger sends its heartbeats (status-ingest, SPEC §6). */
  pingUrlOf(token: string): string {
    return `${this.config.ingestPublicUrl}/ping/${token}`;
  }

  list(query: ListChecksQuery): Promise<Page<CheckView>> {
    return this.owner.call(ConfigRpcMethod.ChecksList, query);
  }

  async get(id: string): Promise<CheckView> {
    return (await this.owner.call(ConfigRpcMethod.ChecksGet, { id })).check;
  }

  async replace(
    principal: Principal,
    id: string,
    check: Record<string, unknown>,
    expectedVersion: number | undefined,
    key?: string,
  ): Promise<CheckView> {
    const params = { actor: actorOf(principal), id, check, expectedVersion };
    return (await this.owner.call(ConfigRpcMethod.ChecksReplace, params, key)).check;
  }

  async patch(
    principal: Principal,
    id: string,
    patch: Record<string, unknown>,
    expectedVersion: number | undefined,
    key?: string,
  ): Promise<CheckView> {
    const params = { actor: actorOf(principal), id, patch, expectedVersion };
    return (await this.owner.call(ConfigRpcMethod.ChecksPatch, params, key)).check;
  }

  async delete(principal: Principal, id: string, expectedVersion: number | undefined, key?: string): Promise<void> {
    await this.owner.call(ConfigRpcMethod.ChecksDelete, { actor: actorOf(principal), id, expectedVersion }, key);
  }

  async setPaused(
    principal: Principal,
    id: string,
    paused: boolean,
    expectedVersion: number | undefined,
    key?: string,
  ): Promise<CheckView> {
    const params = { actor: actorOf(principal), id, paused, expectedVersion };
    return (await this.owner.call(ConfigRpcMethod.ChecksSetPaused, params, key)).check;
  }
}
