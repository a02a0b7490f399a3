import { z } from 'zod';
import {
  amqpShortString,
  commonFields,
  envNameSchema,
  hostSchema,
  isIpv6Literal,
  portSchema,
  urlOf,
} from './check-fields';
import { ownKeysRecord, storableNumber } from '../common/store-safe';
import {
  postgresStatsCheckFields,
  rabbitmqQueuesCheckFields,
  rabbitmqTapCheckFields,
  redisStatsCheckFields,
  s3CheckFields,
  SERVICE_CHECK_TYPES,
} from './service-checks.schema';

export { CHECK_SECRET_ENV_PREFIX, conditionSchema, envNameSchema, hostSchema } from './check-fields';

// One schema for a check definition (SPEC §5, §11), used by the gateway for HTTP bodies,
// by sync-orchestrator before it writes, by YAML import, and by the collector when it
// reads its assignment. A password is never part of a definition: a check that needs one
// names an environment variable of the collector (`passwordEnv`). The one credential a
// definition may hold is an http check's header (`Authorization`, `Cookie`, `X-Api-Key`,
// … : isSecretHeader): stored for the collector, it is write-only like a channel's secret —
// never returned by the API, exported, shown in versions or audit entries, or sent to a
// leader (check-secrets.ts says how a write keeps, replaces or removes one).

export const CHECK_TYPES = [
  'http',
  'tcp',
  'icmp',
  'dns',
  'tls',
  'prometheus',
  'postgres',
  'redis',
  'amqp',
  'process',
  'push',
  // Service collectors (issue 16): figures in the result's `metrics`.
  ...SERVICE_CHECK_TYPES,
] as const;
export const checkTypeSchema = z.enum(CHECK_TYPES);
export type CheckType = z.infer<typeof checkTypeSchema>;

const headerName = z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$/, 'an HTTP header name');
/**
 * What an HTTP header value may hold: tab, visible ASCII, space and the bytes 0x80–0xFF (Node's rule, RFC 9110
 * field-value). `price €5` or a control character was accepted and every run failed ("Invalid character in header
 * content").
 */
const headerValue = z
  .string()
  .max(4096)
  .regex(/^[^\r\n\0]*$/, 'no line breaks in a header value')
  .regex(/^[\t\x20-\x7e\x80-\xff]*$/, 'visible ASCII, spaces and Latin-1 only (encode other text, e.g. as %XX)');

