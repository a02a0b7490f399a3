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

/**
 * Replaces the JSON parser Nest registers (Fastify's own, `__proto__` and `constructor` keys refused) by the same
 * parser behind a depth check: a body nested past MAX_JSON_BODY_DEPTH is a 400 naming the body before anything walks
 * it. Nest adds its parsers during init, before module init hooks: this runs after them, before listen.
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
    fastify.addContentTypeParser('application/json', { parseAs: 'string', bodyLimit }, (request, body, done) => {
      const at = nestingPastAt(body as string, MAX_JSON_BODY_DEPTH);
      if (at < 0) return parse(request, body as string, done);
      const message = `nested deeper than ${MAX_JSON_BODY_DEPTH} levels of arrays and objects (at offset ${at})`;
      done(new InvalidError(`body: ${message}`, [{ path: '(body)', message }]), undefined);
    });
  }
}
