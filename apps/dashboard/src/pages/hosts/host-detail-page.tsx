import { useMemo } from 'react';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { Link, useNavigate, useParams, useSearchParams } from 'react-router';
import { UserRole, type HostMetricsResponse } from '@fleetwatch/contracts';
import {
  Button,
  Card,
  ErrorNote,
  PageHeader,
  RelativeTime,
  StatusBadge,
  Table,
  TimeChart,
  type ChartSeries,
} from '@fleetwatch/ui';
import { api, enc } from '../../api/client';
import { fetchHost, fetchHostMetrics, keys } from '../../api/queries';
import { LIVE_POLL_MS } from '../../live';
import { RemoveButton } from '../../remove-button';
import { roleAtLeast } from '../../roles';
import { useSession } from '../../session';
import { chartRange, RANGES, rangeOf } from '../target-detail/trend';
import { HostConflictNote } from './host-conflict-note';
import { MissingGpusNote } from './missing-gpus-note';
import { bytes, devicesOf, metricsPlaceholder, pct, percentOf, plain } from './host-series';
import './hosts.css';

const percent = (v: number) => `${v.toFixed(0)} %`;
const rate = (v: number) => `${bytes(v)}/s`;

/** One chart's columns from several series on a shared time axis. */
function columns(r: HostMetricsResponse | undefined, picks: { label: string; data: ReturnType<typeof plain> }[]) {
  const times = [...new Set(picks.flatMap((p) => p.data.times))].sort((a, b) => a - b);
  const series: ChartSeries[] = picks.map((p, i) => {
    const at = new Map(p.data.times.map((t, j) => [t, p.data.values[j]]));
    return { label: p.label, color: `--fw-chart-${(i % 3) + 1}`, values: times.map((t) => at.get(t) ?? null) };
  });
  return { times, series, empty: !r || times.length === 0 };
}

