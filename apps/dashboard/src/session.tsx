import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from 'react';
import { useQueryClient } from '@tanstack/react-query';
import { UserRole, type BrowserSessionResponse, type PrincipalView } from '@fleetwatch/contracts';
import { api, setCsrfToken, setUnauthorizedHandler } from './api/client';
import { roleAtLeast } from './roles';
import { endServerSession, SESSION_PATH } from './session-end';

// Who is signed in. Sign-in is the gateway's browser session (POST /api/v1/auth/session:
// an HttpOnly cookie plus a CSRF token for writes). At start the page asks for the session
// in use (GET): a reload with a live cookie needs no password; otherwise the login page shows.

export type SessionUser = Pick<PrincipalView, 'id' | 'name' | 'role'>;

const userOf = (s: BrowserSessionResponse): SessionUser => ({
  id: s.user.id,
  name: s.user.username,
  role: s.user.role,
});

interface Session {
  user: SessionUser | null;
  /** True until the first look for a session has answered. */
  checking: boolean;
  login(username: string, password: string): Promise<void>;
  /** Ends the session at the gateway, then here; rejects (the session still open) when the gateway did not. */
  logout(): Promise<void>;
  /** The session ended elsewhere (revoked, expired): back to the login page. */
  ended(): void;
}

const SessionContext = createContext<Session | null>(null);

export function SessionProvider({ children }: { children: ReactNode }) {
  const queryClient = useQueryClient();
  const [user, setUser] = useState<SessionUser | null>(null);
  const [checking, setChecking] = useState(true);

  const end = useCallback(() => {
    setCsrfToken(null);
    setUser(null);
    queryClient.clear();
  }, [queryClient]);

  useEffect(() => {
    setUnauthorizedHandler(end);
    const controller = new AbortController();
    api<BrowserSessionResponse>(SESSION_PATH, { signal: controller.signal })
      .then((s) => {
        setCsrfToken(s.csrfToken);
        setUser(userOf(s));
      })
      .catch(() => undefined)
      .finally(() => setChecking(false));
    return () => {
      controller.abort();
      setUnauthorizedHandler(null);
    };
  }, [end]);

  const login = useCallback(async (username: string, password: string) => {
    const s = await api<BrowserSessionResponse>(SESSION_PATH, { method: 'POST', body: { username, password } });
    setCsrfToken(s.csrfToken);
    setUser(userOf(s));
  }, []);

  const logout = useCallback(async () => {
    await endServerSession();
    end();
  }, [end]);

  const value = useMemo(() => ({ user, checking, login, logout, ended: end }), [user, checking, login, logout, end]);
  return <SessionContext.Provider value={value}>{children}</SessionContext.Provider>;
}

export function useSession(): Session {
  const s = useContext(SessionContext);
  if (!s) throw new Error('useSession outside SessionProvider');
  return s;
}

/**
 * Whether the signed-in user may write (operator or admin): viewers are not shown buttons and forms the gateway
 * would refuse them (a 403 after filling a form in).
 */
export function useCanWrite(): boolean {
  const { user } = useSession();
  return user !== null && roleAtLeast(user.role, UserRole.Operator);
}
