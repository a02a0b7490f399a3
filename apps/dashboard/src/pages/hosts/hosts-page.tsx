import { useQuery } from '@tanstack/react-query';
import { Link, useLocation, useNavigate, useSearchParams } from 'react-router';
import { Button, Card, ErrorNote, PageHeader, RelativeTime, StatusBadge, Table } from '@fleetwatch/ui';
import { fetchHostsPage, keys } from '../../api/queries';
import { LIVE_POLL_MS } from '../../live';
import { bytes, pct } from './host-series';
import { HostSparklines } from './host-sparklines';

/** Hosts a page shows (the sparklines card shows the first 50 of them). */
export const HOSTS_PAGE = 100;

/** The cursors of the pages before this one, oldest first (null: the first page), as Next left them. */
function trailOf(state: unknown): (string | null)[] {
  const trail = (state as { hostsTrail?: unknown } | null)?.hostsTrail;
  return Array.isArray(trail) && trail.every((c) => c === null || typeof c === 'string') ? trail : [];
}

/**
 * The hosts, one page at a time by id (`?after=` the last id of the page before; none: the first page): only the page
 * shown is read, at first and every 10 s — not the whole inventory (10 requests and 10,000 rows for 10,000 hosts).
 * Next and Previous page on (each a history entry: Back works too); a page opened by its address has First page.
 */
export function HostsPage() {
  const [params] = useSearchParams();
  const location = useLocation();
  const navigate = useNavigate();
  const after = params.get('after') || null;
  const trail = trailOf(location.state);
  const hosts = useQuery({
    queryKey: keys.hostsPage(after, HOSTS_PAGE),
    queryFn: ({ signal }) => fetchHostsPage(after, HOSTS_PAGE, signal),
    refetchInterval: LIVE_POLL_MS,
  });
  const open = (cursor: string | null, hostsTrail: (string | null)[]) =>
    void navigate(
      { search: cursor === null ? '' : `?${new URLSearchParams({ after: cursor })}` },
      { state: { hostsTrail } },
    );
  const next = hosts.data?.nextCursor ?? null;
  // Where this page sits, when the way here is known (Next from the first page on); else only what it starts after.
  const offset = after === null ? 0 : trail[0] === null ? trail.length * HOSTS_PAGE : null;
  const items = hosts.data?.items ?? [];
  return (
    <>
      <PageHeader title="Hosts">
        <span className="fw-muted">{hosts.data ? `${hosts.data.total} hosts` : ''}</span>
      </PageHeader>
      <ErrorNote error={hosts.error} />
      <div className="fw-stack">
        <Card title="Last hour">
          <HostSparklines hosts={items.slice(0, 50)} loading={hosts.isPending} />
        </Card>
        <Card
          title="Inventory"
          actions={
            <span className="fw-row" role="group" aria-label="Pages of hosts">
              <span className="fw-muted" aria-live="polite" data-testid="hosts-shown">
                {hosts.data && items.length > 0
                  ? offset === null
                    ? `${items.length} after ${after}`
                    : `${(offset + 1).toLocaleString()}–${(offset + items.length).toLocaleString()}`
                  : ''}
              </span>
              <Button size="small" disabled={after === null} onClick={() => open(null, [])}>
                First page
              </Button>
              <Button
                size="small"
                disabled={after === null || trail.length === 0}
                onClick={() => open(trail[trail.length - 1] ?? null, trail.slice(0, -1))}
              >
                Previous
              </Button>
              <Button size="small" disabled={next === null} onClick={() => open(next, [...trail, after])}>
                Next
              </Button>
            </span>
          }
        >
          <Table
            caption="Hosts"
            rows={items}
            rowKey={(h) => h.id}
            empty={hosts.isPending ? 'Loading…' : after === null ? 'No hosts report yet.' : 'No hosts after this one.'}
            columns={[
              {
                key: 'name',
                header: 'Host',
                cell: (h) => <Link to={`/hosts/${encodeURIComponent(h.id)}`}>{h.name}</Link>,
              },
              { key: 'status', header: 'Status', cell: (h) => <StatusBadge status={h.status} /> },
              { key: 'loc', header: 'Locations', cell: (h) => h.locations.join(', ') },
              {
                key: 'os',
                header: 'System',
                cell: (h) =>
                  h.system
                    ? [h.system.distro ?? h.system.platform, h.system.release].filter(Boolean).join(' ') || '—'
                    : '—',
              },
              { key: 'cores', header: 'Cores', cell: (h) => h.lastSample?.cores ?? '—' },
              { key: 'load', header: 'Load', cell: (h) => h.lastSample?.load1.toFixed(2) ?? '—' },
              {
                key: 'mem',
                header: 'Memory',
                cell: (h) =>
                  h.lastSample
                    ? `${bytes(h.lastSample.memoryUsedBytes)} / ${bytes(h.lastSample.memoryTotalBytes)} (${pct(h.lastSample.memoryUsedBytes, h.lastSample.memoryTotalBytes)})`
                    : '—',
              },
              { key: 'seen', header: 'Last seen', cell: (h) => <RelativeTime iso={h.lastSeen} /> },
            ]}
          />
        </Card>
      </div>
    </>
  );
}
