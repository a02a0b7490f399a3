import { api, ApiError } from './api/client';

export const SESSION_PATH = '/api/v1/auth/session';

/**
 * Ends the browser session at the gateway. The cookie is HttpOnly: only the gateway can end the session, so a
 * sign-out it did not confirm (a 5xx, a refused CSRF proof, no network) is a failure the person must hear of —
 * showing the login form then would leave the session open for the next reload. A 401 means it had already ended.
 */
export async function endServerSession(): Promise<void> {
  try {
    await api(SESSION_PATH, { method: 'DELETE' });
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return;
    throw new Error(`Sign-out failed, the session is still open: ${(e as Error).message}`, { cause: e });
  }
}
