import { z } from 'zod';

// FLEETWATCH_LEADER_CONFIG (SPEC §8, §11): the member sites a leader polls, as JSON (the
// variable's value, or a path to a file holding it). Credentials name the environment
// variable that holds the secret; the secret itself is never in this document, never
// stored, logged, placed in a metric label or returned.

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const envName = z
  .string()
  .regex(ENV_NAME, 'must be an environment variable name (letters, digits, _; not starting with a digit)')
  .max(128);

export const memberCredentialsSchema = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('token'),
    /** Variable holding a bearer token (an API key of the member with a reading scope). */
    tokenEnv: envName,
  }),
  z.strictObject({
    type: z.literal('basic'),
    username: z
      .string()
      .min(1)
      .max(256)
      .regex(/^[^:]*$/, 'must not contain ":"'),
    /** Variable holding the member user's password. */
    passwordEnv: envName,
  }),
]);
export type MemberCredentials = z.infer<typeof memberCredentialsSchema>;

/** A member's name: a site name as URLs and Redis keys can carry it. */
export const memberNameSchema = z
  .string()
  .min(1)
  .max(64)
  .regex(
    /^[a-z0-9][a-z0-9._-]*$/,
    'must be lower-case letters, digits, ".", "_" or "-", starting with a letter or digit',
  );

export const memberUrlSchema = z
  .string()
  .max(2048)
  .refine((s) => {
    try {
      const u = new URL(s);
      return (u.protocol === 'http:' || u.protocol === 'https:') && !u.username && !u.password && !u.search && !u.hash;
    } catch {
      return false;
    }
  }, 'must be an http(s) URL without credentials, query or fragment (e.g. https://eu.example:3000)')
  .transform((s) => s.replace(/\/+$/, ''));

export const memberConfigSchema = z.strictObject({
  name: memberNameSchema,
  url: memberUrlSchema,
  tags: z.array(z.string().min(1).max(64)).max(32).default([]),
  credentials: memberCredentialsSchema.optional(),
  /** Properties this member is meant to have its own value for: excluded from drift. */
  propertyOverrides: z.record(z.string().min(1).max(256), z.unknown()).default({}),
  /** Position in the failover order (lower first); absent: never promoted. */
  failoverOrder: z.number().int().min(0).max(10_000).optional(),
});
export type MemberConfig = z.infer<typeof memberConfigSchema>;

export const leaderConfigSchema = z
  // A bare list of members is accepted too.
  .preprocess(
    (v) => (Array.isArray(v) ? { members: v } : v),
    z.strictObject({ members: z.array(memberConfigSchema).max(10_000) }),
  )
  .superRefine((cfg, ctx) => {
    const seen = new Map<string, number>();
    cfg.members.forEach((m, i) => {
      const first = seen.get(m.name);
      if (first !== undefined)
        ctx.addIssue({
          code: 'custom',
          path: ['members', i, 'name'],
          message: `duplicate member name ${JSON.stringify(m.name)} (also members.${first})`,
        });
      else seen.set(m.name, i);
    });
    const orders = new Map<number, number>();
    cfg.members.forEach((m, i) => {
      if (m.failoverOrder === undefined) return;
      const first = orders.get(m.failoverOrder);
      if (first !== undefined)
        ctx.addIssue({
          code: 'custom',
          path: ['members', i, 'failoverOrder'],
          message: `failover order ${m.failoverOrder} is also members.${first}'s`,
        });
      else orders.set(m.failoverOrder, i);
    });
  });
export type LeaderConfig = z.infer<typeof leaderConfigSchema>;
