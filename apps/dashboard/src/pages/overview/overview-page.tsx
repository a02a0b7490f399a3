import { useQuery } from '@tanstack/react-query';
import { Link } from 'react-router';
import { TargetStatus } from '@fleetwatch/contracts';
import { Card, ErrorNote, PageHeader, RelativeTime, StatusBadge, Table } from '@fleetwatch/ui';
import { fetchFirstHosts, fetchRecentChanges, fetchStatusCounts, keys } from '../../api/queries';
import { LIVE_POLL_MS } from '../../live';
import { HostSparklines } from '../hosts/host-sparklines';
import { FiringAlerts } from '../alerts/firing/firing-alerts';
import './overview.css';

const STATUSES = Object.values(TargetStatus);
/** Rows of "Latest status changes". */
const RECENT = 12;
/** Hosts on the overview's card. */
const HOSTS_SHOWN = 12;

export function OverviewPage() {
  const counts = useQuery({
    queryKey: keys.counts(),
    queryFn: ({ signal }) => fetchStatusCounts(signal),
    refetchInterval: LIVE_POLL_MS,
  });
  // Only the rows shown: the server reads them off its index of status changes (the whole fleet never comes here).
  const targets = useQuery({
    queryKey: keys.recent(RECENT),
    queryFn: ({ signal }) => fetchRecentChanges(RECENT, signal),
    refetchInterval: LIVE_POLL_MS,
  });
  const hosts = useQuery({
    queryKey: keys.firstHosts(HOSTS_SHOWN),
    queryFn: ({ signal }) => fetchFirstHosts(HOSTS_SHOWN, signal),
    refetchInterval: LIVE_POLL_MS,
  });
  const recent = targets.data ?? [];

  return (
    <>
      <PageHeader title="Overview" />
      <ErrorNote error={counts.error ?? targets.error ?? hosts.error} />
      <section aria-label="Targets by status" className="fw-overview-counts" data-testid="status-counts">
        <Link to="/targets" className="fw-count fw-card" data-count="all">
          <span className="fw-count__n">{counts.data?.all.toLocaleString() ?? '…'}</span>
          <span>All targets</span>
        </Link>
        {STATUSES.map((s) => (
          <Link key={s} to={`/targets?status=${s}`} className="fw-count fw-card" data-count={s}>
            <span className="fw-count__n">{counts.data?.[s].toLocaleString() ?? '…'}</span>
            <StatusBadge status={s} />
          </Link>
        ))}
      </section>
      <div className="fw-overview-grid">
        <FiringAlerts />
        <Card title="Latest status changes">
          <Table
            caption="Targets whose status changed most recently"
            rows={recent}
            rowKey={(t) => t.id}
            empty={targets.isPending ? 'Loading…' : 'No status changes yet.'}
            columns={[
              {
                key: 'name',
                header: 'Target',
                cell: (t) => <Link to={`/targets/${encodeURIComponent(t.id)}`}>{t.name}</Link>,
              },
              { key: 'status', header: 'Status', cell: (t) => <StatusBadge status={t.status} /> },
              { key: 'since', header: 'Since', cell: (t) => <RelativeTime iso={t.since} /> },
            ]}
          />
        </Card>
        <Card title="Hosts" actions={<Link to="/hosts">All hosts</Link>}>
          <HostSparklines hosts={hosts.data?.items ?? []} loading={hosts.isPending} />
        </Card>
      </div>
    </>
  );
}
