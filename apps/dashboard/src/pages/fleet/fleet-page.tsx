import { useEffect, useLayoutEffect, useMemo } from 'react';
import { useQuery } from '@tanstack/react-query';
import { Link } from 'react-router';
import type { FlowFigures, FlowPoint, LeaderMemberView, LeaderStatsView } from '@fleetwatch/contracts';
import { Button, Card, ErrorNote, PageHeader, RelativeTime, Sparkline, StatusBadge } from '@fleetwatch/ui';
import { fetchFleetFlow, fetchFleetMembers, fetchFleetStats, fleetKeys } from '../../api/fleet-queries';
import { LIVE_POLL_MS } from '../../live';
import { useSearchParamsEditor } from '../../search-params';
import {
  ageText,
  bytesText,
  chosenView,
  countText,
  FLEET_VIEWS,
  flowFigureOf,
  flowSeries,
  flowTotal,
  pctText,
  stateBadge,
  tagsOf,
  VIEW_LABELS,
  withTag,
  type FleetView,
} from './fleet-view';
import './fleet.css';

export const VIEW_KEY = 'fleetwatch.fleet.view';
const FLOW_MINUTES = 60;

function Figure({ label, value, name }: { label: string; value: string; name: string }) {
  return (
    <div className="fw-fleet-figure" data-figure={name}>
      <dt>{label}</dt>
      <dd>{value}</dd>
    </div>
  );
}

/** Figures every card shows in the summary and detailed views. */
function SystemFigures({ m, detailed }: { m: LeaderMemberView; detailed: boolean }) {
  const r = m.report;
  const gpu = r?.hosts && r.hosts.gpuCount > 0 ? `${r.hosts.gpuCount} × ${pctText(r.hosts.gpuUtilPct)}` : '—';
  return (
    <dl className="fw-fleet-figures">
      <Figure name="down" label="Down" value={countText(r?.errors?.down)} />
      <Figure name="errors" label="Failed 15 min" value={countText(r?.errors?.failedResults15m)} />
      <Figure name="in-flight" label="In flight" value={countText(r?.broker?.inFlight)} />
      <Figure name="queued" label="Queued" value={countText(r?.broker?.queued)} />
      <Figure name="cpu" label="CPU" value={pctText(r?.hosts?.cpuPct)} />
      <Figure name="memory" label="Memory" value={pctText(r?.hosts?.memoryUsedPct)} />
      <Figure name="disk" label="Disk" value={pctText(r?.hosts?.diskUsedPct)} />
      <Figure name="gpu" label="GPU" value={gpu} />
      <Figure name="flow-in" label="In 5 min" value={countText(r?.flow?.ingress.count)} />
      <Figure name="flow-out" label="Out 5 min" value={countText(r?.flow?.egress.count)} />
      {detailed && (
        <>
          <Figure name="dead-lettered" label="Dead-lettered" value={countText(r?.errors?.deadLettered)} />
          <Figure name="hosts" label="Hosts up" value={r?.hosts ? `${r.hosts.up} / ${r.hosts.count}` : '—'} />
          <Figure name="stored" label="Stored 5 min" value={bytesText(r?.flow?.stored.bytes)} />
          <Figure name="deleted" label="Deleted 5 min" value={countText(r?.flow?.deleted.count)} />
        </>
      )}
    </dl>
  );
}

function StatusCounts({ m }: { m: LeaderMemberView }) {
  const entries = Object.entries(m.report?.status ?? {}).filter(([, n]) => n > 0);
  if (entries.length === 0) return null;
  return (
    <p className="fw-row fw-fleet-status" aria-label="Targets by status">
      {entries.map(([s, n]) => (
        <span key={s} className="fw-status" data-status={s}>
          {s} {n}
        </span>
      ))}
    </p>
  );
}

