import fastifyStatic from '@fastify/static';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { statSync } from 'node:fs';
import { extname, normalize, resolve, sep } from 'node:path';
import type { Logger } from 'pino';
import { ApiErrorBody, ApiErrorCode } from '@fleetwatch/contracts';

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

function notFound(reply: FastifyReply, message: string): FastifyReply {
  const body: ApiErrorBody = { error: { code: ApiErrorCode.NotFound, message } };
  return reply.status(404).header('cache-control', 'no-store').send(body);
}

/**
 * The built dashboard at `/` (SPEC §11). Files are served as they are; any other
 * non-API path gets index.html so the single-page app routes it (a deep link such as
 * /targets/instance:web-1 works after a reload). Nothing under /api falls back: an
 * unknown API path is a 404 JSON error, never HTML. Nest routes (/api/v1/…, /healthz,
 * /metrics) and /api/docs are more specific than this catch-all and always win.
 */
export async function serveDashboard(app: NestFastifyApplication, directory: string, logger: Logger): Promise<void> {
  const root = resolve(directory);
  const available = isFile(resolve(root, 'index.html'));
  if (available) await app.register(fastifyStatic, { root, serve: false });
  else
    logger.warn(
      { directory: root },
      'dashboard not built (no index.html): / answers 404; run `npm run build` or set DASHBOARD_DIR',
    );

  app
    .getHttpAdapter()
    .getInstance()
    .get('/*', (request: FastifyRequest, reply: FastifyReply) => {
      let path: string;
      try {
        path = decodeURIComponent(request.url.split('?')[0]);
      } catch {
        return notFound(reply, 'malformed path');
      }
      if (path === '/api' || path.startsWith('/api/')) return notFound(reply, `no API route GET ${path}`);
      if (!available) return notFound(reply, 'the dashboard is not built on this server (npm run build)');
      const relative = normalize(path).replace(/^[/\\]+/, '');
      const absolute = resolve(root, relative);
      if (absolute !== root && !absolute.startsWith(root + sep)) return notFound(reply, 'not found');
      if (relative && isFile(absolute)) return reply.sendFile(relative);
      // A missing asset (script, image) is a 404, not the app's HTML.
      if (extname(relative) && extname(relative) !== '.html') return notFound(reply, `no file ${path}`);
      return reply.header('cache-control', 'no-cache').sendFile('index.html');
    });
}
