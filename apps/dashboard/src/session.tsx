import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from 'react';
import { useQueryClient } from '@tanstack/react-query';
import type { LoginResponse, PrincipalView } from '@fleetwatch/contracts';
import { api, setBearerToken, setUnauthorizedHandler } from './api/client';

// Who is signed in. At start the session asks the gateway who it is (`/auth/me`): with a
// session cookie that answers without a password; otherwise the login page shows.

export type SessionUser = Pick<PrincipalView, 'id' | 'name' | 'role'>;

interface Session {
  user: SessionUser | null;
  /** True until the first `/auth/me` has answered. */
  checking: boolean;
  login(username: string, password: string): Promise<void>;
  logout(): Promise<void>;
}

const SessionContext = createContext<Session | null>(null);

export function SessionProvider({ children }: { children: ReactNode }) {
  const queryClient = useQueryClient();
  const [user, setUser] = useState<SessionUser | null>(null);
  const [checking, setChecking] = useState(true);

  const end = useCallback(() => {
    setBearerToken(null);
    setUser(null);
    queryClient.clear();
  }, [queryClient]);

  useEffect(() => {
    setUnauthorizedHandler(end);
    const controller = new AbortController();
    api<PrincipalView>('/api/v1/auth/me', { signal: controller.signal })
      .then((me) => setUser({ id: me.id, name: me.name, role: me.role }))
      .catch(() => undefined)
      .finally(() => setChecking(false));
    return () => {
      controller.abort();
      setUnauthorizedHandler(null);
    };
  }, [end]);

  const login = useCallback(async (username: string, password: string) => {
    const r = await api<LoginResponse>('/api/v1/auth/login', { method: 'POST', body: { username, password } });
    setBearerToken(r.token);
    setUser({ id: r.user.id, name: r.user.username, role: r.user.role });
  }, []);

  const logout = useCallback(async () => {
    await api('/api/v1/auth/logout', { method: 'POST' }).catch(() => undefined);
    end();
  }, [end]);

  const value = useMemo(() => ({ user, checking, login, logout }), [user, checking, login, logout]);
  return <SessionContext.Provider value={value}>{children}</SessionContext.Provider>;
}

export function useSession(): Session {
  const s = useContext(SessionContext);
  if (!s) throw new Error('useSession outside SessionProvider');
  return s;
}
