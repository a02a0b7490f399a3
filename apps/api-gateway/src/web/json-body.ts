import { Injectable, OnModuleInit } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { InvalidError } from '@fleetwatch/domain';
import type { FastifyInstance } from 'fastify';

/**
 * The deepest JSON body the gateway reads. No request schema comes near it (a property value is at most 32 levels,
 * metadata 8); past it, the walks over a parsed body (`objectBody`, zod, JSON.stringify for the bus) overflowed the
 * stack — 100,000 levels fit in the 1 MiB body limit — and answered 500.
 */
export const MAX_JSON_BODY_DEPTH = 64;

/** The offset of the first `[` or `{` (outside strings) that opens a level past `max`, or -1. One pass, no recursion. */
export function nestingPastAt(text: string, max: number): number {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // a backslash: the next character is escaped
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) return i;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return -1;
}

/** The offset of the first byte that is not part of well-formed UTF-8 (overlong forms and surrogates included), or -1. */
export function firstInvalidUtf8(bytes: Uint8Array): number {
  for (let i = 0; i < bytes.length;) {
    const c = bytes[i];
    if (c < 0x80) {
      i++;
      continue;
    }
    const more = c >= 0xc2 && c <= 0xdf ? 1 : c >= 0xe0 && c <= 0xef ? 2 : c >= 0xf0 && c <= 0xf4 ? 3 : -1;
    if (more < 0 || i + more >= bytes.length) return i;
    for (let k = 1; k <= more; k++) if ((bytes[i + k] & 0xc0) !== 0x80) return i;
    const next = bytes[i + 1];
    if (
      (c === 0xe0 && next < 0xa0) ||
      (c === 0xed && next > 0x9f) ||
      (c === 0xf0 && next < 0x90) ||
      (c === 0xf4 && next > 0x8f)
    )
      return i;
    i += more + 1;
  }
  return -1;
}

/**
 * Replaces the JSON parser Nest registers (Fastify's own, `__proto__` and `constructor` keys refused) by the same
 * parser behind two checks, each a 400 naming the body: bytes that are not UTF-8 (read as U+FFFD before: stored as
 * something else than was sent) and nesting past MAX_JSON_BODY_DEPTH, before anything walks it. Nest adds its parsers
 * during init, before module init hooks: this runs after them, before listen.
 */
@Injectable()
export class JsonBodyParser implements OnModuleInit {
  constructor(private readonly adapterHost: HttpAdapterHost) {}

  onModuleInit(): void {
    const fastify = this.adapterHost.httpAdapter?.getInstance<FastifyInstance>();
    if (!fastify || typeof fastify.addContentTypeParser !== 'function') return;
    const { bodyLimit, onProtoPoisoning, onConstructorPoisoning } = fastify.initialConfig;
    const parse = fastify.getDefaultJsonParser(onProtoPoisoning ?? 'error', onConstructorPoisoning ?? 'error');
    if (fastify.hasContentTypeParser('application/json')) fastify.removeContentTypeParser('application/json');
    // Nest also reads form bodies, which no route takes: `value=a&value=b` became an array, past every check above.
    // A form body is a 415, as status-ingest answers it; an empty one is no body (`curl -d '' -X POST …/expire` sends
    // the form type with nothing, for the routes that read none).
    if (fastify.hasContentTypeParser('application/x-www-form-urlencoded'))
      fastify.removeContentTypeParser('application/x-www-form-urlencoded');
    fastify.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'buffer' }, (_request, body, done) => {
      if ((body as Buffer).length === 0) return done(null, undefined);
      const err = Object.assign(new Error('Unsupported Media Type: application/x-www-form-urlencoded (send JSON)'), {
        statusCode: 415,
        code: 'FST_ERR_CTP_INVALID_MEDIA_TYPE',
      });
      done(err, undefined);
    });
    // As bytes (as Nest read them): Fastify's own string reading takes bad UTF-8 for a wrong Content-Length.
    fastify.addContentTypeParser('application/json', { parseAs: 'buffer', bodyLimit }, (request, body, done) => {
      const refuse = (message: string) => done(new InvalidError(`body: ${message}`, [{ path: '(body)', message }]));
      const bad = firstInvalidUtf8(body as Buffer);
      if (bad >= 0) return refuse(`not valid UTF-8 (at byte ${bad})`);
      const text = (body as Buffer).toString('utf8');
      const at = nestingPastAt(text, MAX_JSON_BODY_DEPTH);
      if (at >= 0)
        return refuse(`nested deeper than ${MAX_JSON_BODY_DEPTH} levels of arrays and objects (at offset ${at})`);
      parse(request, text, done);
    });
  }
}
