import { useQuery } from '@tanstack/react-query';
import { Link } from 'react-router';
import { Card, ErrorNote, PageHeader, RelativeTime, StatusBadge, Table } from '@fleetwatch/ui';
import { fetchHosts, keys } from '../../api/queries';
import { LIVE_POLL_MS } from '../../live';
import { bytes, pct } from './host-series';
import { HostSparklines } from './host-sparklines';

export function HostsPage() {
  const hosts = useQuery({
    queryKey: keys.hosts(),
    queryFn: ({ signal }) => fetchHosts(signal),
    refetchInterval: LIVE_POLL_MS,
  });
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
        <Card title="Inventory">
          <Table
            caption="Hosts"
            rows={items}
            rowKey={(h) => h.id}
            empty={hosts.isPending ? 'Loading…' : 'No hosts report yet.'}
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
