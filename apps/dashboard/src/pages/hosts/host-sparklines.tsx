import { useQuery } from '@tanstack/react-query';
import { Link } from 'react-router';
import type { HostSummaryView } from '@fleetwatch/contracts';
import { Sparkline, StatusBadge } from '@fleetwatch/ui';
import { fetchHostMetrics, keys } from '../../api/queries';
import { LIVE_POLL_MS } from '../../live';
import { pct, percentOf, plain } from './host-series';
import './hosts.css';

function Trend({
  label,
  data,
  now,
}: {
  label: string;
  data: { times: number[]; values: (number | null)[] };
  now: string;
}) {
  return (
    <span className="fw-trend">
      <Sparkline times={data.times} values={data.values} max={100} label={`${label}, last hour`} />
      <span className="fw-trend__now">{now}</span>
    </span>
  );
}

function HostRow({ host }: { host: HostSummaryView }) {
  const metrics = useQuery({
    queryKey: keys.hostMetrics(host.id, 60),
    queryFn: ({ signal }) => fetchHostMetrics(host.id, 60, signal),
    refetchInterval: LIVE_POLL_MS * 3,
  });
  const s = host.lastSample;
  return (
    <tr data-host={host.id}>
      <td>
        <Link to={`/hosts/${encodeURIComponent(host.id)}`}>{host.name}</Link>
      </td>
      <td>
        <StatusBadge status={host.status} />
      </td>
      <td>
        <Trend label="CPU" data={plain(metrics.data, 'cpu_pct')} now={s ? `${s.cpuPct.toFixed(0)} %` : '—'} />
      </td>
      <td>
        <Trend
          label="Memory"
          data={percentOf(metrics.data, 'mem_used_bytes', 'mem_total_bytes')}
          now={pct(s?.memoryUsedBytes, s?.memoryTotalBytes)}
        />
      </td>
      <td>
        <Trend
          label="Disk"
          data={percentOf(metrics.data, 'disk_used_bytes', 'disk_total_bytes')}
          now={pct(s?.diskUsedBytes, s?.diskTotalBytes)}
        />
      </td>
      <td>{s && s.gpuCount > 0 ? `${s.gpuCount} × ${s.gpuMaxUtilizationPct ?? '—'} %` : '—'}</td>
    </tr>
  );
}

/** Hosts with their last hour of CPU, memory and disk use as sparklines. */
export function HostSparklines({ hosts, loading }: { hosts: readonly HostSummaryView[]; loading: boolean }) {
  return (
    <div className="fw-scroll-x">
      <table className="fw-table fw-host-trends">
        <caption className="fw-visually-hidden">Hosts with CPU, memory and disk over the last hour</caption>
        <thead>
          <tr>
            <th scope="col">Host</th>
            <th scope="col">Status</th>
            <th scope="col">CPU</th>
            <th scope="col">Memory</th>
            <th scope="col">Disk</th>
            <th scope="col">GPU</th>
          </tr>
        </thead>
        <tbody>
          {hosts.map((h) => (
            <HostRow key={h.id} host={h} />
          ))}
          {hosts.length === 0 && (
            <tr>
              <td colSpan={6} className="fw-muted">
                {loading ? 'Loading…' : 'No hosts report yet: a collector publishes its host’s metrics.'}
              </td>
            </tr>
          )}
        </tbody>
      </table>
    </div>
  );
}
