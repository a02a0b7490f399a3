import { Inject, Injectable } from '@nestjs/common';
import { ApiKeyScope } from '@fleetwatch/contracts';
import { ForbiddenError, UnauthorizedError } from '@fleetwatch/domain';
import { ApiKeysRepository, ApiKeyVerifier, type VerifiedApiKey } from '@fleetwatch/persistence';
import type { IngestConfig } from '../config';
import type { ClientCertificate } from '../http/tls';
import { INGEST_CONFIG } from '../tokens';
import { IpAllowList } from './ip-allow-list';

/** A verified key, as the request carries it on. */
export interface AuthenticatedKey {
  id: string;
  scopes: ReadonlySet<string>;
  allowList: IpAllowList;
  /** Subject CN the client certificate must carry; null: none needed. */
  certSubject: string | null;
}

/**
 * Bearer API keys at the ingest edge. Keys live hashed in `api_keys` (owner:
 * api-gateway); persistence's ApiKeyVerifier (the one the gateway uses too) checks
 * them: random or mistyped keys cost no query, verdicts are cached for
 * `authCacheMs` (≤ 4 s, default 2 s), so a revoked key stops working within that
 * time plus one lookup. This adds what the ingest edge asks of a key: the
 * `ingest` scope and the client address inside the key's allow-list.
 */
@Injectable()
export class ApiKeyAuthService {
  private readonly verifier: ApiKeyVerifier;
  /** Keyed by the verifier's cached record, so a hot key's allow-list is parsed once per verdict. */
  private readonly authenticated = new WeakMap<VerifiedApiKey, AuthenticatedKey>();

  constructor(keys: ApiKeysRepository, @Inject(INGEST_CONFIG) config: IngestConfig) {
    this.verifier = new ApiKeyVerifier(keys, { cacheTtlMs: config.authCacheMs });
  }

  /**
   * Resolves the key in `authorization` (`Bearer <key>`) and checks it may
   * ingest from `ip`. Throws UnauthorizedError (missing, malformed, unknown,
   * revoked) or ForbiddenError (no `ingest` scope, address not allowed, client
   * certificate missing or for another subject than the key requires).
   */
  async authenticate(
    authorization: string | undefined,
    ip: string,
    certificate: ClientCertificate | null = null,
  ): Promise<AuthenticatedKey> {
    const key = this.authenticatedOf(await this.verifier.verify(bearerOf(authorization)));
    if (!key.scopes.has(ApiKeyScope.Ingest)) throw new ForbiddenError('this API key lacks the "ingest" scope');
    if (!key.allowList.allows(ip)) throw new ForbiddenError(`this API key may not be used from ${ip}`);
    if (key.certSubject !== null && certificate?.subject !== key.certSubject) {
      throw new ForbiddenError(
        certificate
          ? `this API key needs a client certificate for "${key.certSubject}", not "${certificate.subject}"`
          : `this API key needs a client certificate (subject "${key.certSubject}")`,
      );
    }
    return key;
  }

  /** Forgets every verdict (tests, or an operator who must cut a key at once). */
  clear(): void {
    this.verifier.clear();
  }

  private authenticatedOf(verified: VerifiedApiKey): AuthenticatedKey {
    let key = this.authenticated.get(verified);
    if (!key) {
      key = {
        id: verified.id,
        scopes: new Set(verified.scopes),
        allowList: new IpAllowList(verified.allowedCidrs),
        certSubject: verified.clientCertSubject,
      };
      this.authenticated.set(verified, key);
    }
    return key;
  }
}

function bearerOf(authorization: string | undefined): string {
  if (!authorization) throw new UnauthorizedError('missing API key: send "Authorization: Bearer <key>"');
  const m = /^Bearer[ \t]+(\S{1,512})[ \t]*$/i.exec(authorization);
  if (!m) throw new UnauthorizedError('malformed Authorization header: expected "Bearer <key>"');
  return m[1];
}
