import { Injectable } from '@nestjs/common';
import {
  ApiKeyScope,
  ApiKeyView,
  CIDR_EXAMPLE,
  CreateApiKeyRequest,
  CreateApiKeyResponse,
  isCidr,
} from '@fleetwatch/contracts';
import {
  ForbiddenError,
  InvalidError,
  NotFoundError,
  roleAtLeast,
  roleToManageApiKey,
  UnauthorizedError,
} from '@fleetwatch/domain';
import { ApiKeyRecord, ApiKeysRepository, ApiKeyVerifier, generateApiKey } from '@fleetwatch/persistence';
import { CredentialLookups } from '../auth/credential-lookups';
import type { Principal } from '../auth/principal';

export function toApiKeyView(k: ApiKeyRecord): ApiKeyView {
  return {
    id: k.id,
    name: k.name,
    prefix: k.prefix,
    scopes: k.scopes,
    allowedCidrs: k.allowedCidrs,
    clientCertSubject: k.clientCertSubject,
    createdBy: k.createdBy,
    createdByName: k.createdByName,
    createdAt: k.createdAt.toISOString(),
    lastUsedAt: k.lastUsedAt?.toISOString() ?? null,
  };
}

/**
 * API keys (SPEC §11): shown once at creation, stored as a hash (persistence
 * `generateApiKey`, the same format status-ingest verifies), listed by prefix,
 * revoked by id. Nobody mints or revokes a key stronger than themselves
 * (domain `roleToManageApiKey`); only users mint keys (a key may revoke one).
 */
@Injectable()
export class ApiKeysService {
  constructor(
    private readonly keys: ApiKeysRepository,
    private readonly verifier: ApiKeyVerifier,
    private readonly lookups: CredentialLookups,
  ) {}

  async create(actor: Principal, input: CreateApiKeyRequest): Promise<CreateApiKeyResponse> {
    // Only a signed-in user makes keys: a key made by a key would outlive that key's revocation — whoever held a
    // leaked `write` key could leave working keys behind it — and belong to nobody (createdBy is a user).
    if (actor.kind !== 'user')
      throw new ForbiddenError('API keys are created by a signed-in user, not with another API key');
    const scopes = [...new Set(input.scopes)];
    this.assertMayManage(actor, scopes, 'create');
    const allowedCidrs = input.allowedCidrs ?? [];
    const bad = allowedCidrs.map((c, i) => ({ c, i })).filter(({ c }) => !isCidr(c));
    if (bad.length) {
      throw new InvalidError(
        `allowedCidrs: ${bad.map(({ c }) => JSON.stringify(c)).join(', ')} not a CIDR`,
        bad.map(({ i }) => ({ path: `allowedCidrs.${i}`, message: `is not a CIDR (${CIDR_EXAMPLE})` })),
      );
    }
    // A certificate is checked only at the ingest port's mutual TLS (the gateway has none and refuses such a key):
    // bound to one, a key could never use a gateway scope.
    const gatewayScopes = scopes.filter((s) => s !== ApiKeyScope.Ingest);
    if (input.clientCertSubject && gatewayScopes.length) {
      throw new InvalidError(
        `clientCertSubject: a key bound to a client certificate can be used only at the ingest port; ` +
          `its scopes must be ingest alone, not ${gatewayScopes.join(', ')}`,
        [{ path: 'clientCertSubject', message: `needs scopes ["ingest"] only, not ${gatewayScopes.join(', ')}` }],
      );
    }
    const { key, prefix, keyHash } = generateApiKey();
    const record = await this.keys
      .create({
        name: input.name,
        prefix,
        keyHash,
        scopes,
        allowedCidrs,
        clientCertSubject: input.clientCertSubject ?? null,
        createdBy: actor.id,
        createdByName: actor.name,
      })
      .catch((err: unknown) => {
        // The user was deleted while this request was on its way (their sessions go with them): as a request after.
        if (err instanceof NotFoundError) throw new UnauthorizedError('this account no longer exists');
        throw err;
      });
    return { id: record.id, key, name: record.name, scopes: record.scopes, prefix: record.prefix };
  }

  /** Unrevoked keys, newest first; never the key or its hash. */
  async list(): Promise<ApiKeyView[]> {
    return (await this.keys.list()).map(toApiKeyView);
  }

  async revoke(actor: Principal, id: string): Promise<void> {
    const key = await this.keys.findById(id);
    if (!key || key.revokedAt) throw new NotFoundError(`API key ${id} not found`);
    this.assertMayManage(actor, key.scopes, 'revoke');
    if (!(await this.keys.revoke(id))) throw new NotFoundError(`API key ${id} not found`);
    // This replica stops accepting it at once; others (and status-ingest) within their cache TTL. The bounded lookups
    // under the verifier stop sharing a query of its prefix under way and drop an answer kept for a retry: either may
    // have read the row before the revoke, and the verifier's look-again after forget() would be handed it back.
    this.lookups.forget(`key:${key.prefix}`);
    this.verifier.forget(id);
  }

  private assertMayManage(actor: Principal, scopes: readonly string[], verb: string): void {
    const needed = roleToManageApiKey(scopes);
    if (!roleAtLeast(actor.role, needed))
      throw new ForbiddenError(`only ${needed}s may ${verb} a key with scopes ${scopes.join(', ')}`);
  }
}
