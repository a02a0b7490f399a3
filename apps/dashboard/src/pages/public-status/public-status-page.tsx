import { useQuery } from '@tanstack/react-query';
import { useParams } from 'react-router';
import type { PublicStatusPage } from '@fleetwatch/contracts';
import { Button, useTheme } from '@fleetwatch/ui';
import { api, ApiError, enc } from '../../api/client';
import { StatusPageView } from './status-page-view';
import './public-status.css';

/** `/status/:slug`: a published status page, for anyone — no session, no navigation, nothing internal. */
export function PublicStatusPageRoute() {
  const slug = useParams()['slug'] ?? '';
  const [theme, toggleTheme] = useTheme();
  const page = useQuery({
    queryKey: ['fleetwatch', 'public-status', slug],
    queryFn: ({ signal }) => api<PublicStatusPage>(`/api/v1/public/status-pages/${enc(slug)}`, { signal }),
    // The gateway caches the answer for 15 s: asking more often shows nothing new.
    refetchInterval: 30_000,
    staleTime: 15_000,
  });
  const missing = page.error instanceof ApiError && page.error.status === 404;
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
      {page.data ? (
        <StatusPageView page={page.data} />
      ) : (
        <div className="sp-page">
          {page.isPending ? (
            <p className="sp-muted">Loading…</p>
          ) : missing ? (
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