export const httpCheckFields = z.strictObject({
  ...commonFields,
  type: z.literal('http'),
  url: urlOf(['http', 'https']),
  method: z.enum(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']).default('GET'),
  headers: ownKeysRecord(headerName, headerValue).default({}),
  body: z
    .string()
    .max(64 * 1024)
    .optional(),
  /** Status codes that count as UP (default: any 2xx or 3xx). */
  expectedStatus: z.array(z.number().int().min(100).max(599)).max(32).optional(),
  /** The body must contain this text. */
  bodyContains: z.string().min(1).max(4096).optional(),
  /** JSON-path assertions on a JSON body: `$.status` equals "UP", `$.items[0].ok` exists. */
  jsonPath: z
    .array(
      z.strictObject({
        path: z
          .string()
          .max(512)
          .regex(/^\$(\.[A-Za-z_][A-Za-z0-9_-]*|\[\d+\]|\["[^"]*"\])*$/, 'a JSON path like $.a.b[0] or $["a b"]'),
        equals: z.union([z.string().max(4096), storableNumber(), z.boolean(), z.null()]).optional(),
      }),
    )
    .max(32)
    .default([]),
  followRedirects: z.boolean().default(true),
  maxRedirects: z.number().int().min(0).max(20).default(5),
  tlsVerify: z.boolean().default(true),
  /** DOWN when the certificate expires within this many days (https only). */
  certMinDaysLeft: z.number().int().min(0).max(3650).optional(),
});

export const tcpCheckFields = z.strictObject({
  ...commonFields,
  type: z.literal('tcp'),
  host: hostSchema,
  port: portSchema,
});
export const icmpCheckFields = z.strictObject({
  ...commonFields,
  type: z.literal('icmp'),
  host: hostSchema,
  /** Echo requests per run; UP when at least one answers. */
  count: z.number().int().min(1).max(10).default(1),
});
/**
 * What is wrong with a DNS check's `resolver` the pattern lets through: a port outside 1–65535 (port 0 aborted the
 * collector inside Node's resolver, a native assertion no handler catches; 99999 was wrapped to another port), a
 * bare or bracketed address that is no IPv6 address (`dead:beef`). The collector reads it with dns.probe's
 * splitResolver, the same forms.
 */
export function resolverProblem(text: string): string | null {
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(text);
  const colons = text.split(':').length - 1;
  const [host, port] = bracketed ? [bracketed[1], bracketed[2]] : colons === 1 ? text.split(':') : [text, undefined];
  if ((bracketed || colons > 1) && !isIpv6Literal(host)) return `"${host}" is not an IPv6 address`;
  if (port !== undefined && !(Number(port) >= 1 && Number(port) <= 65_535)) return 'the port must be 1–65535';
  return null;
}

export const DNS_RECORD_TYPES = ['A', 'AAAA', 'CNAME', 'MX', 'TXT', 'NS', 'SOA', 'SRV', 'PTR', 'CAA'] as const;
export const dnsCheckFields = z.strictObject({
  ...commonFields,
  type: z.literal('dns'),
  /** The name to resolve. */
  query: hostSchema,
  recordType: z.enum(DNS_RECORD_TYPES).default('A'),
  /** `host` or `host:port` of the resolver (default: the collector's system resolver). */
  resolver: z
    .string()
    .max(300)
    .regex(/^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+|[0-9A-Fa-f:]+)(:\d{1,5})?$/, 'host or host:port ([v6]:port)')
    .superRefine((text, ctx) => {
      const problem = resolverProblem(text);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    })
    .optional(),
  /** UP only if the answers include every one of these (compared case-insensitively). */
  expected: z.array(z.string().min(1).max(1024)).max(32).default([]),
});
export const tlsCheckFields = z.strictObject({
  ...commonFields,
  type: z.literal('tls'),
  host: hostSchema,
  port: portSchema.default(443),
  /** SNI name (default: host). */
  servername: hostSchema.optional(),
  /** DOWN when the certificate expires within this many days (default 0: only when expired). */
  minDaysLeft: z.number().int().min(0).max(3650).default(0),
  tlsVerify: z.boolean().default(true),
});
export const prometheusCheckFields = z.strictObject({
  ...commonFields,
  type: z.literal('prometheus'),
  url: urlOf(['http', 'https']),
  tlsVerify: z.boolean().default(true),
});
export const postgresCheckFields = z.strictObject({
  ...commonFields,
  type: z.literal('postgres'),
  host: hostSchema,
  port: portSchema.default(5432),
  database: z.string().min(1).max(128).default('postgres'),
  user: z.string().min(1).max(128).default('postgres'),
  passwordEnv: envNameSchema.optional(),
  /** Run this read-only query (default `SELECT 1`); its first row's columns are `result.row`. */
  query: z.string().min(1).max(4096).optional(),
  ssl: z.boolean().default(false),
});
export const redisCheckFields = z.strictObject({
  ...commonFields,
  type: z.literal('redis'),
  host: hostSchema,
  port: portSchema.default(6379),
  username: z.string().min(1).max(128).optional(),
  passwordEnv: envNameSchema.optional(),
  db: z.number().int().min(0).max(1024).default(0),
  tls: z.boolean().default(false),
});
export const amqpCheckFields = z.strictObject({
  ...commonFields,
  type: z.literal('amqp'),
  host: hostSchema,
  port: portSchema.default(5672),
  vhost: amqpShortString(1).default('/'),
  username: z.string().min(1).max(128).default('guest'),
  passwordEnv: envNameSchema.optional(),
  tls: z.boolean().default(false),
  /** Passive-declare this queue: `result.messages`, `result.consumers`. */
  queue: amqpShortString(1).optional(),
  /** Management API base URL for publish/deliver rates (`result.publishRate`, `result.deliverRate`). */
  managementUrl: urlOf(['http', 'https']).optional(),
});
export const processCheckFields = z
  .strictObject({
    ...commonFields,
    type: z.literal('process'),
    /** Process name as in /proc/<pid>/comm or the command line's first word. */
    processName: z.string().min(1).max(256).optional(),
    pidFile: z.string().min(1).max(1024).optional(),
  })
  .refine((c) => (c.processName === undefined) !== (c.pidFile === undefined), {
    message: 'give exactly one of processName and pidFile',
    path: ['processName'],
  });

/**
 * A heartbeat monitor (SPEC §5 `push`, §6 `/ping/{token}`): nobody probes it; it expects a
 * ping every `periodSeconds` + `graceSeconds`. Its ping token is a credential, never part
 * of the definition: the configuration owner issues it when the check is created (shown
 * once) and keeps only its hash (heartbeat_monitors). Collectors never run it, so it names
 * no locations and no conditions.
 */
export const pushCheckFields = z.strictObject({
  ...commonFields,
  type: z.literal('push'),
  /** Expected time between pings. */
  periodSeconds: z
    .number()
    .int()
    .min(1)
    .max(31 * 86_400),
  /** Extra time allowed after a missed period before the monitor turns DOWN. */
  graceSeconds: z
    .number()
    .int()
    .min(0)
    .max(7 * 86_400),
  /** A `/start` without a finishing ping within this long turns the monitor DOWN. */
  maxRuntimeSeconds: z
    .number()
    .int()
    .min(1)
    .max(7 * 86_400)
    .optional(),
});

/** A check as a client writes it (POST, PUT, YAML). */
export const checkInputSchema = z
  .discriminatedUnion('type', [
    httpCheckFields,
    tcpCheckFields,
    icmpCheckFields,
    dnsCheckFields,
    tlsCheckFields,
    prometheusCheckFields,
    postgresCheckFields,
    redisCheckFields,
    amqpCheckFields,
    processCheckFields,
    pushCheckFields,
    redisStatsCheckFields,
    rabbitmqQueuesCheckFields,
    rabbitmqTapCheckFields,
    postgresStatsCheckFields,
    s3CheckFields,
  ])
  .superRefine((c, ctx) => {
    if (c.type === 'push') {
      // Pings arrive at status-ingest whatever the location; nothing evaluates conditions on them.
      if (c.locations.length)
        ctx.addIssue({
          code: 'custom',
          path: ['locations'],
          message: 'a push check is not run by collectors: no locations',
        });
      if (c.conditions.length)
        ctx.addIssue({
          code: 'custom',
          path: ['conditions'],
          message: 'a push check has no result to test: no conditions',
        });
    }
    if (c.timeoutSeconds > c.intervalSeconds)
      ctx.addIssue({
        code: 'custom',
        path: ['timeoutSeconds'],
        message: `must not exceed intervalSeconds (${c.intervalSeconds})`,
      });
    if (new Set(c.locations).size !== c.locations.length)
      ctx.addIssue({ code: 'custom', path: ['locations'], message: 'each location once' });
  });
export type CheckInput = z.input<typeof checkInputSchema>;

/** A check's timeout when it names none and its interval is at least this long (`timeoutSeconds`' default). */
export const DEFAULT_TIMEOUT_SECONDS = 10;

/** The timeout a check of this interval gets when it names none (never above the interval). */
export function defaultTimeoutFor(intervalSeconds: number): number {
  return intervalSeconds > 0 && intervalSeconds < DEFAULT_TIMEOUT_SECONDS ? intervalSeconds : DEFAULT_TIMEOUT_SECONDS;
}

/**
 * A check as written, with the timeout its interval allows when it names none and its interval is shorter than the
 * default timeout (a timeout never exceeds the interval): `{name, type, intervalSeconds: 5, url}` is a check (SPEC §11)
 * with a 5 s timeout, not a refusal of a field the client never sent. Anything else is returned as it is, so the spec
 * (and the config form, which leaves out a timeout of DEFAULT_TIMEOUT_SECONDS) of every other check is unchanged.
 */
export function withDefaultTimeout(input: unknown): unknown {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) return input;
  const rec = input as Record<string, unknown>;
  const interval = rec['intervalSeconds'];
  if (rec['timeoutSeconds'] !== undefined || typeof interval !== 'number') return input;
  if (!(interval > 0 && interval < DEFAULT_TIMEOUT_SECONDS)) return input;
  return { ...rec, timeoutSeconds: interval };
}
export type CheckSpec = z.output<typeof checkInputSchema>;

/** A stored check: the spec plus what the configuration owner assigns. */
export type CheckDefinition = CheckSpec & {
  id: string;
  /** `check:<id>` (SPEC §11). */
  targetId: string;
  /** Config version that last changed this check: its ETag for `If-Match`. */
  version: number;
  createdAt: string;
  updatedAt: string;
};

/** Fields a PATCH may send: any of the spec's, never `type`. */
export const checkPatchSchema = z.record(z.string(), z.unknown()).superRefine((p, ctx) => {
  if ('type' in p)
    ctx.addIssue({ code: 'custom', path: ['type'], message: 'a check cannot change type: create a new one' });
  for (const k of ['id', 'targetId', 'version', 'createdAt', 'updatedAt'])
    if (k in p) ctx.addIssue({ code: 'custom', path: [k], message: 'read-only' });
});

/** The address a check connects to, when it has one: host of its URL or its `host`. */
export function checkAddressOf(c: CheckSpec): string | null {
  switch (c.type) {
    case 'http':
    case 'prometheus':
      return hostOfUrl(c.url);
    case 'tcp':
    case 'icmp':
    case 'tls':
    case 'postgres':
    case 'redis':
    case 'amqp':
    case 'redis-stats':
    case 'rabbitmq-queues':
    case 'rabbitmq-tap':
    case 'postgres-stats':
      return c.host;
    case 's3':
      return hostOfUrl(c.endpoint);
    case 'dns':
      return c.resolver ? resolverHost(c.resolver) : null;
    case 'process':
    case 'push':
      return null;
  }
}

function hostOfUrl(text: string): string | null {
  try {
    const h = new URL(text).hostname;
    return h.startsWith('[') && h.endsWith(']') ? h.slice(1, -1) : h;
  } catch {
    return null;
  }
}

function resolverHost(r: string): string {
  if (r.startsWith('[')) return r.slice(1, r.indexOf(']'));
  const colons = r.split(':').length - 1;
  return colons === 1 ? r.slice(0, r.indexOf(':')) : r;
}

/** Headers of an HTTP check, at most (on write). */
export const CHECK_HEADERS_MAX = 64;
/**
 * The request's framing, which an HTTP check sets from its body (the collector leaves such headers out): a
 * Content-Length without that many body bytes made the server wait for them — every run timed out.
 */
export const CHECK_FRAMING_HEADERS = /^(content-length|transfer-encoding|expect)$/i;

/**
 * What a check's configuration owner refuses on write beyond the schema: values that could never work as meant.
 * Not part of the schema, so a check stored before these rules is still read and run (the collector reads stored
 * checks with the schema: an http check with `expectedStatus: []` runs with the default, framing headers are left
 * out), and refused when next saved.
 */
export function checkWriteIssues(spec: CheckSpec): { path: (string | number)[]; message: string }[] {
  if (spec.type !== 'http') return [];
  const issues: { path: (string | number)[]; message: string }[] = [];
  if (spec.expectedStatus?.length === 0)
    issues.push({
      path: ['expectedStatus'],
      message: 'at least one status code (leave expectedStatus out for any 2xx or 3xx)',
    });
  const names = Object.keys(spec.headers);
  if (names.length > CHECK_HEADERS_MAX)
    issues.push({ path: ['headers'], message: `at most ${CHECK_HEADERS_MAX} headers (${names.length} given)` });
  for (const name of names.filter((n) => CHECK_FRAMING_HEADERS.test(n)))
    issues.push({
      path: ['headers', name],
      message: 'Content-Length, Transfer-Encoding and Expect are set by the check from its body, not as headers',
    });
  return issues;
}
