import { Logger, type ArgumentsHost } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { UnavailableError } from '@fleetwatch/domain';
import { ApiErrorFilter } from '@fleetwatch/observability';
import type { AlertConfigRepository, StatusPagesRepository } from '@fleetwatch/persistence';
import { PublicStatusController } from './public-status.controller';
import { PublicStatusService } from './public-status.service';

// The public status page's controller over the real service (repository faked): the headers of a 404 served from the
// gateway's cache of misses, and how a database failure is answered and logged.

function replyDouble() {
  const headers: Record<string, string> = {};
  const reply = {
    header(name: string, value: string) {
      headers[name.toLowerCase()] = value;
      return reply;
    },
  };
  return { headers, reply: reply as unknown as FastifyReply };
}

function controllerOver(findBySlug: () => Promise<unknown>, now: () => number) {
  const service = new PublicStatusService(
    { findBySlug } as unknown as StatusPagesRepository,
    { all: async () => [] } as unknown as AlertConfigRepository,
    { cacheMs: 15_000, perAddressPerMinute: 120, site: 'here', now },
  );
  return new PublicStatusController(service);
}

const request = { ip: '192.0.2.1' } as FastifyRequest;

afterEach(() => jest.restoreAllMocks());

it('a 404 from the cache of misses carries its Age: a shared cache keeps it no longer than the gateway does', async () => {
  let now = Date.UTC(2026, 11, 7, 12);
  const controller = controllerOver(
    async () => null,
    () => now,
  );
  const first = replyDouble();
  await expect(controller.get('new-page', request, first.reply)).rejects.toMatchObject({ kind: 'not_found' });
  expect(first.headers).toEqual({ 'cache-control': 'public, max-age=15', age: '0' });
  // 14 s on, the gateway still answers from its miss: a cache told max-age=15 and no Age would keep it 15 s more.
  now += 14_500;
  const later = replyDouble();
  await expect(controller.get('new-page', request, later.reply)).rejects.toMatchObject({ kind: 'not_found' });
  expect(later.headers).toEqual({ 'cache-control': 'public, max-age=15', age: '14' });
});

it('a database failure: the visitor gets a bare 503, its words are logged once, by the controller alone', async () => {
  const warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
  jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
  const controller = controllerOver(async () => {
    throw new UnavailableError('database unavailable: relation "status_pages" does not exist (42P01)', 5, '42P01');
  }, Date.now);
  const thrown = await controller.get('some-page', request, replyDouble().reply).catch((e: unknown) => e);

  const sent: { status?: number; body?: unknown } = {};
  const res = {
    sent: false,
    status: (s: number) => ((sent.status = s), res),
    headers: () => res,
    send: (b: unknown) => ((sent.body = b), res),
  };
  const host = { getType: () => 'http', switchToHttp: () => ({ getResponse: () => res }) } as unknown as ArgumentsHost;
  new ApiErrorFilter().catch(thrown, host);

  expect(sent.status).toBe(503);
  expect(JSON.stringify(sent.body)).not.toMatch(/status_pages|relation|42P01|database/);
  // One line, with the database's words: the filter's outage line (shared by every route, once per 10 s) is not
  // spent on "status page temporarily unavailable".
  expect(warn.mock.calls.map((c) => String(c[0]))).toEqual([expect.stringContaining('relation "status_pages"')]);
});
