import { useInfiniteQuery, useQuery } from '@tanstack/react-query';
import { DELIVERY_OUTCOMES, type DeliveryLogEntryView } from '@fleetwatch/contracts';
import { Button, ErrorNote, PageHeader, RelativeTime, SelectField, Table } from '@fleetwatch/ui';
import { alertKeys, fetchChannels, fetchDeliveries, type DeliveryFilter } from '../../../api/alert-queries';
import { LIVE_POLL_MS } from '../../../live';
import { useSearchParamsEditor } from '../../../search-params';
import { AlertsNav } from '../alerts-nav';

function AlertsOf({ d }: { d: DeliveryLogEntryView }) {
  if (d.test) return <span className="fw-chip">test-send</span>;
  if (!d.alerts.length) return <span className="fw-muted">{d.alertCount} alerts</span>;
  const more = d.alertCount - d.alerts.length;
  return (
    <span className="fw-labels">
      {d.alerts.map((a) => (
        <span key={`${a.id}-${a.status}`} className="fw-chip">
          {a.ruleName}
          {a.targetId ? ` · ${a.targetId}` : ''} ({a.status})
        </span>
      ))}
      {more > 0 && <span className="fw-muted">+{more} more</span>}
    </span>
  );
}

export function DeliveriesPage() {
  const [params, editParams] = useSearchParamsEditor();
  const filter: DeliveryFilter = {
    channelId: params.get('channel') ?? undefined,
    outcome: (DELIVERY_OUTCOMES as readonly string[]).includes(params.get('outcome') ?? '')
      ? (params.get('outcome') ?? undefined)
      : undefined,
  };
  const channels = useQuery({ queryKey: alertKeys.channels(), queryFn: ({ signal }) => fetchChannels(signal) });
  const log = useInfiniteQuery({
    queryKey: alertKeys.deliveries(filter),
    queryFn: ({ signal, pageParam }) => fetchDeliveries(filter, pageParam, signal),
    initialPageParam: null as string | null,
    getNextPageParam: (last) => last.nextCursor,
    refetchInterval: LIVE_POLL_MS,
  });
  const rows = log.data?.pages.flatMap((p) => p.items) ?? [];
  const setFilter = (k: 'channel' | 'outcome', v: string) => {
    editParams(
      (next) => {
        if (v) next.set(k, v);
        else next.delete(k);
      },
      { replace: true },
    );
  };

  return (
    <>
      <PageHeader title="Delivery log" />
      <AlertsNav />
      <div className="fw-grid fw-alerts-filters">
        <SelectField
          label="Channel"
          value={filter.channelId ?? ''}
          onChange={(e) => setFilter('channel', e.target.value)}
          options={[
            { value: '', label: 'every channel' },
            ...(channels.data ?? []).map((c) => ({ value: c.id, label: c.name })),
          ]}
        />
        <SelectField
          label="Outcome"
          value={filter.outcome ?? ''}
          onChange={(e) => setFilter('outcome', e.target.value)}
          options={[{ value: '', label: 'every outcome' }, ...DELIVERY_OUTCOMES.map((o) => ({ value: o, label: o }))]}
        />
      </div>
      <ErrorNote error={log.error ?? channels.error} />
      <Table
        caption="Notification deliveries, newest first"
        rows={rows}
        rowKey={(d) => d.id}
        empty={log.isPending ? 'Loading…' : 'Nothing delivered yet.'}
        columns={[
          { key: 'at', header: 'When', cell: (d) => <RelativeTime iso={d.at} /> },
          {
            key: 'channel',
            header: 'Channel',
            cell: (d) => (
              <span>
                {d.channelName ?? <span className="fw-muted">{d.channelId} (deleted)</span>}{' '}
                <span className="fw-muted">{d.channelType}</span>
              </span>
            ),
          },
          {
            key: 'outcome',
            header: 'Outcome',
            cell: (d) => (
              <span className="fw-alert-state" data-state={d.outcome}>
                {d.outcome}
              </span>
            ),
          },
          { key: 'status', header: 'Message', cell: (d) => d.status },
          { key: 'alerts', header: 'Alerts', cell: (d) => <AlertsOf d={d} /> },
          { key: 'attempt', header: 'Attempt', cell: (d) => d.attempt },
          {
            key: 'answer',
            header: 'Answer',
            cell: (d) =>
              [d.httpStatus === null ? null : `HTTP ${d.httpStatus}`, `${d.durationMs} ms`, d.error]
                .filter(Boolean)
                .join(' · '),
          },
          {
            key: 'next',
            header: 'Next try',
            cell: (d) => (d.nextAttemptAt ? <RelativeTime iso={d.nextAttemptAt} /> : ''),
          },
        ]}
      />
      {log.hasNextPage && (
        <Button onClick={() => void log.fetchNextPage()} disabled={log.isFetchingNextPage}>
          {log.isFetchingNextPage ? 'Loading…' : 'Older deliveries'}
        </Button>
      )}
    </>
  );
}
