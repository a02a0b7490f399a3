import { z } from 'zod';
import { loneSurrogateProblem, storableText } from '../common/store-safe';
import { userRoleSchema } from '../common/status';
import { pushCheckFields } from '../checks/check.schema';

// Gateway HTTP shapes for users, API keys and heartbeat monitors (settings pages).

/**
 * A new password. Its store is an argon2 hash of its UTF-8 bytes, where a lone surrogate becomes U+FFFD: every other
 * lone surrogate (or U+FFFD) in its place would sign in too, so it is refused naming the field. A NUL is hashed as it
 * is (only the exact password signs in) and stays allowed.
 */
const password = z.string().min(8, 'must be at least 8 characters').max(1024).superRefine(refuseLoneSurrogate);

/**
 * A password presented to be checked (sign-in, the current one when changing it). It is hashed the same way, so a
 * lone surrogate in it matches a stored U+FFFD, as any of the 2,048 others would: refused naming the field, never
 * compared (a password that is not the password must not sign in). Any other text is only compared.
 */
export const presentedPasswordSchema = z.string().min(1).max(1024).superRefine(refuseLoneSurrogate);

function refuseLoneSurrogate(s: string, ctx: z.RefinementCtx): void {
  const problem = loneSurrogateProblem(s);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
}

export const createUserRequestSchema = z.strictObject({
  username: z
    .string()
    .min(1)
    .max(64)
    .regex(/^[A-Za-z0-9][A-Za-z0-9._@-]*$/, 'use letters, digits and . _ @ - (starting with a letter or digit)'),
  password,
  role: userRoleSchema,
});
export type CreateUserRequest = z.infer<typeof createUserRequestSchema>;

export const changeRoleRequestSchema = z.strictObject({ role: userRoleSchema });
export type ChangeRoleRequest = z.infer<typeof changeRoleRequestSchema>;

/** An admin setting another user's password. */
export const setPasswordRequestSchema = z.strictObject({ password });
export type SetPasswordRequest = z.infer<typeof setPasswordRequestSchema>;

/** Anyone changing their own password. */
export const changeOwnPasswordRequestSchema = z.strictObject({
  currentPassword: presentedPasswordSchema,
  newPassword: password,
});
export type ChangeOwnPasswordRequest = z.infer<typeof changeOwnPasswordRequestSchema>;

export interface UserView {
  id: string;
  username: string;
  role: z.infer<typeof userRoleSchema>;
  createdAt: string;
  updatedAt: string;
}

/** Who the caller is: a signed-in user or an API key acting with the role of its scopes. */
export interface PrincipalView {
  kind: 'user' | 'api-key';
  id: string;
  name: string;
  role: z.infer<typeof userRoleSchema>;
  scopes?: string[];
}

/** An API key as lists show it: never the key or its hash. */
export interface ApiKeyView {
  id: string;
  name: string;
  prefix: string;
  scopes: string[];
  allowedCidrs: string[];
  /** Subject CN a client certificate must carry at status-ingest; null: none needed. */
  clientCertSubject: string | null;
  /** The creator's user id; null once that user is deleted (the key keeps working until revoked). */
  createdBy: string | null;
  /** The creator's username when the key was made, kept after the user is deleted (null for keys from before it). */
  createdByName: string | null;
  createdAt: string;
  lastUsedAt: string | null;
}

/** A heartbeat monitor is a `push` check (SPEC §5): the same schedule fields, one definition of their bounds. */
export const createHeartbeatRequestSchema = z.strictObject({
  name: storableText(256).trim().min(1),
  ...pushCheckFields.pick({ periodSeconds: true, graceSeconds: true, maxRuntimeSeconds: true }).shape,
});
export type CreateHeartbeatRequest = z.infer<typeof createHeartbeatRequestSchema>;

export interface HeartbeatView {
  id: string;
  targetId: string;
  name: string;
  periodSeconds: number;
  graceSeconds: number;
  maxRuntimeSeconds: number | null;
  lastPingAt: string | null;
  lastStartAt: string | null;
  createdAt: string;
}

export interface CreateHeartbeatResponse extends HeartbeatView {
  /** Shown once; only a hash is stored. */
  token: string;
  /** `{status-ingest}/ping/{token}`; `/start` and `/fail` below it. */
  pingUrl: string;
}
