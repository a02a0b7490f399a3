import { Inject, Injectable } from '@nestjs/common';
import { ApiKeyScope, rateLimitKeyOf } from '@fleetwatch/contracts';
import { ForbiddenError, RateLimitedError, UnauthorizedError } from '@fleetwatch/domain';
import { ApiKeysRepository, ApiKeyVerifier, type VerifiedApiKey } from '@fleetwatch/persistence';
import type { IngestConfig } from '../config';
import type { ClientCertificate } from '../http/tls';
import { KeyedRateLimiter } from '../limits/rate-limiter';
import { INGEST_CONFIG } from '../tokens';
import { ApiKeyUseReporter } from './api-key-use.recorder';
import { IpAllowList } from './ip-allow-list';
import { KeyLookups } from './key-lookups';

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
 * `ingest` scope and the client address inside the key's allow-list. An address
 * whose keys were refused (401) more than INGEST_AUTH_FAILURES_PER_IP_PER_MINUTE
 * times lately is answered 429 before any lookup (a forged key with a valid
 * checksum costs a query). An IPv6 client is counted by its /64, as logins and
 * status pages count it (one host usually holds a whole /64: counting /128s would
 * let it rotate addresses past the budget). Counted in this replica's memory, so a
 * request with a good key reads one bucket and pays no Redis round trip; N replicas
 * allow N times as many.
 */
@Injectable()
export class ApiKeyAuthService {
  private readonly verifier: ApiKeyVerifier;
  /** Keyed by the verifier's cached record, so a hot key's allow-list is parsed once per verdict. */
  private readonly authenticated = new WeakMap<VerifiedApiKey, AuthenticatedKey>();
  /** Refused keys per client address (the address the allow-lists read; an IPv6 one by its /64). */
  private readonly failures: KeyedRateLimiter;
  /** Key lookups under way per address that has refused keys in its budget (see authenticate). */
  private readonly verifying = new Map<string, number>();

  constructor(
    keys: ApiKeysRepository,
    @Inject(INGEST_CONFIG) config: IngestConfig,
    private readonly uses: ApiKeyUseReporter,
    lookups: KeyLookups,
  ) {
    // Lookups bounded in time and number: a hanging database answers an uncached key 503 promptly (KeyLookups).
    this.verifier = new ApiKeyVerifier(lookups.apiKeys(keys), { cacheTtlMs: config.authCacheMs });
    const perMinute = config.authFailuresPerIpPerMinute;
    this.failures = new KeyedRateLimiter(perMinute / 60, perMinute);
  }

  /**
   * Resolves the key in `authorization` (`Bearer <key>`) and checks it may
   * ingest from `ip`. Throws UnauthorizedError (missing, malformed, unknown,
   * revoked), RateLimitedError (too many of those from `ip` lately, before any
   * lookup) or ForbiddenError (no `ingest` scope, address not allowed, client
   * certificate missing or for another subject than the key requires).
   */
  async authenticate(
    authorization: string | undefined,
    ip: string,
    certificate: ClientCertificate | null = null,
    now: number = Date.now(),
  ): Promise<AuthenticatedKey> {
    // An IPv6 client by its /64. A socket's IPv4 address is already in the form rateLimitKeyOf gives: not parsed.
    const counted = ip.includes(':') ? rateLimitKeyOf(ip) : ip;
    // An address with refused keys lately also pays for its lookups under way: each may be one more refusal, so
    // forged keys sent all at once cost no more queries than one after another (an address with none pays nothing).
    const suspect = this.failures.has(counted);
    const underWay = suspect ? (this.verifying.get(counted) ?? 0) : 0;
    const budget = this.failures.peek(counted, Math.min(1 + underWay, this.failures.burst), now);
    if (!budget.allowed)
      throw new RateLimitedError(
        `too many refused API keys from ${counted === ip ? ip : `${ip} (counted as ${counted})`}; retry in ${Math.ceil(budget.retryAfterSeconds)} s`,
        budget.retryAfterSeconds,
      );
    if (suspect) this.verifying.set(counted, underWay + 1);
    let verified: VerifiedApiKey;
    try {
      verified = await this.verifier.verify(bearerOf(authorization));
    } catch (err) {
      if (err instanceof UnauthorizedError) this.failures.take(counted, 1, now);
      throw err;
    } finally {
      if (suspect) {
        const left = (this.verifying.get(counted) ?? 1) - 1;
        if (left > 0) this.verifying.set(counted, left);
        else this.verifying.delete(counted);
      }
    }
    const key = this.authenticatedOf(verified);
    if (!key.scopes.has(ApiKeyScope.Ingest)) throw new ForbiddenError('this API key lacks the "ingest" scope');
    if (!key.allowList.allows(ip)) throw new ForbiddenError(`this API key may not be used from ${ip}`);
    if (key.certSubject !== null && certificate?.subject !== key.certSubject) {
      throw new ForbiddenError(
        certificate
          ? `this API key needs a client certificate for "${key.certSubject}", not "${certificate.subject}"`
          : `this API key needs a client certificate (subject "${key.certSubject}")`,
      );
    }
    // Its last use, reported to the gateway in the background (api_keys is the gateway's to write).
    this.uses.record(key.id);
    return key;
  }

  /** Forgets the refused-key budgets of addresses that have refilled completely. */
  sweep(now: number = Date.now()): void {
    this.failures.sweep(now);
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
