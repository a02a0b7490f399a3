import { useMemo } from 'react';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { Link, useNavigate, useParams, useSearchParams } from 'react-router';
import {
  Button,
  Card,
  ErrorNote,
  formatLocal,
  PageHeader,
  RelativeTime,
  StatusBadge,
  Table,
  TimeChart,
} from '@fleetwatch/ui';
import { UserRole, type TargetStatus } from '@fleetwatch/contracts';
import { instanceRemovalPath, removeInstance } from '../../api/admin-queries';
import { fetchHistory, fetchTarget, keys } from '../../api/queries';
import { RemoveButton } from '../../remove-button';
import { roleAtLeast } from '../../roles';
import { useSession } from '../../session';
import { LIVE_POLL_MS } from '../../live';
import { TargetAlertHistory } from '../alerts/history/target-alert-history';
import { chartRange, historyPlaceholder, latencyText, latestTitle, RANGES, rangeOf, trendOf } from './trend';

const ms = latencyText;
const percent = (v: number) => `${v} %`;

export function TargetDetailPage() {
  const id = useParams()['id'] ?? '';
  const [params, setParams] = useSearchParams();
  const range = rangeOf(params.get('range'));
  const target = useQuery({
    queryKey: keys.target(id),
    queryFn: ({ signal }) => fetchTarget(id, signal),
    refetchInterval: LIVE_POLL_MS,
  });
  const history = useQuery({
    queryKey: keys.history(id, range.minutes),
    queryFn: ({ signal }) => fetchHistory(id, range.minutes, signal),
    // This target's previous range while the new one loads (cut to it); never another target's history.
    placeholderData: (previous) => historyPlaceholder(previous, id, range.minutes),
    refetchInterval: range.minutes <= 60 ? LIVE_POLL_MS * 3 : LIVE_POLL_MS * 12,
  });
  const trend = useMemo(() => trendOf(history.data?.points ?? []), [history.data]);
  // The range the viewer chose, up to when the history was read (not uPlot's own range around the points).
  const xRange = useMemo(
    () => chartRange(range.minutes, history.dataUpdatedAt, Date.now(), trend.times.at(-1)),
    [range.minutes, history.dataUpdatedAt, trend],
  );
  const latency = useMemo(() => [{ label: 'latency', values: trend.latency, color: '--fw-chart-1' }], [trend]);
  const uptime = useMemo(() => [{ label: 'uptime', values: trend.uptime, color: '--fw-chart-2' }], [trend]);
  const latest = useMemo(
    () => [...(history.data?.points ?? [])].sort((a, b) => b.bucket.localeCompare(a.bucket)).slice(0, 20),
    [history.data],
  );
  const t = target.data;
  const { user } = useSession();
  const navigate = useNavigate();
  const queryClient = useQueryClient();
  // A pushed instance whose pusher is gone stays STALE for ever: an operator removes it (202 first; it leaves the
  // list once the aggregator has taken it in; its history stays, and an update it pushes later brings it back).
  const removalPath = user && roleAtLeast(user.role, UserRole.Operator) ? instanceRemovalPath(id) : null;
  const remove = useMutation({
    mutationFn: (path: string) => removeInstance(path),
    onSuccess: () => {
      queryClient.removeQueries({ queryKey: keys.target(id), exact: true });
      void queryClient.invalidateQueries({ queryKey: keys.all });
      void navigate('/instances');
    },
  });

  return (
    <>
      <PageHeader title={t?.name ?? id}>
        {t && <StatusBadge status={t.status} />}
        <Link to="/targets">All targets</Link>
        {t && removalPath && (
          <RemoveButton
            label="Remove instance"
            question={`Remove the instance “${t.name}”? It leaves the lists, /metrics and alerting; its history is kept, and it comes back if it pushes again.`}
            pending={remove.isPending}
            onConfirmed={() => remove.mutate(removalPath)}
          />
        )}
      </PageHeader>
      <ErrorNote error={target.error ?? history.error ?? remove.error} />
      {t && (
        <div className="fw-stack">
          <div className="fw-grid">
            <Card title="Now">
              <dl className="fw-facts">
                <dt>Id</dt>
                <dd className="fw-mono">{t.id}</dd>
                <dt>Kind</dt>
                <dd>{t.kind}</dd>
                <dt>Consensus</dt>
                <dd>
                  <StatusBadge status={t.consensus} />
                </dd>
                <dt>Since</dt>
                <dd>
                  <RelativeTime iso={t.since} /> <span className="fw-muted">({formatLocal(t.since)})</span>
                </dd>
                <dt>Last seen</dt>
                <dd>
                  <RelativeTime iso={t.lastSeen} />
                </dd>
                <dt>Tags</dt>
                <dd>{t.tags.join(', ') || '—'}</dd>
              </dl>
            </Card>
            <Card title="Per location">
              <Table
                caption="Status per location"
                rows={t.locations}
                rowKey={(l) => l.location}
                empty="No location has reported."
                columns={[
                  { key: 'loc', header: 'Location', cell: (l) => l.location },
                  { key: 'status', header: 'Status', cell: (l) => <StatusBadge status={l.status} /> },
                  { key: 'lat', header: 'Latency', cell: (l) => (l.latencyMs === null ? '—' : ms(l.latencyMs)) },
                  { key: 'seen', header: 'Last seen', cell: (l) => <RelativeTime iso={l.lastSeen} /> },
                  { key: 'detail', header: 'Detail', cell: (l) => l.detail ?? '' },
                ]}
              />
            </Card>
          </div>
          <Card
            title="History"
            actions={
              <span className="fw-row" role="group" aria-label="Time range">
                {RANGES.map((r) => (
                  <Button
                    key={r.key}
                    size="small"
                    aria-pressed={r.key === range.key}
                    onClick={() => setParams({ range: r.key }, { replace: true })}
                  >
                    {r.label}
                  </Button>
                ))}
                {history.isPlaceholderData && <span className="fw-muted">Loading…</span>}
              </span>
            }
          >
            {trend.times.length === 0 ? (
              <p className="fw-muted">{history.isPending ? 'Loading…' : 'No results in this range.'}</p>
            ) : (
              <div className="fw-stack">
                <TimeChart
                  label="Latency over time"
                  times={trend.times}
                  series={latency}
                  yFormat={ms}
                  height={180}
                  xRange={xRange}
                />
                <TimeChart
                  label="Uptime over time"
                  times={trend.times}
                  series={uptime}
                  yFormat={percent}
                  height={140}
                  xRange={xRange}
                  yRange={[0, 100]}
                />
              </div>
            )}
          </Card>
          <div className="fw-grid">
            <Card title="Status changes">
              <Table
                caption="Status changes in this range"
                rows={[...(history.data?.events ?? [])].reverse()}
                rowKey={(e) => `${e.at}-${e.location}-${e.to}`}
                empty="No status change in this range."
                columns={[
                  { key: 'at', header: 'When', cell: (e) => <RelativeTime iso={e.at} /> },
                  {
                    key: 'change',
                    header: 'Change',
                    cell: (e) => (
                      <>
                        <StatusBadge status={e.from as TargetStatus} /> → <StatusBadge status={e.to as TargetStatus} />
                      </>
                    ),
                  },
                  { key: 'loc', header: 'Location', cell: (e) => e.location ?? 'consensus' },
                  { key: 'why', header: 'Reason', cell: (e) => e.reason },
                ]}
              />
            </Card>
            <Card title={latestTitle(history.data)}>
              <Table
                caption="Latest results"
                rows={latest}
                rowKey={(p) => `${p.bucket}-${p.location}`}
                empty="No results yet."
                columns={[
                  { key: 'at', header: 'When', cell: (p) => <RelativeTime iso={p.bucket} /> },
                  { key: 'loc', header: 'Location', cell: (p) => p.location },
                  { key: 'ok', header: 'OK', cell: (p) => `${p.okCount}/${p.count}` },
                  { key: 'lat', header: 'Latency', cell: (p) => (p.avgLatencyMs === null ? '—' : ms(p.avgLatencyMs)) },
                ]}
              />
            </Card>
          </div>
          <TargetAlertHistory targetId={t.id} />
        </div>
      )}
    </>
  );
}
