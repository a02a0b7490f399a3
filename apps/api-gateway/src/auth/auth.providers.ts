import type { Provider } from '@nestjs/common';
import { ApiKeysRepository, ApiKeyVerifier } from '@fleetwatch/persistence';
import type { GatewayConfig } from '../config';
import { InMemoryLoginRateLimiter, LOGIN_RATE_LIMITER } from './login-rate-limiter';

/** How long the gateway remembers an API-key verdict; a key revoked here is forgotten at once. */
const API_KEY_CACHE_MS = 2000;

/** The credential checks AuthService and ApiKeysService share. */
export function authProviders(config: GatewayConfig): Provider[] {
  return [
    {
      provide: ApiKeyVerifier,
      useFactory: (keys: ApiKeysRepository) => new ApiKeyVerifier(keys, { cacheTtlMs: API_KEY_CACHE_MS }),
      inject: [ApiKeysRepository],
    },
    {
      provide: LOGIN_RATE_LIMITER,
      useValue: new InMemoryLoginRateLimiter({
        perUsernamePerMinute: config.loginRatePerMinute,
        perAddressPerMinute: config.loginIpRatePerMinute,
      }),
    },
  ];
}
