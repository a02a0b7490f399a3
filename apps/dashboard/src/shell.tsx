import { useState } from 'react';
import { Navigate, NavLink, Outlet, useLocation } from 'react-router';
import { UserRole } from '@fleetwatch/contracts';
import { AppShell, Button, useTheme } from '@fleetwatch/ui';
import { roleAtLeast } from './roles';
import { liveLabel, useLiveUpdates } from './live';
import { useSession } from './session';

// Each page with the least role that may use it: the navigation shows only what the signed-in role may open.
const PAGES: readonly (readonly [string, string, UserRole])[] = [
  ['/', 'Overview', UserRole.Viewer],
  ['/targets', 'Targets', UserRole.Viewer],
  ['/instances', 'Pushed instances', UserRole.Viewer],
  ['/checks', 'Checks', UserRole.Viewer],
  ['/hosts', 'Hosts', UserRole.Viewer],
  ['/alerts', 'Alerts', UserRole.Viewer],
  ['/status-pages', 'Status pages', UserRole.Viewer],
  ['/fleet', 'Fleet', UserRole.Viewer],
  ['/fleet/config', 'Fleet config', UserRole.Viewer],
  ['/settings/api-keys', 'API keys', UserRole.Operator],
  ['/settings/users', 'Users', UserRole.Admin],
];

/** Signed-in pages: the navigation around them; without a session, the login page (then back here). */
export function Shell() {
  const { user, checking, logout, ended } = useSession();
  const live = useLiveUpdates(user !== null, ended);
  const [theme, toggleTheme] = useTheme();
  const location = useLocation();
  const [signOutError, setSignOutError] = useState<string | null>(null);
  const signOut = () => {
    setSignOutError(null);
    logout().catch((e: unknown) => setSignOutError((e as Error).message));
  };
  if (checking) return <p className="fw-muted">Loading…</p>;
  if (!user) return <Navigate to={`/login?next=${encodeURIComponent(location.pathname + location.search)}`} replace />;
  return (
    <AppShell
      nav={PAGES.filter(([, , needs]) => roleAtLeast(user.role, needs)).map(([to, label]) => (
        <NavLink key={to} to={to} end={to === '/' || to === '/fleet'}>
          {label}
        </NavLink>
      ))}
      footer={
        <>
          <span className="fw-muted">
            {user.name} ({user.role})
          </span>
          <span
            className="fw-muted"
            data-live={live.state}
            role={live.state === 'refused' ? 'alert' : undefined}
            title="Updates arrive over the WebSocket when live; else (or while the gateway's live feed is paused) every 10 s"
          >
            {liveLabel(live.state, live.refusal)}
          </span>
          <Button
            size="small"
            onClick={toggleTheme}
            aria-label={`Switch to ${theme === 'dark' ? 'light' : 'dark'} theme`}
          >
            {theme === 'dark' ? 'Light theme' : 'Dark theme'}
          </Button>
          <Button size="small" onClick={signOut}>
            Sign out
          </Button>
          {signOutError && (
            <span className="fw-alert" role="alert">
              {signOutError}
            </span>
          )}
        </>
      }
    >
      <Outlet />
    </AppShell>
  );
}
