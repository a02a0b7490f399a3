import { useEffect, useState } from 'react';
import { useParams } from 'react-router';
import type { PublicStatusPage } from '@fleetwatch/contracts';
import { Button, useTheme } from '@fleetwatch/ui';
import { api, ApiError, enc } from '../../api/client';
import { StatusPageView } from './status-page-view';
import './public-status.css';

/** The gateway caches the answer for 15 s: asking more often shows nothing new. */
const REFRESH_MS = 30_000;

type Loaded = { page: PublicStatusPage } | { missing: true } | { failed: true } | null;

/**
 * `/status/:slug`: a published status page, for anyone — no session, no navigation, nothing internal.
 * Fetched by its own loop, not the query cache: a visitor without a session ends the (absent) session,
 * which clears that cache, and must not lose the page with it.
 */
export function PublicStatusPageRoute() {
  const slug = useParams()['slug'] ?? '';
  const [theme, toggleTheme] = useTheme();
  const [loaded, setLoaded] = useState<Loaded>(null);

  useEffect(() => {
    const controller = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const load = async () => {
      try {
        const page = await api<PublicStatusPage>(`/api/v1/public/status-pages/${enc(slug)}`, {
          signal: controller.signal,
        });
        setLoaded({ page });
      } catch (e) {
        if (controller.signal.aborted) return;
        if (e instanceof ApiError && e.status === 404) setLoaded({ missing: true });
        // A failed refresh keeps the page shown last.
        else setLoaded((prev) => (prev && 'page' in prev ? prev : { failed: true }));
      }
      if (!controller.signal.aborted) timer = setTimeout(() => void load(), REFRESH_MS);
    };
    setLoaded(null);
    void load();
    return () => {
      controller.abort();
      clearTimeout(timer);
    };
  }, [slug]);

  return (
    <div className="sp-public">
      <div className="sp-public__bar">
        <Button
          size="small"
          onClick={toggleTheme}
          aria-label={`Switch to ${theme === 'dark' ? 'light' : 'dark'} theme`}
        >
          {theme === 'dark' ? 'Light theme' : 'Dark theme'}
        </Button>
      </div>
      {loaded && 'page' in loaded ? (
        <StatusPageView page={loaded.page} />
      ) : (
        <div className="sp-page">
          {loaded === null ? (
            <p className="sp-muted">Loading…</p>
          ) : 'missing' in loaded ? (
            <>
              <h1>No such status page</h1>
              <p className="sp-muted">This page does not exist or is not published.</p>
            </>
          ) : (
            <p className="fw-alert" role="alert">
              The status could not be loaded; it is tried again shortly.
            </p>
          )}
        </div>
      )}
    </div>
  );
}
