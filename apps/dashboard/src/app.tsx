import { useCallback, useEffect, useState, type FormEvent } from 'react';
import { TargetStatus, type TargetView } from '@fleetwatch/contracts';
import { relativeTime, StatusBadge } from '@fleetwatch/ui';
import { ApiError, listTargets, login, logout, storedToken } from './api';
import { countByStatus } from './summary';

const REFRESH_MS = 5000;
const FILTER_KEY = 'fleetwatch.targets.filter';

function Login({ onDone }: { onDone: () => void }) {
  const [username, setUsername] = useState('admin');
  const [password, setPassword] = useState('');
  const [error, setError] = useState<string | null>(null);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    try {
      await login(username, password);
      onDone();
    } catch (err) {
      setError((err as Error).message);
    }
  };
  return (
    <form
      onSubmit={submit}
      className="fw-login"
      style={{ maxWidth: 320, margin: '10vh auto', display: 'grid', gap: 8 }}
    >
      <h1>Fleetwatch</h1>
      <label>
        Username{' '}
        <input name="username" value={username} onChange={(e) => setUsername(e.target.value)} autoComplete="username" />
      </label>
      <label>
        Password{' '}
        <input
          name="password"
          type="password"
          value={password}
          onChange={(e) => setPassword(e.target.value)}
          autoComplete="current-password"
        />
      </label>
      <button type="submit">Sign in</button>
      {error && (
        <p role="alert" style={{ color: '#d64545' }}>
          {error}
        </p>
      )}
    </form>
  );
}

function Targets({ onSignOut }: { onSignOut: () => void }) {
  const [targets, setTargets] = useState<TargetView[]>([]);
  const [filter, setFilter] = useState<string>(() => localStorage.getItem(FILTER_KEY) ?? '');
  const [error, setError] = useState<string | null>(null);
  const [updatedAt, setUpdatedAt] = useState<number | null>(null);

  const load = useCallback(async () => {
    try {
      const r = await listTargets({ status: filter || undefined });
      setTargets(r.items);
      setUpdatedAt(Date.now());
      setError(null);
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) onSignOut();
      else setError((e as Error).message);
    }
  }, [filter, onSignOut]);

  useEffect(() => {
    localStorage.setItem(FILTER_KEY, filter);
    void load();
    const t = setInterval(() => void load(), REFRESH_MS);
    return () => clearInterval(t);
  }, [filter, load]);

  const counts = countByStatus(targets);
  return (
    <main style={{ fontFamily: 'system-ui, sans-serif', padding: 24 }}>
      <header style={{ display: 'flex', gap: 16, alignItems: 'center' }}>
        <h1 style={{ marginRight: 'auto' }}>Fleetwatch — targets</h1>
        <span>{updatedAt ? `updated ${relativeTime(new Date(updatedAt).toISOString())}` : 'loading…'}</span>
        <button
          onClick={() => {
            logout();
            onSignOut();
          }}
        >
          Sign out
        </button>
      </header>
      <nav style={{ display: 'flex', gap: 8, margin: '12px 0' }} aria-label="status filter">
        <button aria-pressed={filter === ''} onClick={() => setFilter('')}>
          All ({targets.length})
        </button>
        {Object.values(TargetStatus).map((s) => (
          <button key={s} aria-pressed={filter === s} onClick={() => setFilter(s)}>
            {s} ({counts[s]})
          </button>
        ))}
      </nav>
      {error && (
        <p role="alert" style={{ color: '#d64545' }}>
          {error}
        </p>
      )}
      <table style={{ borderCollapse: 'collapse', width: '100%' }}>
        <thead>
          <tr style={{ textAlign: 'left' }}>
            <th>Target</th>
            <th>Kind</th>
            <th>Status</th>
            <th>Locations</th>
            <th>Last seen</th>
          </tr>
        </thead>
        <tbody>
          {targets.map((t) => (
            <tr key={t.id} data-target={t.id}>
              <td>{t.name}</td>
              <td>{t.kind}</td>
              <td>
                <StatusBadge status={t.status} />
              </td>
              <td>{t.locations.map((l) => `${l.location}: ${l.status}`).join(', ')}</td>
              <td>{relativeTime(t.lastSeen)}</td>
            </tr>
          ))}
          {targets.length === 0 && !error && (
            <tr>
              <td colSpan={5}>No targets yet. Push a status update to status-ingest (see the README quick start).</td>
            </tr>
          )}
        </tbody>
      </table>
    </main>
  );
}

export function App() {
  const [signedIn, setSignedIn] = useState(() => storedToken() !== null);
  const signOut = useCallback(() => setSignedIn(false), []);
  return signedIn ? <Targets onSignOut={signOut} /> : <Login onDone={() => setSignedIn(true)} />;
}