/** `points`: undefined while the flow is loading, null when the member reports none (an older site). */
function FlowCard({ points, figure }: { points: FlowPoint[] | null | undefined; figure: keyof FlowFigures }) {
  const series = useMemo(() => flowSeries(points, figure), [points, figure]);
  const total = useMemo(() => flowTotal(points, figure), [points, figure]);
  if (points === undefined) return <p className="fw-muted">Loading…</p>;
  if (points === null) return <p className="fw-muted">This member does not report flow.</p>;
  return (
    <div className="fw-fleet-flow">
      <Sparkline times={series.times} values={series.values} label={`${figure} per minute, last hour`} />
      <dl className="fw-fleet-figures">
        <Figure name={`${figure}-count`} label={`${figure}, ${FLOW_MINUTES} min`} value={countText(total.count)} />
        <Figure name={`${figure}-bytes`} label="bytes" value={bytesText(total.bytes)} />
      </dl>
    </div>
  );
}

function MemberCard({ m, view, flow }: { m: LeaderMemberView; view: FleetView; flow: FlowPoint[] | null | undefined }) {
  const badge = stateBadge(m.state);
  const figure = flowFigureOf(view);
  const reporting = m.state === 'OK';
  return (
    <Card
      className={reporting ? 'fw-member' : 'fw-member fw-member--stale'}
      data-member={m.name}
      data-state={m.state}
      aria-label={`Member ${m.name}`}
      title={m.name}
      actions={
        <span className="fw-row">
          <StatusBadge status={badge.status} label={badge.label} />
          {m.tags.map((t) => (
            <span key={t} className="fw-chip">
              {t}
            </span>
          ))}
        </span>
      }
    >
      {!reporting && (
        <p className="fw-member__problem" data-testid="member-problem">
          {m.state === 'STALE' ? `Not reporting — last good data ${ageText(m.ageSeconds)} old` : 'Never reached'}
          {m.error && (
            <>
              : <span className="fw-member__error">{m.error}</span>
            </>
          )}
        </p>
      )}
      {m.report === null ? (
        <p className="fw-muted">No report yet.</p>
      ) : figure ? (
        <FlowCard points={flow} figure={figure} />
      ) : (
        <>
          <StatusCounts m={m} />
          <SystemFigures m={m} detailed={view === 'detailed'} />
        </>
      )}
      {view === 'detailed' && (
        <div className="fw-member__detail fw-muted">
          <div>
            <span className="fw-mono">{m.url}</span>
          </div>
          <div>
            Last poll <RelativeTime iso={m.lastAttemptAt} />, last success <RelativeTime iso={m.lastSuccessAt} />
            {m.failoverOrder !== null && <>, failover order {m.failoverOrder}</>}
          </div>
          {m.report?.components.length ? (
            <div>
              {m.report.components.map((c) => (
                <span key={c.component} className="fw-chip">
                  {c.component} {c.version ?? '?'}
                </span>
              ))}
            </div>
          ) : null}
          {m.report?.brokerError && <div>Broker: {m.report.brokerError}</div>}
        </div>
      )}
    </Card>
  );
}

function StatsLine({ stats }: { stats: LeaderStatsView | undefined }) {
  if (!stats) return null;
  return (
    <span className="fw-muted" data-testid="fleet-stats">
      {stats.members.total} member{stats.members.total === 1 ? '' : 's'}: {stats.members.ok} reporting,{' '}
      {stats.members.stale} stale, {stats.members.never} never reached · {stats.inFlight} in flight · {stats.queued}{' '}
      queued · {stats.errors.down} down
    </span>
  );
}

/** A site that polls no members is no leader: nothing to show but that. */
export function NotLeader() {
  return (
    <Card title="This site is not a leader" data-testid="not-leader">
      <p>
        It polls no member sites, so there is no fleet to show. A leader lists its members in{' '}
        <code>FLEETWATCH_LEADER_CONFIG</code> (given to its sync-orchestrator); open the leader's dashboard to see the
        fleet.
      </p>
    </Card>
  );
}

