import {
  CIDR_EXAMPLE,
  isCidr,
  parseCidr,
  RESERVED_LOCATION,
  RESERVED_LOCATION_MESSAGE,
  type Cidr,
} from '@fleetwatch/contracts';
import { z } from 'zod';

/** A configuration problem found at boot, naming every bad variable. */
export class ConfigError extends Error {
  constructor(readonly problems: { variable: string; message: string }[]) {
    super(
      'Invalid configuration:\n' +
        problems.map((p) => `  - ${p.variable}: ${p.message}`).join('\n') +
        '\nFix the variables above (see the configuration table in README.md) and start again.',
    );
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

/**
 * Validates the environment against `shape` (keys are variable names) and
 * returns the typed values. Throws ConfigError naming each bad variable.
 */
export function parseEnv<S extends z.ZodRawShape>(shape: S, env: Env = process.env): z.output<z.ZodObject<S>> {
  const input: Env = {};
  for (const key of Object.keys(shape)) {
    const v = env[key];
    input[key] = v === undefined || v === '' ? undefined : v;
  }
  const result = z.object(shape).safeParse(input);
  if (result.success) return result.data;
  const problems = result.error.issues.map((i) => ({ variable: String(i.path[0] ?? '(env)'), message: i.message }));
  throw new ConfigError(problems);
}

/** Boot-time wrapper: prints the problems and exits non-zero. */
export function loadConfigOrExit<T>(load: () => T, service: string): T {
  try {
    return load();
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`[${service}] ${e.message}\n`);
      process.exit(78); // EX_CONFIG
    }
    throw e;
  }
}

const urlWithSchemes = (schemes: string[], what: string, fallback: string) =>
  z
    .string()
    .default(fallback)
    .superRefine((value, ctx) => {
      let url: URL;
      try {
        url = new URL(value);
      } catch {
        ctx.addIssue({ code: 'custom', message: `not a valid URL (expected ${what}, e.g. ${fallback})` });
        return;
      }
      if (!schemes.includes(url.protocol.replace(/:$/, ''))) {
        ctx.addIssue({
          code: 'custom',
          message: `scheme "${url.protocol}" is not ${schemes.map((s) => s + ':').join(' or ')} (expected ${what})`,
        });
      } else if (!url.hostname) {
        ctx.addIssue({ code: 'custom', message: `has no host (expected ${what})` });
      }
    });

