import type { Provider } from '@nestjs/common';
import { ApiKeysRepository, ApiKeyVerifier } from '@fleetwatch/persistence';
import { CredentialLookups } from './credential-lookups';
import type { GatewayConfig } from '../config';
import { LIVE_STATE_REDIS, RateBuckets } from '@fleetwatch/live-state';
import type { Redis } from 'ioredis';
import { LOGIN_RATE_LIMITER, RedisLoginRateLimiter } from './login-rate-limiter';

/** How long the gateway remembers an API-key verdict; a key revoked here is forgotten at once. */
const API_KEY_CACHE_MS = 2000;

/** Retry-After of a 503 for a credential lookup that timed out or found the lookups full. */
const CREDENTIAL_RETRY_AFTER_SECONDS = 2;

/** The credential checks AuthService and ApiKeysService share. */
export function authProviders(config: GatewayConfig): Provider[] {
  return [
    {
      provide: CredentialLookups,
      useFactory: () =>
        new CredentialLookups({
          timeoutMs: config.credentialLookupTimeoutMs,
          maxConcurrent: config.credentialLookupMaxConcurrent,
          retryAfterSeconds: CREDENTIAL_RETRY_AFTER_SECONDS,
        }),
    },
    {
      provide: ApiKeyVerifier,
      useFactory: (keys: ApiKeysRepository, lookups: CredentialLookups) =>
        new ApiKeyVerifier(lookups.apiKeys(keys), { cacheTtlMs: API_KEY_CACHE_MS }),
      inject: [ApiKeysRepository, CredentialLookups],
    },
    {
      // Shared by every gateway replica.
      provide: LOGIN_RATE_LIMITER,
      inject: [LIVE_STATE_REDIS],
      useFactory: (redis: Redis) =>
        new RedisLoginRateLimiter(new RateBuckets(redis), {
          perUsernamePerMinute: config.loginRatePerMinute,
          perAddressPerMinute: config.loginIpRatePerMinute,
        }),
    },
  ];
}