export function FleetPage() {
  const [params, editParams] = useSearchParamsEditor();
  // Until the restore below has reached the URL, the view chosen last is the one shown: the first paint is
  // already right (a reader of the URL and the buttons never sees the default for a moment).
  const urlView = params.get('view');
  const view = chosenView(urlView, urlView === null ? localStorage.getItem(VIEW_KEY) : null);
  const tag = params.get('tag') ?? '';

  // An address without a view opens the view chosen last (before the first paint, like the targets filter).
  useLayoutEffect(() => {
    if (params.get('view') !== null) return;
    const restored = chosenView(null, localStorage.getItem(VIEW_KEY));
    editParams((next) => next.set('view', restored), { replace: true });
  }, []);
  useEffect(() => {
    if (params.get('view') !== null) localStorage.setItem(VIEW_KEY, view);
  }, [view, params]);

  const set = (name: string, value: string) => {
    // The choice is remembered at once (a reload right after the click keeps it too).
    if (name === 'view') localStorage.setItem(VIEW_KEY, value);
    editParams((next) => {
      if (value) next.set(name, value);
      else next.delete(name);
    });
  };

  const members = useQuery({
    queryKey: fleetKeys.members(),
    queryFn: ({ signal }) => fetchFleetMembers(signal),
    refetchInterval: LIVE_POLL_MS,
  });
  const stats = useQuery({
    queryKey: fleetKeys.stats(),
    queryFn: ({ signal }) => fetchFleetStats(signal),
    refetchInterval: LIVE_POLL_MS,
  });
  const figure = flowFigureOf(view);
  const flow = useQuery({
    queryKey: fleetKeys.flow(FLOW_MINUTES),
    queryFn: ({ signal }) => fetchFleetFlow(FLOW_MINUTES, signal),
    refetchInterval: LIVE_POLL_MS * 3,
    enabled: figure !== null,
  });

  const all = useMemo(() => members.data?.items ?? [], [members.data]);
  const tags = useMemo(() => tagsOf(all), [all]);
  const shown = useMemo(() => withTag(all, tag), [all, tag]);
  const flowOf = useMemo(() => new Map((flow.data?.members ?? []).map((m) => [m.name, m.points])), [flow.data]);
  const notLeader = members.isSuccess && all.length === 0;

  return (
    <>
      <PageHeader title="Fleet">
        <StatsLine stats={stats.data} />
        <Link to="/fleet/config">Fleet config</Link>
      </PageHeader>
      <ErrorNote error={members.error ?? stats.error ?? flow.error} />
      {notLeader ? (
        <NotLeader />
      ) : (
        <div className="fw-stack">
          <div className="fw-row">
            <div className="fw-row fw-fleet-toggles" role="group" aria-label="View">
              {FLEET_VIEWS.map((v) => (
                <Button key={v} aria-pressed={view === v} data-view={v} onClick={() => set('view', v)}>
                  {VIEW_LABELS[v]}
                </Button>
              ))}
            </div>
            <span className="fw-spacer" />
            <div className="fw-row fw-fleet-toggles" role="group" aria-label="Filter by tag">
              <span className="fw-muted">Tag</span>
              <Button size="small" aria-pressed={tag === ''} data-tag="" onClick={() => set('tag', '')}>
                All
              </Button>
              {tags.map((t) => (
                <Button key={t} size="small" aria-pressed={tag === t} data-tag={t} onClick={() => set('tag', t)}>
                  {t}
                </Button>
              ))}
            </div>
          </div>
          {members.isPending ? (
            <p className="fw-muted">Loading…</p>
          ) : (
            <div className="fw-fleet-cards" data-testid="fleet-cards" data-shown-view={view}>
              {shown.map((m) => (
                <MemberCard
                  key={m.name}
                  m={m}
                  view={view}
                  flow={flow.data ? (flowOf.get(m.name) ?? null) : undefined}
                />
              ))}
              {shown.length === 0 && <p className="fw-muted">No member has the tag “{tag}”.</p>}
            </div>
          )}
        </div>
      )}
    </>
  );
}
