import { z } from 'zod';
import { userRoleSchema } from '../common/status';

// The users page (issue 17): users with their disabled state, and disabling one.

export const setUserDisabledRequestSchema = z.strictObject({ disabled: z.boolean() });
export type SetUserDisabledRequest = z.infer<typeof setUserDisabledRequestSchema>;

export const userAdminViewSchema = z.object({
  id: z.string(),
  username: z.string(),
  role: userRoleSchema,
  /** A disabled user cannot sign in; their sessions were revoked when it was disabled. */
  disabled: z.boolean(),
  disabledAt: z.iso.datetime().nullable(),
  createdAt: z.iso.datetime(),
  updatedAt: z.iso.datetime(),
});
export type UserAdminView = z.infer<typeof userAdminViewSchema>;
