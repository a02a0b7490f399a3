import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { OPENAPI_PATH } from './openapi';

/** A Host header we are willing to echo into connect-src (no spaces, semicolons or quotes). */
const SAFE_HOST = /^[A-Za-z0-9.-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$/;

/**
 * The Content-Security-Policy of every answer (issue 17). No inline script anywhere: the
 * dashboard is a Vite build (module scripts from files), and an injected `<script>` or
 * `onerror=` in stored text cannot run. `connect-src` names the same origin's ws(s) as
 * well as 'self', for browsers that do not read 'self' as covering WebSocket schemes.
 * Swagger UI (/api/docs) ships an inline `<style>`: only there are inline styles allowed.
 */
export function contentSecurityPolicy(host: string | undefined, path: string): string {
  const sockets = host && SAFE_HOST.test(host) ? ` ws://${host} wss://${host}` : '';
  const docs = path === `/${OPENAPI_PATH}` || path.startsWith(`/${OPENAPI_PATH}/`);
  return [
    "default-src 'self'",
    "script-src 'self'",
    `style-src 'self'${docs ? " 'unsafe-inline'" : ''}`,
    "img-src 'self' data:",
    "font-src 'self'",
    `connect-src 'self'${sockets}`,
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join('; ');
}

export const STATIC_SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'permissions-policy': 'camera=(), microphone=(), geolocation=()',
};

/**
 * Sends the security headers on every answer Fastify sends: API JSON, errors, the
 * dashboard's files, the SPA fallback and the OpenAPI pages. HSTS only over TLS
 * (directly or from a trusted proxy's X-Forwarded-Proto: Fastify's `request.protocol`).
 */
export function registerSecurityHeaders(fastify: FastifyInstance): void {
  fastify.addHook('onSend', async (request: FastifyRequest, reply: FastifyReply) => {
    const path = request.url.split('?')[0];
    void reply.headers(STATIC_SECURITY_HEADERS);
    void reply.header('content-security-policy', contentSecurityPolicy(request.headers.host, path));
    if (request.protocol === 'https') void reply.header('strict-transport-security', 'max-age=31536000');
  });
}