export function HostDetailPage() {
  const id = useParams()['id'] ?? '';
  const [params, setParams] = useSearchParams();
  const range = rangeOf(params.get('range'));
  const host = useQuery({
    queryKey: keys.host(id),
    queryFn: ({ signal }) => fetchHost(id, signal),
    refetchInterval: LIVE_POLL_MS,
  });
  const metrics = useQuery({
    queryKey: keys.hostMetrics(id, range.minutes),
    queryFn: ({ signal }) => fetchHostMetrics(id, range.minutes, signal),
    // This host's previous range while the new one loads (cut to it); never another host's series.
    placeholderData: (previous) => metricsPlaceholder(previous, id, range.minutes),
    refetchInterval: range.minutes <= 60 ? LIVE_POLL_MS : LIVE_POLL_MS * 6,
  });
  const { user } = useSession();
  const navigate = useNavigate();
  const queryClient = useQueryClient();
  // Retiring a host (decommissioned, renamed): it leaves the list once the aggregator has taken it in (202 first);
  // its history stays, and a new sample from it brings it back.
  const remove = useMutation({
    mutationFn: () => api(`/api/v1/hosts/${enc(id)}`, { method: 'DELETE' }),
    onSuccess: () => {
      queryClient.removeQueries({ queryKey: keys.host(id), exact: true });
      void queryClient.invalidateQueries({ queryKey: keys.hosts() });
      void navigate('/hosts');
    },
  });
  const m = metrics.data;
  const charts = useMemo(
    () => [
      { title: 'CPU', format: percent, ...columns(m, [{ label: 'CPU %', data: plain(m, 'cpu_pct') }]) },
      {
        title: 'Load (1 min)',
        format: (v: number) => v.toFixed(2),
        ...columns(m, [{ label: 'load1', data: plain(m, 'load1') }]),
      },
      {
        title: 'Memory and disk',
        format: percent,
        ...columns(m, [
          { label: 'memory %', data: percentOf(m, 'mem_used_bytes', 'mem_total_bytes') },
          { label: 'disk %', data: percentOf(m, 'disk_used_bytes', 'disk_total_bytes') },
          { label: 'swap %', data: percentOf(m, 'swap_used_bytes', 'swap_total_bytes') },
        ]),
      },
      {
        title: 'Network',
        format: rate,
        ...columns(m, [
          { label: 'received', data: plain(m, 'net_rx_bps') },
          { label: 'sent', data: plain(m, 'net_tx_bps') },
        ]),
      },
      ...(devicesOf(m, 'gpu_util_pct').length
        ? [
            {
              title: 'GPU utilisation (all GPUs summed)',
              format: percent,
              ...columns(m, [{ label: 'GPU %', data: plain(m, 'gpu_util_pct') }]),
            },
          ]
        : []),
    ],
    [m],
  );
  const xRange = useMemo(
    () =>
      chartRange(
        range.minutes,
        metrics.dataUpdatedAt,
        Date.now(),
        Math.max(...charts.map((c) => c.times.at(-1) ?? -Infinity)),
      ),
    [range.minutes, metrics.dataUpdatedAt, charts],
  );
  const h = host.data;
  const sample = h?.sample;

  return (
    <>
      <PageHeader title={h?.target.name ?? id}>
        {h && <StatusBadge status={h.target.status} />}
        <Link to="/hosts">All hosts</Link>
        {h && user && roleAtLeast(user.role, UserRole.Operator) && (
          <RemoveButton
            label="Remove host"
            question={`Remove the host “${h.target.name}”? It leaves the host list, /metrics and alerting; its history is kept, and it comes back if it reports again.`}
            pending={remove.isPending}
            onConfirmed={() => remove.mutate()}
          />
        )}
      </PageHeader>
      <ErrorNote error={host.error ?? metrics.error ?? remove.error} />
      <HostConflictNote conflict={h?.conflict} />
      <MissingGpusNote gpus={sample?.missingGpus} />
      {h && (
        <div className="fw-stack">
          <div className="fw-grid">
            <Card title="System">
              <dl className="fw-facts">
                <dt>Host id</dt>
                <dd className="fw-mono">{h.id}</dd>
                <dt>System</dt>
                <dd>{[h.system?.distro ?? h.system?.platform, h.system?.release].filter(Boolean).join(' ') || '—'}</dd>
                <dt>Kernel</dt>
                <dd>{h.system?.kernel ?? '—'}</dd>
                <dt>Collector</dt>
                <dd>{h.system?.collectorVersion ?? '—'}</dd>
                <dt>Last sample</dt>
                <dd>
                  <RelativeTime iso={h.target.lastSeen} />
                </dd>
              </dl>
            </Card>
            <Card title="Disks">
              <Table
                caption="Disks of the latest sample"
                rows={sample?.disks ?? []}
                rowKey={(d) => d.mount}
                empty="No sample."
                columns={[
                  { key: 'mount', header: 'Mount', cell: (d) => <span className="fw-mono">{d.mount}</span> },
                  { key: 'used', header: 'Used', cell: (d) => `${bytes(d.usedBytes)} / ${bytes(d.totalBytes)}` },
                  { key: 'pct', header: '%', cell: (d) => pct(d.usedBytes, d.totalBytes) },
                ]}
              />
            </Card>
          </div>
          <div className="fw-row" role="group" aria-label="Time range">
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
            {m && (
              <span className="fw-muted">
                {metrics.isPlaceholderData
                  ? 'Loading…'
                  : m.resolution === 'raw'
                    ? 'every sample'
                    : `${m.stepSeconds ?? 60} s steps`}
              </span>
            )}
          </div>
          <div className="fw-host-charts">
            {charts.map((c) => (
              <Card key={c.title} title={c.title}>
                {c.empty ? (
                  <p className="fw-muted">{metrics.isPending ? 'Loading…' : 'No samples in this range.'}</p>
                ) : (
                  <TimeChart
                    label={`${c.title} over time`}
                    times={c.times}
                    series={c.series}
                    yFormat={c.format}
                    height={170}
                    xRange={xRange}
                    yRange={c.format === percent ? [0, 100] : undefined}
                  />
                )}
              </Card>
            ))}
          </div>
        </div>
      )}
    </>
  );
}