/** Building blocks for each app's schema. Defaults point at the local servers (SPEC §10). */
export const env = {
  databaseUrl: () =>
    urlWithSchemes(
      ['postgresql', 'postgres'],
      'a PostgreSQL URL',
      'postgresql://postgres@127.0.0.1:5432/fleetwatch',
    ).superRefine((value, ctx) => {
      try {
        if (new URL(value).pathname.replace(/^\//, '') === '')
          ctx.addIssue({ code: 'custom', message: 'names no database (add /fleetwatch)' });
      } catch {
        /* reported above */
      }
    }),
  redisUrl: () => urlWithSchemes(['redis', 'rediss'], 'a Redis URL', 'redis://127.0.0.1:6379'),
  amqpUrl: () => urlWithSchemes(['amqp', 'amqps'], 'an AMQP URL', 'amqp://guest:guest@127.0.0.1:5672'),
  port: (fallback: number) =>
    z.coerce
      .number({ message: 'must be a number' })
      .int('must be a whole number')
      .min(1, 'must be 1–65535')
      .max(65535, 'must be 1–65535')
      .default(fallback),
  int: (fallback: number, min = 0, max = Number.MAX_SAFE_INTEGER) =>
    z.coerce
      .number({ message: 'must be a number' })
      .int('must be a whole number')
      .min(min, `must be ≥ ${min}`)
      .max(max, `must be ≤ ${max}`)
      .default(fallback),
  number: (fallback: number, min = 0, max = Number.MAX_VALUE) =>
    z.coerce
      .number({ message: 'must be a number' })
      .min(min, `must be ≥ ${min}`)
      .max(max, `must be ≤ ${max}`)
      .default(fallback),
  bool: (fallback: boolean) =>
    z
      .enum(['true', 'false', '1', '0', 'yes', 'no'], { message: 'must be true or false' })
      .optional()
      .transform((v) => (v === undefined ? fallback : ['true', '1', 'yes'].includes(v))),
  name: (fallback: string) =>
    z
      .string()
      .max(128, 'at most 128 characters')
      .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'use letters, digits and . _ - (starting with a letter or digit)')
      .default(fallback),
  /** A location's name (FLEETWATCH_LOCATION): a name, not the one /metrics keeps for the consensus. */
  location: (fallback: string) =>
    z
      .string()
      .max(128, 'at most 128 characters')
      .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'use letters, digits and . _ - (starting with a letter or digit)')
      .refine((v) => v !== RESERVED_LOCATION, RESERVED_LOCATION_MESSAGE)
      .default(fallback),
  logLevel: () =>
    z
      .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], {
        message: 'must be one of fatal, error, warn, info, debug, trace, silent',
      })
      .default('info'),
  role: () =>
    z
      .enum(['standalone', 'leader', 'member'], { message: 'must be standalone, leader or member' })
      .default('standalone'),
  optionalString: () => z.string().optional(),
  /**
   * A comma-separated list of CIDRs replacing `fallback`. A value naming none (blanks, commas) is the fallback, as an
   * empty one is: read as "deny nothing", a stray space switched a protection off unseen. `none`: an empty list.
   */
  cidrList: (fallback: string) =>
    z
      .string()
      .default(fallback)
      .transform((s) => {
        if (s.trim().toLowerCase() === 'none') return [];
        const list = (v: string): string[] =>
          v
            .split(',')
            .map((x) => x.trim())
            .filter(Boolean);
        const given = list(s);
        return given.length > 0 ? given : list(fallback);
      })
      .superRefine((list, ctx) => {
        for (const cidr of list)
          if (!isCidr(cidr)) ctx.addIssue({ code: 'custom', message: `"${cidr}" is not a CIDR (${CIDR_EXAMPLE})` });
      }),
  /**
   * `*_TRUST_PROXY`: the proxies (CIDRs) whose X-Forwarded-For is believed. Empty or
   * `false`: none. `true` is refused: it would believe any client's header; so is a /0
   * (`0.0.0.0/0`, `::/0`, `::ffff:0:0/96`), which says the same.
   */
  trustedProxies: () =>
    z
      .string()
      .default('')
      .superRefine((s, ctx) => {
        if (['true', '1', 'yes'].includes(s.trim().toLowerCase())) {
          ctx.addIssue({
            code: 'custom',
            message: `"${s}" would believe any client's X-Forwarded-For: list the proxies' CIDRs instead (e.g. 127.0.0.1/32,10.0.0.0/8), or false to trust none`,
          });
        }
      })
      .transform((s) =>
        ['false', '0', 'no'].includes(s.trim().toLowerCase())
          ? []
          : s
              .split(',')
              .map((v) => v.trim())
              .filter(Boolean),
      )
      .superRefine((list, ctx) => {
        const networks: Cidr[] = [];
        for (const cidr of list) {
          const network = parseCidr(cidr);
          if (!network) ctx.addIssue({ code: 'custom', message: `"${cidr}" is not a proxy CIDR (${CIDR_EXAMPLE})` });
          // A /0 is `true` by another name: every address a proxy, so any client's X-Forwarded-For is believed.
          else if (network.prefix === 0)
            ctx.addIssue({
              code: 'custom',
              message: `"${cidr}" would believe any client's X-Forwarded-For: list the proxies' CIDRs instead`,
            });
          else networks.push(network);
        }
        // So do entries that add up to a /0 (`0.0.0.0/1,128.0.0.0/1`).
        for (const version of [4, 6] as const)
          if (coversEveryAddress(networks.filter((n) => n.version === version)))
            ctx.addIssue({
              code: 'custom',
              message: `"${list.join(',')}" together cover every IPv${version} address, so would believe any client's X-Forwarded-For: list the proxies' CIDRs instead`,
            });
      }),
};

/** Whether networks of one family (none a /0), taken together, hold every address of it. */
function coversEveryAddress(networks: readonly Cidr[]): boolean {
  if (networks.length === 0) return false;
  const bits = BigInt(networks[0].bytes.length * 8);
  const ranges = networks
    .map((n) => {
      const start = n.bytes.reduce((v, b) => (v << 8n) | BigInt(b), 0n);
      return [start, start + (1n << (bits - BigInt(n.prefix))) - 1n] as const;
    })
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  let next = 0n;
  for (const [start, end] of ranges) {
    if (start > next) return false;
    if (end + 1n > next) next = end + 1n;
  }
  return next === 1n << bits;
}

/** Masks the password part of a URL for logs and error messages. */
export function maskUrl(value: string): string {
  try {
    const url = new URL(value);
    if (url.password) url.password = '***';
    return url.toString();
  } catch {
    return '(unparseable URL)';
  }
}
