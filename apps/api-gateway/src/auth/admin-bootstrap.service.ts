import { Inject, Injectable, OnApplicationBootstrap } from '@nestjs/common';
import type { Logger } from 'pino';
import { UserRole } from '@fleetwatch/contracts';
import { FLEETWATCH_LOGGER } from '@fleetwatch/observability';
import { UsersRepository } from '@fleetwatch/persistence';
import type { GatewayConfig } from '../config';
import { GATEWAY_CONFIG } from '../tokens';
import { PasswordHasher } from './password-hasher.service';

export const BOOTSTRAP_ADMIN = 'admin';
/** The least length of a password set through the API (contracts); a shorter FLEETWATCH_ADMIN_PASSWORD is warned about. */
const MIN_PASSWORD_LENGTH = 8;

/**
 * First start with no users creates `admin` (SPEC §11) with FLEETWATCH_ADMIN_PASSWORD,
 * else with a generated password printed once to stdout — straight to the terminal,
 * never through the logger, so it lands in no log pipeline as a structured field.
 * Replicas starting together are safe: the repository creates it under an advisory
 * lock, and only the replica that created it prints.
 */
@Injectable()
export class AdminBootstrapService implements OnApplicationBootstrap {
  constructor(
    private readonly users: UsersRepository,
    private readonly hasher: PasswordHasher,
    @Inject(GATEWAY_CONFIG) private readonly config: GatewayConfig,
    @Inject(FLEETWATCH_LOGGER) private readonly logger: Logger,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    if ((await this.users.count()) > 0) return;
    const generated = this.config.adminPassword === undefined;
    const password = this.config.adminPassword ?? this.hasher.generatePassword();
    const created = await this.users.createIfNoUsers({
      username: BOOTSTRAP_ADMIN,
      passwordHash: await this.hasher.hash(password),
      role: UserRole.Admin,
    });
    if (!created) return;
    this.logger.info(
      {
        username: BOOTSTRAP_ADMIN,
        passwordSource: generated ? 'generated (printed once to stdout)' : 'FLEETWATCH_ADMIN_PASSWORD',
      },
      'created the first user',
    );
    if (generated) process.stdout.write(banner(password));
    else if (password.length < MIN_PASSWORD_LENGTH)
      this.logger.warn(
        { username: BOOTSTRAP_ADMIN },
        `FLEETWATCH_ADMIN_PASSWORD is shorter than ${MIN_PASSWORD_LENGTH} characters: change it (PUT /api/v1/auth/password)`,
      );
  }
}

function banner(password: string): string {
  const rule = '='.repeat(72);
  return [
    '',
    rule,
    ` Fleetwatch: no users existed, so the first user "${BOOTSTRAP_ADMIN}" was created.`,
    ' Its generated password (shown this once, never logged or stored in clear):',
    '',
    `     ${password}`,
    '',
    ' Sign in at the dashboard or POST /api/v1/auth/login, then change it',
    ' (PUT /api/v1/auth/password). To choose it instead, set',
    ' FLEETWATCH_ADMIN_PASSWORD before the first start.',
    rule,
    '',
    '',
  ].join('\n');
}
