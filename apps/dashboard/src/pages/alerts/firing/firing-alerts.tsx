import { useQuery } from '@tanstack/react-query';
import { Link } from 'react-router';
import { Card, ErrorNote, Table } from '@fleetwatch/ui';
import { alertKeys, fetchAlerts } from '../../../api/alert-queries';
import { AlertDuration, AlertTarget, ALERTS_REFRESH_MS, muteText } from './alerts-page';

const SHOWN = 10;

/** The overview's card: how many alerts fire now, and the newest of them. */
export function FiringAlerts() {
  const alerts = useQuery({
    queryKey: alertKeys.firing(SHOWN),
    queryFn: ({ signal }) => fetchAlerts({ state: 'firing', limit: SHOWN }, signal),
    refetchInterval: ALERTS_REFRESH_MS,
  });
  const data = alerts.data;
  return (
    <Card
      title="Firing alerts"
      actions={
        <>
          <span
            className="fw-alert-state"
            data-state={data?.counts.firing ? 'firing' : 'resolved'}
            data-testid="firing-count"
            aria-label="Firing now"
          >
            {data ? data.counts.firing : '…'}
          </span>
          <Link to="/alerts">All alerts</Link>
        </>
      }
    >
      <ErrorNote error={alerts.error} />
      <Table
        caption="Firing alerts, newest first"
        rows={data?.items ?? []}
        rowKey={(a) => a.id}
        empty={alerts.isPending ? 'Loading…' : 'Nothing is firing.'}
        columns={[
          {
            key: 'rule',
            header: 'Alert',
            // Muted ones are firing too (counted), marked as the alerts page marks them: nobody is being paged.
            cell: (a) => (
              <span className="fw-row">
                {a.ruleName}
                {muteText(a) && <span className="fw-chip">{muteText(a)}</span>}
              </span>
            ),
          },
          { key: 'target', header: 'Target', cell: (a) => <AlertTarget alert={a} /> },
          {
            key: 'for',
            header: 'For',
            cell: (a) => (data ? <AlertDuration alert={a} generatedAt={data.generatedAt} /> : null),
          },
        ]}
      />
      {data && data.counts.firing > data.items.length && (
        <Link to="/alerts">and {data.counts.firing - data.items.length} more</Link>
      )}
    </Card>
  );
}
