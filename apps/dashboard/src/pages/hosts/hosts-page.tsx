import { useEffect, useRef, useState } from 'react';
import { useQuery } from '@tanstack/react-query';
import { useLocation } from 'react-router';
import { Button, Card, ErrorNote, PageHeader, RelativeTime, StatusBadge, Table, TextField } from '@fleetwatch/ui';
import { fetchHostCounts, fetchHostsPage, keys } from '../../api/queries';
import { LIVE_POLL_MS } from '../../live';
import { useRememberedFilter } from '../../remembered-filter';
import { StatusFilterButtons } from '../targets/status-filter-buttons';
import {
  EMPTY_HOST_FILTER,
  hostFilterToParams,
  hostsCountLabel,
  hostsPlaceholder,
  hostStatusChoices,
  isFiltered,
  parseHostFilter,
} from './host-filter';
import { HostListName } from './host-list-name';
import { bytes, pct } from './host-series';
import { HostSparklines } from './host-sparklines';
import './hosts.css';

/** Hosts a page shows (the sparklines card shows the first 50 of them). */
export const HOSTS_PAGE = 100;

const FILTER_KEY = 'fleetwatch.hosts.filter';

/** The cursors of the pages before this one, oldest first (null: the first page), as Next left them. */
function trailOf(state: unknown): (string | null)[] {
  const trail = (state as { hostsTrail?: unknown } | null)?.hostsTrail;
  return Array.isArray(trail) && trail.every((c) => c === null || typeof c === 'string') ? trail : [];
}

/** The `after` of a hosts page query's key (undefined: not one). */
function afterOfKey(key: readonly unknown[] | undefined): string | null | undefined {
  const part = key?.[2] as { after?: unknown } | undefined;
  return part?.after === null || typeof part?.after === 'string' ? part.after : undefined;
}

/**
 * The hosts, one page at a time by id (`?after=` the last id of the page before; none: the first page): only the page
 * shown is read, at first and every 10 s — not the whole inventory (10 requests and 10,000 rows for 10,000 hosts).
 * Next and Previous page on (each a history entry: Back works too); a page opened by its address has First page.
 * The filter (status, location, search; in the address with `after`, so a filtered view can be shared) is the
 * gateway's: a page is a page of the hosts it takes, and the header counts them against every host.
 */
export function HostsPage() {
  const { filter, params, editParams, setFilter } = useRememberedFilter(
    FILTER_KEY,
    parseHostFilter,
    hostFilterToParams,
  );
  const location = useLocation();
  const after = params.get('after') || null;
  const trail = trailOf(location.state);
  const filtered = isFiltered(filter);

  // Location and search reach the URL (and the API) once typing pauses, trimmed; the boxes show what was typed at
  // once. The address coming back with what the boxes sent leaves them alone: put back in them, it took away a space
  // typed before the pause ('debian ' sent as 'debian', then '12' made 'debian12') and any key typed while the
  // address changed. Another change of the address (Back, Clear, a link) is put in them.
  const [locationDraft, setLocationDraft] = useState(filter.location);
  const [qDraft, setQDraft] = useState(filter.q);
  const sent = useRef({ location: filter.location, q: filter.q });
  useEffect(() => {
    if (filter.location !== sent.current.location) setLocationDraft(filter.location);
    sent.current.location = filter.location;
  }, [filter.location]);
  useEffect(() => {
    if (filter.q !== sent.current.q) setQDraft(filter.q);
    sent.current.q = filter.q;
  }, [filter.q]);
  useEffect(() => {
    if (locationDraft.trim() === filter.location && qDraft.trim() === filter.q) return;
    const t = setTimeout(() => {
      const typed = { location: locationDraft.trim(), q: qDraft.trim() };
      sent.current = { ...typed };
      setFilter((f) => ({ ...f, ...typed }), true);
    }, 300);
    return () => clearTimeout(t);
  });

  const hosts = useQuery({
    queryKey: keys.hostsPage(after, HOSTS_PAGE, filter),
    queryFn: ({ signal }) => fetchHostsPage(after, HOSTS_PAGE, signal, filter),
    // A new filter's first page: the first page shown, less the hosts the new filter does not take, until it comes.
    placeholderData: (previous, previousQuery) =>
      hostsPlaceholder(previous, afterOfKey(previousQuery?.queryKey), after, filter),
    refetchInterval: LIVE_POLL_MS,
  });
  const counts = useQuery({
    queryKey: keys.hostCounts(),
    queryFn: ({ signal }) => fetchHostCounts(signal),
    refetchInterval: LIVE_POLL_MS,
  });
  const open = (cursor: string | null, hostsTrail: (string | null)[]) =>
    editParams((current) => hostFilterToParams(parseHostFilter(current), cursor), { state: { hostsTrail } });
  const loading = hosts.isPending || hosts.isPlaceholderData;
  const next = hosts.data?.nextCursor ?? null;
  // Where this page sits, when the way here is known (Next from the first page on); else only what it starts after.
  const offset = after === null ? 0 : trail[0] === null ? trail.length * HOSTS_PAGE : null;
  const items = hosts.data?.items ?? [];
  return (
    <>
      <PageHeader title="Hosts">
        <span className="fw-muted" aria-live="polite" data-testid="hosts-count">
          {hosts.isPlaceholderData
            ? 'Loading…'
            : hosts.data
              ? hostsCountLabel(hosts.data.total, counts.data?.all, filtered)
              : ''}
        </span>
      </PageHeader>
      <ErrorNote error={hosts.error ?? counts.error} />
      <div className="fw-stack">
        <StatusFilterButtons
          selected={filter.status}
          counts={counts.data}
          statuses={hostStatusChoices(counts.data, filter.status)}
          onChange={(change) => setFilter((f) => ({ ...f, status: change(f.status) }))}
        />
        <div className="fw-row fw-hosts-filters">
          <TextField
            label="Location"
            name="location"
            value={locationDraft}
            onChange={(e) => setLocationDraft(e.target.value)}
          />
          <TextField
            label="Search"
            name="q"
            type="search"
            placeholder="id, hostname, OS"
            value={qDraft}
            onChange={(e) => setQDraft(e.target.value)}
          />
          {filtered && (
            <Button size="small" onClick={() => setFilter(() => EMPTY_HOST_FILTER)}>
              Clear filter
            </Button>
          )}
        </div>
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
            empty={
              loading
                ? 'Loading…'
                : filtered
                  ? after === null
                    ? 'No hosts match this filter.'
                    : 'No more hosts match this filter.'
                  : after === null
                    ? 'No hosts report yet.'
                    : 'No hosts after this one.'
            }
            columns={[
              {
                key: 'name',
                header: 'Host',
                cell: (h) => <HostListName host={h} />,
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
