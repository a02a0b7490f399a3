import { useQuery } from '@tanstack/react-query';
import { Link } from 'react-router';
import type { AlertView } from '@fleetwatch/contracts';
import { ErrorNote, formatLocal, PageHeader, Table, useNow } from '@fleetwatch/ui';
import { enc } from '../../../api/client';
import { alertKeys, fetchAlerts } from '../../../api/alert-queries';
import { AlertsNav } from '../alerts-nav';
import { LabelChips } from '../label-chips';
import { silenceLinkFor } from '../silences/silence-form-model';
import { formatDuration, secondsNow } from './alert-duration';
import { useCanWrite } from '../../../session';

/** Alerts change with target states and the evaluator's tick: asked again this often. */
export const ALERTS_REFRESH_MS = 5_000;

/** The labels every alert has are columns of their own. */
const OWN_COLUMNS = ['alertname', 'severity', 'target', 'rule_id'];

export function AlertState({ alert }: { alert: AlertView }) {
  return (
    <span className="fw-alert-state" data-state={alert.state}>
      {alert.state}
    </span>
  );
}

export function AlertTarget({ alert }: { alert: AlertView }) {
  return <Link to={`/targets/${enc(alert.targetId)}`}>{alert.targetName ?? alert.targetId}</Link>;
}

/** How long in its state, counting on between refreshes. */
export function AlertDuration({ alert, generatedAt }: { alert: AlertView; generatedAt: string }) {
  const now = useNow(1000);
  return (
    <time dateTime={alert.since} title={`since ${formatLocal(alert.since)}`} data-duration>
      {formatDuration(secondsNow(alert.durationSeconds, generatedAt, now))}
    </time>
  );
}

export function muteText(a: AlertView): string | null {
  if (!a.muted) return null;
  return a.muted.kind === 'silence' ? 'silenced' : 'in maintenance';
}

export function AlertsPage() {
  const canWrite = useCanWrite();
  const alerts = useQuery({
    queryKey: alertKeys.alerts(),
    queryFn: ({ signal }) => fetchAlerts({}, signal),
    refetchInterval: ALERTS_REFRESH_MS,
  });
  const data = alerts.data;
  const firing = data?.items.filter((a) => a.state === 'firing') ?? [];
  const pending = data?.items.filter((a) => a.state === 'pending') ?? [];
  const rows = [...firing, ...pending];

  return (
    <>
      <PageHeader title="Alerts" />
      <AlertsNav />
      <p className="fw-row" data-testid="alert-counts">
        <span className="fw-alert-state" data-state="firing">
          {data ? data.counts.firing : '…'} firing
        </span>
        <span className="fw-alert-state" data-state="pending">
          {data ? data.counts.pending : '…'} pending
        </span>
        <span className="fw-muted">refreshed every {ALERTS_REFRESH_MS / 1000} s</span>
        {data && data.items.length < data.counts.firing + data.counts.pending && (
          <span className="fw-muted">showing the newest {data.items.length.toLocaleString()}</span>
        )}
      </p>
      <ErrorNote error={alerts.error} />
      <Table
        caption="Firing and pending alerts"
        rows={rows}
        rowKey={(a) => a.id}
        empty={alerts.isPending ? 'Loading…' : 'Nothing is firing or pending.'}
        columns={[
          { key: 'state', header: 'State', cell: (a) => <AlertState alert={a} /> },
          {
            key: 'rule',
            header: 'Alert',
            cell: (a) => <Link to={`/alerts/rules/${enc(a.ruleId)}`}>{a.ruleName}</Link>,
          },
          { key: 'target', header: 'Target', cell: (a) => <AlertTarget alert={a} /> },
          {
            key: 'severity',
            header: 'Severity',
            cell: (a) => (
              <span className="fw-alert-state" data-state={a.severity}>
                {a.severity}
              </span>
            ),
          },
          {
            key: 'for',
            header: 'For',
            cell: (a) => (data ? <AlertDuration alert={a} generatedAt={data.generatedAt} /> : null),
          },
          { key: 'value', header: 'Value', cell: (a) => (a.value === null ? '' : String(a.value)) },
          { key: 'labels', header: 'Labels', cell: (a) => <LabelChips labels={a.labels} skip={OWN_COLUMNS} /> },
          {
            key: 'actions',
            header: <span className="fw-visually-hidden">Actions</span>,
            cell: (a) => (
              <span className="fw-row">
                {muteText(a) && <span className="fw-chip">{muteText(a)}</span>}
                {canWrite && (
                  <Link
                    className="fw-button fw-button--small"
                    to={silenceLinkFor(a.labels)}
                    aria-label={`Silence ${a.ruleName} on ${a.targetName ?? a.targetId}`}
                  >
                    Silence
                  </Link>
                )}
              </span>
            ),
          },
        ]}
      />
    </>
  );
}
