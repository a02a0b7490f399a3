import { Injectable } from '@nestjs/common';
import { ConfigRpcMethod, UserRole, type ConfigRpcResults } from '@fleetwatch/contracts';
import { ForbiddenError, InvalidError, roleAtLeast } from '@fleetwatch/domain';
import type { z } from 'zod';
import type { Principal } from '../auth/principal';
import { ChecksService, type PingUrls } from '../checks/checks.service';
import { ConfigOwner } from '../checks/config-owner.service';
import { actorOf, auditQuerySchema, importQuerySchema, versionsQuerySchema } from '../checks/request-envelope';

type Results = ConfigRpcResults;

/**
 * Config as code, versions and audit (issue 15), each one call to the owner. An import
 * applies as one config version; a dry run only plans it, so it is open to viewers (a CI
 * pipeline can plan with a `read` key and apply with a `write` key).
 */
@Injectable()
export class ConfigAsCodeService {
  constructor(
    private readonly owner: ConfigOwner,
    private readonly checks: ChecksService,
  ) {}

  export(): Promise<Results[ConfigRpcMethod.ConfigExport]> {
    return this.owner.call(ConfigRpcMethod.ConfigExport, {});
  }

  async import(
    principal: Principal,
    yaml: string,
    query: z.output<typeof importQuerySchema>,
    expectedVersion: number | undefined,
  ): Promise<Results[ConfigRpcMethod.ConfigImport] & PingUrls> {
    if (!query.dryRun && !roleAtLeast(principal.role, UserRole.Operator))
      throw new ForbiddenError(
        `applying an import needs role operator or higher (a dry run does not); ${principal.kind === 'user' ? 'you are' : 'this API key acts as'} ${principal.role}`,
      );
    const result = await this.owner.call(ConfigRpcMethod.ConfigImport, {
      actor: actorOf(principal),
      yaml,
      dryRun: query.dryRun,
      prune: query.prune,
      expectedVersion,
    });
    // Push checks it created: their ping tokens (and URLs) are in this answer only.
    return this.checks.withPingUrls(result);
  }

  versions(query: z.output<typeof versionsQuerySchema>): Promise<Results[ConfigRpcMethod.ConfigVersions]> {
    return this.owner.call(ConfigRpcMethod.ConfigVersions, query);
  }

  version(version: number): Promise<Results[ConfigRpcMethod.ConfigVersion]> {
    return this.owner.call(ConfigRpcMethod.ConfigVersion, { version });
  }

  audit(query: z.output<typeof auditQuerySchema>): Promise<Results[ConfigRpcMethod.ConfigAudit]> {
    return this.owner.call(ConfigRpcMethod.ConfigAudit, query);
  }
}

/** The YAML text of an import: the raw body (YAML or text media type), or `{ "yaml": "…" }` from JSON clients. */
export function yamlBodyOf(body: unknown): string {
  if (typeof body === 'string') return body;
  if (body && typeof body === 'object' && typeof (body as { yaml?: unknown }).yaml === 'string')
    return (body as { yaml: string }).yaml;
  throw new InvalidError('body: send the YAML document with Content-Type: application/yaml', [
    { path: '(body)', message: 'a YAML document (Content-Type: application/yaml), or JSON {"yaml": "…"}' },
  ]);
}
