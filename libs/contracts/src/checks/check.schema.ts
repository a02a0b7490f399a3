import { z } from 'zod';
import { storableText } from '../common/store-safe';
import { locationSchema } from '../events/observations.schema';
import { conditionProblem, CONDITION_LIMITS } from './conditions';

// One schema for a check definition (SPEC §5, §11), used by the gateway for HTTP bodies,
// by sync-orchestrator before it writes, by YAML import, and by the collector when it
// reads its assignment. Secrets are never part of a definition: a check that needs a
// password names an environment variable of the collector (`passwordEnv`), so no secret
// is stored centrally, exported, returned by the API or forwarded to another site.

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
] as const;
export const checkTypeSchema = z.enum(CHECK_TYPES);
export type CheckType = z.infer<typeof checkTypeSchema>;

/** Host names and address literals: letters, digits, dots, hyphens, colons (IPv6), brackets stripped. */
export const hostSchema = z
  .string()
  .min(1)
  .max(253)
  .regex(/^[A-Za-z0-9._:-]+$/, 'a host name or IP address (letters, digits, . - :)');
const portSchema = z.number().int().min(1).max(65_535);
/**
 * Only variables named `FLEETWATCH_SECRET_…` may be referenced: a check is written by any operator and sends
 * the value to a host it names, so it must never reach the collector's own settings (AMQP_URL with the broker's
 * credentials, cloud tokens). The collector hands probes nothing else (checks.service.ts).
 */
export const CHECK_SECRET_ENV_PREFIX = 'FLEETWATCH_SECRET_';
const envNameSchema = z
  .string()
  .regex(
    /^FLEETWATCH_SECRET_[A-Z0-9_]{1,100}$/,
    'an environment variable of the collector named FLEETWATCH_SECRET_<NAME> (A-Z, 0-9, _)',
  );
const tagSchema = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._:/=-]*$/, 'use letters, digits and . _ : / = -');

export const conditionSchema = z
  .string()
  .max(CONDITION_LIMITS.maxLength)
  .superRefine((expr, ctx) => {
    const p = conditionProblem(expr);
    if (p) ctx.addIssue({ code: 'custom', message: `line ${p.line}, column ${p.column}: ${p.message}` });
  });

/** A URL whose scheme is one of `schemes` (no `file:`, `data:`, `gopher:` …), without credentials. */
function urlOf(schemes: readonly string[]) {
  return z
    .string()
    .max(2048)
    .superRefine((text, ctx) => {
      let url: URL;
      try {
        url = new URL(text);
      } catch {
        ctx.addIssue({ code: 'custom', message: 'not a valid absolute URL' });
        return;
      }
      const scheme = url.protocol.replace(/:$/, '');
      if (!schemes.includes(scheme)) {
        ctx.addIssue({ code: 'custom', message: `scheme "${scheme}:" not allowed here (use ${schemes.join(', ')})` });
        return;
      }
      if (url.username || url.password)
        ctx.addIssue({
          code: 'custom',
          message: 'credentials do not belong in the URL: name an environment variable of the collector instead',
        });
      if (!url.hostname) ctx.addIssue({ code: 'custom', message: 'the URL needs a host' });
    });
}

const headerName = z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$/, 'an HTTP header name');
const headerValue = z
  .string()
  .max(4096)
  .regex(/^[^\r\n\0]*$/, 'no line breaks in a header value');

/** What every check has (SPEC §5). */
const commonFields = {
  name: storableText(256).trim().min(1),
  description: storableText(2048).optional(),
  /** Seconds between runs at each location (default 30). */
  intervalSeconds: z.number().int().min(1).max(86_400).default(30),
  /** Seconds one attempt may take (default 10, never more than the interval). */
  timeoutSeconds: z.number().positive().max(300).default(10),
  /** Failed attempts retried at once before the result is DOWN (default 0). */
  retries: z.number().int().min(0).max(10).default(0),
  /** Locations that run it; empty = every location. */
  locations: z.array(locationSchema).max(64).default([]),
  tags: z.array(tagSchema).max(64).default([]),
  /** CEL expressions over the result; all must be true for UP. */
  conditions: z.array(conditionSchema).max(32).default([]),
  /** Percentage of reporting locations DOWN that makes the consensus DOWN (default: the site's). */
  downQuorumPct: z.number().int().min(1).max(100).optional(),
  paused: z.boolean().default(false),
};

export const httpCheckFields = z.strictObject({
  ...commonFields,
  type: z.literal('http'),
  url: urlOf(['http', 'https']),
  method: z.enum(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']).default('GET'),
  headers: z.record(headerName, headerValue).default({}),
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
        equals: z.union([z.string().max(4096), z.number(), z.boolean(), z.null()]).optional(),
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
  vhost: z.string().min(1).max(255).default('/'),
  username: z.string().min(1).max(128).default('guest'),
  passwordEnv: envNameSchema.optional(),
  tls: z.boolean().default(false),
  /** Passive-declare this queue: `result.messages`, `result.consumers`. */
  queue: z.string().min(1).max(255).optional(),
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
      return c.host;
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
