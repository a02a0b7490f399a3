import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { resolve } from 'node:path';
import type { Logger } from 'pino';
import type { GatewayConfig } from './config';
import { AuthService } from './auth/auth.service';
import { serveDashboard } from './web/dashboard.static';
import { registerSecurityHeaders } from './web/security-headers';
import { setupOpenApi } from './web/openapi';
import { WsHub } from './ws/ws-hub.service';
import { registerWebSocket } from './ws/ws.route';

/** Where the built dashboard lies relative to dist/apps/api-gateway/src/main.js. */
/** Ids travel URL-encoded in the gateway's paths: a 256-character id of astral characters is ~1.5 KB encoded. */
export const GATEWAY_MAX_PARAM_LENGTH = 4096;

export const DEFAULT_DASHBOARD_DIR = resolve(__dirname, '../../dashboard');

/**
 * The gateway's wiring before listen (bootstrapService `configure`): security headers on
 * every answer, the WebSocket at /ws, OpenAPI, then the dashboard catch-all.
 */
export async function configureGateway(
  app: NestFastifyApplication,
  logger: Logger,
  config: GatewayConfig,
): Promise<void> {
  const fastify = app.getHttpAdapter().getInstance();
  registerSecurityHeaders(fastify);
  await registerWebSocket(app, app.get(WsHub), app.get(AuthService), config, logger);
  setupOpenApi(app, process.env.FLEETWATCH_VERSION ?? '0.1.0');
  await serveDashboard(app, config.dashboardDir ?? DEFAULT_DASHBOARD_DIR, logger);
}
