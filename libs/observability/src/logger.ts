import { LoggerService } from '@nestjs/common';
import pino, { Logger } from 'pino';

/** Nest injection token of the service's pino logger (bootstrap provides it; here so health.ts needs no cycle). */
export const FLEETWATCH_LOGGER = Symbol('FLEETWATCH_LOGGER');

/** Paths whose values never reach a log line. */
export const REDACT_PATHS = [
  'password',
  '*.password',
  'token',
  '*.token',
  'key',
  '*.key',
  'secret',
  '*.secret',
  'authorization',
  '*.authorization',
  'headers.authorization',
  'req.headers.authorization',
  'req.headers.cookie',
  'apiKey',
  '*.apiKey',
  'databaseUrl',
  'amqpUrl',
  'redisUrl',
];

// The user may be empty (`redis://:password@host`, the usual form of a Redis URL); the scheme is case-insensitive,
// and so is `Bearer` (HTTP reads it either way).
const URL_CREDENTIALS = /([a-z][a-z0-9+.-]*:\/\/[^:/@\s]*:)[^@\s]+@/gi;
const BEARER = /(Bearer\s+)[A-Za-z0-9._~+/=-]+/gi;

/** Masks credentials that slip into free text (URLs with passwords, bearer tokens). */
export function maskSecrets(text: string): string {
  return text.replace(URL_CREDENTIALS, '$1***@').replace(BEARER, '$1***');
}

/**
 * Redis commands whose arguments hold a credential. ioredis puts the command an error answers on the error
 * (`command: {name, args}`): a refused `HELLO 3 AUTH <user> <password>` (a wrong or rotated password) carried the
 * password into every `logger.warn({ err }, …)` of a reconnecting client.
 */
const CREDENTIAL_COMMANDS = new Set(['auth', 'hello', 'migrate', 'acl', 'config']);

/** Objects one serialized error may expand into: past this, what is left is written as `[Truncated]`. */
const MAX_SCRUBBED_OBJECTS = 2000;

interface ScrubState {
  /** The objects on the path from the error down to here: one met again is a cycle. */
  path: Set<object>;
  objects: number;
}

function scrubbed(value: unknown, depth: number, state: ScrubState): unknown {
  if (typeof value === 'string') return maskSecrets(value);
  if (value === null || typeof value !== 'object') return value;
  // Deeper than this, what pino's stringify writes of an object (handed on as it was, its texts went unmasked).
  if (depth > 8) return Array.isArray(value) ? '[Array]' : '[Object]';
  // An error's own properties may be any object graph (a socket, a request): walked as a tree, a cycle expanded
  // 8 levels deep into (keys)^8 copies and a log line could exhaust the heap. pino's stringify writes [Circular].
  if (state.path.has(value)) return '[Circular]';
  if (++state.objects > MAX_SCRUBBED_OBJECTS) return '[Truncated]';
  state.path.add(value);
  try {
    // What JSON would write of it (a Date its ISO text, a Buffer {type, data}), as pino's stringify did.
    const toJSON = (value as { toJSON?: unknown }).toJSON;
    if (typeof toJSON === 'function') return scrubbed(toJSON.call(value), depth + 1, state);
    if (Array.isArray(value)) return value.map((v) => scrubbed(v, depth + 1, state));
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = scrubbed(v, depth + 1, state);
    const command = out['command'] as { name?: unknown; args?: unknown } | undefined;
    if (
      command &&
      typeof command === 'object' &&
      typeof command.name === 'string' &&
      CREDENTIAL_COMMANDS.has(command.name.toLowerCase()) &&
      command.args !== undefined
    )
      out['command'] = { ...command, args: '***' };
    return out;
  } catch {
    // A property that throws when read (a getter, a revoked proxy): the log line is written without it.
    return '[Unreadable]';
  } finally {
    state.path.delete(value);
  }
}

/**
 * pino's error serializer (type, message, stack, the error's own properties, causes), then every text in it masked
 * (maskSecrets) and the arguments of a credential-carrying Redis command withheld.
 */
export function serializeError(err: unknown): unknown {
  return scrubbed(pino.stdSerializers.err(err as Error), 0, { path: new Set(), objects: 0 });
}

export function createLogger(service: string, level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service, pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: REDACT_PATHS, censor: '***' },
      serializers: { err: serializeError },
      formatters: { level: (label) => ({ level: label }) },
      hooks: {
        logMethod(args, method) {
          const masked = args.map((a) => (typeof a === 'string' ? maskSecrets(a) : a)) as Parameters<typeof method>;
          method.apply(this, masked);
        },
      },
    },
    destination,
  );
}

/** Nest's logger interface over pino, so framework and app logs share one JSON stream. */
export class PinoNestLogger implements LoggerService {
  constructor(private readonly logger: Logger) {}
  log(message: unknown, context?: string): void {
    this.write('info', message, context);
  }
  error(message: unknown, traceOrContext?: string, context?: string): void {
    const ctx = context ?? traceOrContext;
    if (message instanceof Error) this.logger.error({ err: message, context: ctx }, maskSecrets(message.message));
    else this.write('error', message, ctx, context ? traceOrContext : undefined);
  }
  warn(message: unknown, context?: string): void {
    this.write('warn', message, context);
  }
  debug(message: unknown, context?: string): void {
    this.write('debug', message, context);
  }
  verbose(message: unknown, context?: string): void {
    this.write('trace', message, context);
  }
  fatal(message: unknown, context?: string): void {
    this.write('fatal', message, context);
  }
  private write(level: pino.Level, message: unknown, context?: string, stack?: string): void {
    if (typeof message === 'string') this.logger[level]({ context, stack }, message);
    else this.logger[level]({ context, detail: message });
  }
}
