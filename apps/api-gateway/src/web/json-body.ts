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
 * Where a parsed JSON value holds a key Fastify's parser refuses (secure-json-parse: an own `__proto__` key, or a
 * `constructor` key whose object holds `prototype`), found as it searches (level by level), with its path
 * (`labels.__proto__`, `checks.0.headers.__proto__`: the path a schema's issue would have), or null. No recursion.
 */
export function forbiddenKeyAt(
  value: unknown,
  refuse: { proto: boolean; constructor: boolean },
): { path: string; message: string } | null {
  // Each step links to its parent: a path is built only for the key found (copying one per object cost a 1 MiB body
  // of small objects three times what parsing it did).
  type Step = { node: object; key: string; parent: Step | null };
  const pathOf = (step: Step, last: string) => {
    const keys = [last];
    for (let s: Step | null = step; s !== null && s.parent !== null; s = s.parent) keys.push(s.key);
    return keys.reverse().join('.');
  };
  if (value === null || typeof value !== 'object') return null;
  let level: Step[] = [{ node: value, key: '', parent: null }];
  while (level.length > 0) {
    const next: Step[] = [];
    for (const step of level) {
      const node = step.node;
      if (refuse.proto && Object.hasOwn(node, '__proto__'))
        return { path: pathOf(step, '__proto__'), message: 'the key "__proto__" is not allowed' };
      const ctor = Object.hasOwn(node, 'constructor') ? (node as { constructor: unknown }).constructor : undefined;
      if (refuse.constructor && ctor !== null && typeof ctor === 'object' && Object.hasOwn(ctor, 'prototype'))
        return {
          path: pathOf(step, 'constructor'),
          message: 'the key "constructor" holding a "prototype" key is not allowed',
        };
      for (const k in node) {
        const v = (node as Record<string, unknown>)[k];
        if (v !== null && typeof v === 'object') next.push({ node: v, key: k, parent: step });
      }
    }
    level = next;
  }
  return null;
}

/**
 * Replaces the JSON parser Nest registers (Fastify's own, `__proto__` and `constructor` keys refused) by the same
 * parser behind two checks, each a 400 naming the body: bytes that are not UTF-8 (read as U+FFFD before: stored as
 * something else than was sent) and nesting past MAX_JSON_BODY_DEPTH, before anything walks it; a key the parser
 * refuses is a 400 naming it by its path (forbiddenKeyAt). Nest adds its parsers during init, before module init hooks:
 * this runs after them, before listen.
 */
@Injectable()
export class JsonBodyParser implements OnModuleInit {
  constructor(private readonly adapterHost: HttpAdapterHost) {}

  onModuleInit(): void {
    const fastify = this.adapterHost.httpAdapter?.getInstance<FastifyInstance>();
    if (!fastify || typeof fastify.addContentTypeParser !== 'function') return;
    const { bodyLimit, onProtoPoisoning, onConstructorPoisoning } = fastify.initialConfig;
    const protoAction = onProtoPoisoning ?? 'error';
    const constructorAction = onConstructorPoisoning ?? 'error';
    const parse = fastify.getDefaultJsonParser(protoAction, constructorAction);
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
      parse(request, text, (err, value) => {
        // Fastify's parser answers a refused `__proto__` or `constructor.prototype` key as "Body is not valid JSON",
        // naming neither the key nor where: it is valid JSON, so the 400 names the field, as a YAML import does.
        if (err && (protoAction === 'error' || constructorAction === 'error')) {
          let forbidden: ReturnType<typeof forbiddenKeyAt> = null;
          try {
            forbidden = forbiddenKeyAt(JSON.parse(text), {
              proto: protoAction === 'error',
              constructor: constructorAction === 'error',
            });
          } catch {
            // not JSON: Fastify's answer stands
          }
          if (forbidden)
            return done(new InvalidError(`${forbidden.path}: ${forbidden.message}`, [forbidden]), undefined);
        }
        done(err, value);
      });
    });
  }
}
