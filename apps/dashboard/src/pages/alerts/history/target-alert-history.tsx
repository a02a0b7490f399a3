import { useQuery } from '@tanstack/react-query';
import { Link } from 'react-router';
import { Card, ErrorNote, RelativeTime, Table } from '@fleetwatch/ui';
import { alertKeys, fetchAlertHistory } from '../../../api/alert-queries';
import { LIVE_POLL_MS } from '../../../live';
import { EMPTY_HISTORY_FILTER, formatAlertValue, historyLinkFor, TARGET_HISTORY_SHOWN } from './history-model';
import { HistoryChange, HistoryEndReason, HistoryRule, HistorySeverity } from './history-parts';
import '../alerts.css';

/** The target detail page's card: the target's newest alert state changes, and a link to all of them. */
export function TargetAlertHistory({ targetId }: { targetId: string }) {
  const filter = { ...EMPTY_HISTORY_FILTER, targetId };
  const history = useQuery({
    queryKey: alertKeys.history(filter, TARGET_HISTORY_SHOWN),
    queryFn: ({ signal }) => fetchAlertHistory(filter, null, TARGET_HISTORY_SHOWN, signal),
    refetchInterval: LIVE_POLL_MS,
  });
  const rows = history.data?.items ?? [];
  return (
    <Card title="Alert history" actions={<Link to={historyLinkFor(targetId)}>All of this target’s changes</Link>}>
      <ErrorNote error={history.error} />
      <Table
        caption="This target's alert state changes, newest first"
        rows={rows}
        rowKey={(e) => e.id}
        empty={
          history.isPending
            ? 'Loading…'
            : history.isError
              ? 'The alert history could not be read.'
              : 'No alert has changed state for this target.'
        }
        columns={[
          { key: 'at', header: 'When', cell: (e) => <RelativeTime iso={e.at} /> },
          { key: 'rule', header: 'Alert', cell: (e) => <HistoryRule entry={e} /> },
          { key: 'severity', header: 'Severity', cell: (e) => <HistorySeverity entry={e} /> },
          { key: 'change', header: 'Change', cell: (e) => <HistoryChange entry={e} /> },
          { key: 'reason', header: 'Reason', cell: (e) => <HistoryEndReason entry={e} /> },
          { key: 'value', header: 'Value', cell: (e) => formatAlertValue(e.value) },
        ]}
      />
    </Card>
  );
}
