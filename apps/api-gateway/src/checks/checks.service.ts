import { Injectable } from '@nestjs/common';
import { ConfigRpcMethod, type CheckDefinition, type ConfigRpcResults, type Page } from '@fleetwatch/contracts';
import { z } from 'zod';
import type { Principal } from '../auth/principal';
import { ConfigOwner } from './config-owner.service';
import { actorOf, listChecksQuerySchema } from './request-envelope';

export type ListChecksQuery = z.output<typeof listChecksQuerySchema>;

/** Checks (SPEC §5, §11) as the gateway serves them: each operation one call to their owner. */
@Injectable()
export class ChecksService {
  constructor(private readonly owner: ConfigOwner) {}

  async create(principal: Principal, check: Record<string, unknown>): Promise<CheckDefinition> {
    const { check: created } = await this.owner.call(ConfigRpcMethod.ChecksCreate, {
      actor: actorOf(principal),
      check,
    });
    return created;
  }

  bulkCreate(principal: Principal, checks: unknown[]): Promise<ConfigRpcResults[ConfigRpcMethod.ChecksBulkCreate]> {
    return this.owner.call(ConfigRpcMethod.ChecksBulkCreate, { actor: actorOf(principal), checks });
  }

  list(query: ListChecksQuery): Promise<Page<CheckDefinition>> {
    return this.owner.call(ConfigRpcMethod.ChecksList, query);
  }

  async get(id: string): Promise<CheckDefinition> {
    return (await this.owner.call(ConfigRpcMethod.ChecksGet, { id })).check;
  }

  async replace(
    principal: Principal,
    id: string,
    check: Record<string, unknown>,
    expectedVersion: number | undefined,
  ): Promise<CheckDefinition> {
    const params = { actor: actorOf(principal), id, check, expectedVersion };
    return (await this.owner.call(ConfigRpcMethod.ChecksReplace, params)).check;
  }

  async patch(
    principal: Principal,
    id: string,
    patch: Record<string, unknown>,
    expectedVersion: number | undefined,
  ): Promise<CheckDefinition> {
    const params = { actor: actorOf(principal), id, patch, expectedVersion };
    return (await this.owner.call(ConfigRpcMethod.ChecksPatch, params)).check;
  }

  async delete(principal: Principal, id: string, expectedVersion: number | undefined): Promise<void> {
    await this.owner.call(ConfigRpcMethod.ChecksDelete, { actor: actorOf(principal), id, expectedVersion });
  }

  async setPaused(
    principal: Principal,
    id: string,
    paused: boolean,
    expectedVersion: number | undefined,
  ): Promise<CheckDefinition> {
    const params = { actor: actorOf(principal), id, paused, expectedVersion };
    return (await this.owner.call(ConfigRpcMethod.ChecksSetPaused, params)).check;
  }
}
