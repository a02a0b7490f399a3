import { z } from 'zod';
import { userRoleSchema } from '../common/status';

// The dashboard's browser session (issue 17): sign-in sets an HttpOnly cookie; the page
// keeps only the CSRF token, which it sends as `X-CSRF-Token` on every write.

export const browserSessionResponseSchema = z.object({
  expiresAt: z.iso.datetime(),
  user: z.object({ id: z.string(), username: z.string(), role: userRoleSchema }),
  /** Send as `X-CSRF-Token` on POST/PUT/PATCH/DELETE; also readable from the `fw_csrf` cookie. */
  csrfToken: z.string(),
});
export type BrowserSessionResponse = z.infer<typeof browserSessionResponseSchema>;

/** Header and cookie names a browser client uses. */
export const BROWSER_SESSION = {
  csrfHeader: 'X-CSRF-Token',
  csrfCookie: 'fw_csrf',
  /** HttpOnly: scripts never see it. */
  sessionCookie: 'fw_session',
} as const;
