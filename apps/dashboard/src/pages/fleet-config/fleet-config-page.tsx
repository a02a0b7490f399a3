import { useId, useMemo, useState } from 'react';
import { useQuery } from '@tanstack/react-query';
import { Link, useSearchParams } from 'react-router';
import {
  DRIFT_AREAS,
  type ComponentsMatrixView,
  type DriftCountsView,
  type LeaderMemberView,
  type MemberSnapshotView,
} from '@fleetwatch/contracts';
import { Card, Checkbox, ErrorNote, PageHeader, RelativeTime, StatusBadge, Table } from '@fleetwatch/ui';
import {
  fetchComponentsMatrix,
  fetchDriftCounts,
  fetchFleetMembers,
  fetchMemberDrift,
  fetchMemberSnapshot,
  fetchOwnSnapshot,
  fleetKeys,
} from '../../api/fleet-queries';
import { LIVE_POLL_MS } from '../../live';
import { ageText, stateBadge } from '../fleet/fleet-view';
import { NotLeader } from '../fleet/fleet-page';
import { AREA_LABELS, commonVersions, compareSnapshots, type AreaComparison } from './snapshot-diff';
import { SnapshotAge } from './snapshot-age';
import { useSearchParamsEditor } from '../../search-params';
import '../fleet/fleet.css';
import './fleet-config.css';

const TABS = [
  ['members', 'Members'],
  ['components', 'Components'],
  ['snapshot', 'Snapshot diff'],
] as const;
type Tab = (typeof TABS)[number][0];
/** The snapshot pickers' value for this site's own snapshot (a member name never starts with "@"). */
const SELF = '@self';

// ---------------------------------------------------------------- members

export function MembersTab({ members, drift }: { members: LeaderMemberView[]; drift: DriftCountsView | undefined }) {
  const byName = new Map((drift?.members ?? []).map((d) => [d.name, d]));
  return (
    <Card title="Members">
      <div className="fw-scroll-x">
        <Table
          caption="Members with their reporting state and drift from this site"
          rows={members}
          rowKey={(m) => m.name}
          columns={[
            { key: 'name', header: 'Member', cell: (m) => <span data-member-name={m.name}>{m.name}</span> },
            {
              key: 'state',
              header: 'Reporting',
              cell: (m) => {
                const b = stateBadge(m.state);
                return (
                  <span className={m.state === 'OK' ? undefined : 'fw-config-stale'} data-state={m.state}>
                    <StatusBadge status={b.status} label={b.label} />
                    {m.state !== 'OK' && (
                      <span className="fw-muted">
                        {' '}
                        {ageText(m.ageSeconds)} {m.error ? `· ${m.error}` : ''}
                      </span>
                    )}
                  </span>
                );
              },
            },
            { key: 'tags', header: 'Tags', cell: (m) => m.tags.join(', ') || '—' },
            { key: 'seen', header: 'Last success', cell: (m) => <RelativeTime iso={m.lastSuccessAt} /> },
            {
              key: 'drift',
              header: 'Drift',
              cell: (m) => {
                const d = byName.get(m.name);
                if (!d || d.count === null) return <span className="fw-muted">no snapshot</span>;
                const skipped = d.notCompared?.length ?? 0;
                return (
                  <span className="fw-drift-count" data-drift={d.count} data-zero={d.count === 0}>
                    {d.count === 0 ? 'in sync' : `${d.count} differ`}
                    {skipped > 0 && (
                      <span className="fw-muted" data-not-compared={skipped}>
                        {' '}
                        ({skipped} area{skipped === 1 ? '' : 's'} not compared)
                      </span>
                    )}{' '}
                    · <SnapshotAge ageSeconds={d.ageSeconds} stale={d.stale} reporting={m.state === 'OK'} />
                  </span>
                );
              },
            },
            ...DRIFT_AREAS.map((area) => ({
              key: area,
              header: AREA_LABELS[area],
              cell: (m: LeaderMemberView) => {
                const d = byName.get(m.name);
                const n = d?.areas?.[area];
                if (n === undefined) return <span className="fw-muted">—</span>;
                // An older member's snapshot without the area: not compared (its 0 is no "in sync").
                if (d?.notCompared?.includes(area))
                  return (
                    <span
                      data-area={area}
                      data-not-compared="true"
                      className="fw-muted"
                      title="This member's version does not send this area: not compared"
                    >
                      not sent
                    </span>
                  );
                return (
                  <span data-area={area} className={n > 0 ? 'fw-drift-area--differs' : 'fw-muted'}>
                    {n}
                  </span>
                );
              },
            })),
          ]}
        />
      </div>
      <p className="fw-muted">
        Drift compares each member's last good snapshot with this site's — checks, alert rules, channels, properties and
        component versions; properties overridden for a member are not counted. Users and status pages are each site's
        own: the side-by-side view shows them, they are not drift.
      </p>
    </Card>
  );
}

// ---------------------------------------------------------------- components

function ComponentsTab({ matrix }: { matrix: ComponentsMatrixView | undefined }) {
  const common = useMemo(() => (matrix ? commonVersions(matrix.components, matrix.members) : {}), [matrix]);
  if (!matrix) return <p className="fw-muted">Loading…</p>;
  const differing = new Set(matrix.differing);
  return (
    <Card title="Component versions">
      <p className="fw-muted" data-testid="differing">
        {differing.size === 0
          ? 'Every member runs the same versions.'
          : `Versions differ for ${matrix.differing.join(', ')}: the cells that differ from the most common version are marked.`}
      </p>
      <div className="fw-scroll-x">
        <table className="fw-table fw-matrix">
          <caption className="fw-visually-hidden">Component versions per member</caption>
          <thead>
            <tr>
              <th scope="col">Component</th>
              {matrix.members.map((m) => (
                <th key={m.name} scope="col" className={m.stale ? 'fw-config-stale' : undefined}>
                  {m.name}
                  {m.stale && <span className="fw-muted"> (not reporting)</span>}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {matrix.components.map((c) => (
              <tr key={c} data-component={c} data-differing={differing.has(c)}>
                <th scope="row">{c}</th>
                {matrix.members.map((m) => {
                  const v = m.versions[c];
                  const odd = differing.has(c) && v !== undefined && v !== null && v !== common[c];
                  const classes = [odd ? 'fw-version--differs' : '', m.stale ? 'fw-config-stale' : '']
                    .filter(Boolean)
                    .join(' ');
                  return (
                    <td key={m.name} data-member={m.name} data-differs={odd} className={classes || undefined}>
                      {v === undefined ? <span className="fw-muted">—</span> : (v ?? '?')}
                    </td>
                  );
                })}
              </tr>
            ))}
            {matrix.components.length === 0 && (
              <tr>
                <td colSpan={matrix.members.length + 1} className="fw-muted">
                  No member has reported its components yet.
                </td>
              </tr>
            )}
          </tbody>
        </table>
      </div>
    </Card>
  );
}

// ---------------------------------------------------------------- snapshot diff

function Picker({
  label,
  value,
  onChange,
  members,
  name,
}: {
  label: string;
  value: string;
  onChange: (v: string) => void;
  members: LeaderMemberView[];
  name: string;
}) {
  const id = `fw-pick-${useId().replace(/:/g, '')}`;
  return (
    <div className="fw-field">
      <label className="fw-field__label" htmlFor={id}>
        {label}
      </label>
      <select id={id} name={name} className="fw-select" value={value} onChange={(e) => onChange(e.target.value)}>
        <option value={SELF}>This site (leader)</option>
        {members.map((m) => {
          // Only members reporting now, with a snapshot, can be compared.
          const usable = m.state === 'OK' && m.snapshotHash !== null;
          return (
            <option key={m.name} value={m.name} disabled={!usable}>
              {m.name}
              {usable ? '' : m.state === 'OK' ? ' (no snapshot)' : ' (not reporting)'}
            </option>
          );
        })}
      </select>
    </div>
  );
}

function useSnapshot(which: string) {
  return useQuery<MemberSnapshotView>({
    queryKey: which === SELF ? fleetKeys.ownSnapshot() : fleetKeys.snapshot(which),
    queryFn: ({ signal }) => (which === SELF ? fetchOwnSnapshot(signal) : fetchMemberSnapshot(which, signal)),
    enabled: which !== '',
    refetchInterval: LIVE_POLL_MS * 3,
  });
}

function AreaDiff({ area, leftName, rightName }: { area: AreaComparison; leftName: string; rightName: string }) {
  return (
    <section className="fw-diff-area" data-area={area.area}>
      <h3>
        {AREA_LABELS[area.area]}{' '}
        <span className="fw-muted" data-testid="area-differing">
          {area.notSent
            ? `not compared: ${area.notSent === 'both' ? 'neither site sends' : `${area.notSent === 'left' ? leftName : rightName} does not send`} this area (an older version)`
            : area.differing > 0
              ? `${area.differing} differ${area.drift ? '' : " — each site's own, not drift"}`
              : area.items.some((i) => i.overridden)
                ? 'overridden only'
                : 'same'}
        </span>
      </h3>
      {area.items.map((item) => (
        <table
          key={item.key}
          className="fw-table fw-diff"
          data-item={item.key}
          data-state={item.state}
          data-overridden={item.overridden ?? false}
        >
          <caption>
            <span className="fw-mono">{item.key}</span>{' '}
            {item.overridden && (
              <span className="fw-chip" data-overridden="true">
                overridden for this member — not drift
              </span>
            )}{' '}
            {item.state !== 'same' && (
              <span className="fw-chip" data-item-state={item.state}>
                {item.state === 'changed'
                  ? 'changed'
                  : item.state === 'left'
                    ? `only on ${leftName}`
                    : `only on ${rightName}`}
              </span>
            )}
          </caption>
          <thead>
            <tr>
              <th scope="col">Field</th>
              <th scope="col">{leftName}</th>
              <th scope="col">{rightName}</th>
            </tr>
          </thead>
          <tbody>
            {item.rows.map((r) => (
              <tr
                key={r.path}
                data-path={r.path}
                data-changed={r.changed}
                className={r.changed ? 'fw-diff--changed' : undefined}
              >
                <th scope="row" className="fw-mono">
                  {r.path || '(value)'}
                </th>
                <td className="fw-mono" data-side="left">
                  {r.left === undefined ? (
                    <span className="fw-muted">absent</span>
                  ) : r.changed ? (
                    <mark>{r.left}</mark>
                  ) : (
                    r.left
                  )}
                </td>
                <td className="fw-mono" data-side="right">
                  {r.right === undefined ? (
                    <span className="fw-muted">absent</span>
                  ) : r.changed ? (
                    <mark>{r.right}</mark>
                  ) : (
                    r.right
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      ))}
    </section>
  );
}

function SnapshotTab({ members }: { members: LeaderMemberView[] }) {
  const [params, editParams] = useSearchParamsEditor();
  const usable = members.filter((m) => m.state === 'OK' && m.snapshotHash !== null);
  const left = params.get('left') ?? SELF;
  const right = params.get('right') ?? usable[0]?.name ?? '';
  const [onlyDiffering, setOnlyDiffering] = useState(true);
  const set = (name: string, v: string) => editParams((next) => next.set(name, v), { replace: true });
  const a = useSnapshot(left);
  const b = useSnapshot(right);
  // This site against a member: the member's overridden properties are meant to differ (not drift).
  const member = left === SELF && right !== SELF ? right : right === SELF && left !== SELF ? left : '';
  const drift = useQuery({
    queryKey: fleetKeys.driftOf(member),
    queryFn: ({ signal }) => fetchMemberDrift(member, signal),
    enabled: member !== '',
    refetchInterval: LIVE_POLL_MS * 3,
  });
  const overridden = member !== '' ? drift.data?.overriddenProperties : undefined;
  const comparison = useMemo(
    () =>
      a.data && b.data && (member === '' || overridden)
        ? compareSnapshots(a.data.areas, b.data.areas, new Set(overridden), {
            left: a.data.absentAreas,
            right: b.data.absentAreas,
          })
        : null,
    [a.data, b.data, member, overridden],
  );
  const nameOf = (v: string) => (v === SELF ? 'this site' : v);
  // Differences in each site's own areas (users, status pages) are shown, not counted.
  const total = comparison?.reduce((n, x) => n + (x.drift ? x.differing : 0), 0) ?? 0;
  const own = comparison?.reduce((n, x) => n + (x.drift ? 0 : x.differing), 0) ?? 0;
  const notCompared = comparison?.filter((x) => x.drift && x.notSent).map((x) => AREA_LABELS[x.area]) ?? [];
  return (
    <Card title="Snapshots side by side">
      <div className="fw-row fw-diff-pickers">
        <Picker label="Left" name="left" value={left} onChange={(v) => set('left', v)} members={members} />
        <Picker label="Right" name="right" value={right} onChange={(v) => set('right', v)} members={members} />
        <Checkbox
          label="Only items that differ"
          checked={onlyDiffering}
          onChange={(e) => setOnlyDiffering(e.target.checked)}
        />
      </div>
      <ErrorNote error={a.error ?? b.error ?? drift.error} />
      {right === '' && <p className="fw-muted">No member reports a snapshot yet.</p>}
      {comparison && (
        <div className="fw-stack">
          <p data-testid="diff-total">
            {total === 0
              ? `${nameOf(left)} and ${nameOf(right)} have the same configuration${own > 0 ? ' (their own users or status pages differ: not drift)' : ''}.`
              : `${total} item${total === 1 ? '' : 's'} differ between ${nameOf(left)} and ${nameOf(right)}; changed values are highlighted.`}
            {notCompared.length > 0 && ` Not compared (not sent by an older version): ${notCompared.join(', ')}.`}
            {drift.data && (
              <>
                {' '}
                <SnapshotAge
                  ageSeconds={drift.data.ageSeconds}
                  stale={drift.data.stale}
                  reporting={members.find((m) => m.name === member)?.state === 'OK'}
                />
              </>
            )}
            {a.data && b.data && (
              <span className="fw-muted fw-mono">
                {' '}
                ({a.data.hash.slice(0, 12)} · {b.data.hash.slice(0, 12)})
              </span>
            )}
          </p>
          {comparison
            // An area a side does not send keeps its heading (why it is not compared); its items are no differences,
            // listed only when everything is shown.
            .filter((area) => area.items.length > 0)
            .map((area) =>
              onlyDiffering
                ? { ...area, items: area.notSent ? [] : area.items.filter((i) => i.state !== 'same') }
                : area,
            )
            .filter((area) => area.items.length > 0 || area.notSent)
            .map((area) => (
              <AreaDiff key={area.area} area={area} leftName={nameOf(left)} rightName={nameOf(right)} />
            ))}
        </div>
      )}
    </Card>
  );
}

// ---------------------------------------------------------------- page

export function FleetConfigPage() {
  const [params, setParams] = useSearchParams();
  const tab: Tab = TABS.find(([t]) => t === params.get('tab'))?.[0] ?? 'members';
  const members = useQuery({
    queryKey: fleetKeys.members(),
    queryFn: ({ signal }) => fetchFleetMembers(signal),
    refetchInterval: LIVE_POLL_MS,
  });
  const drift = useQuery({
    queryKey: fleetKeys.drift(),
    queryFn: ({ signal }) => fetchDriftCounts(signal),
    refetchInterval: LIVE_POLL_MS * 3,
    enabled: tab === 'members',
  });
  const matrix = useQuery({
    queryKey: fleetKeys.components(),
    queryFn: ({ signal }) => fetchComponentsMatrix(signal),
    refetchInterval: LIVE_POLL_MS * 3,
    enabled: tab === 'components',
  });
  const all = useMemo(() => members.data?.items ?? [], [members.data]);
  const notLeader = members.isSuccess && all.length === 0;

  return (
    <>
      <PageHeader title="Fleet config">
        <Link to="/fleet">Fleet</Link>
      </PageHeader>
      <ErrorNote error={members.error ?? drift.error ?? matrix.error} />
      {notLeader ? (
        <NotLeader />
      ) : (
        <div className="fw-stack">
          <div className="fw-row fw-fleet-toggles" role="tablist" aria-label="Fleet config">
            {TABS.map(([t, label]) => (
              <button
                key={t}
                type="button"
                role="tab"
                className="fw-button"
                aria-selected={tab === t}
                data-tab={t}
                onClick={() => setParams(new URLSearchParams({ tab: t }))}
              >
                {label}
              </button>
            ))}
          </div>
          {members.isPending ? (
            <p className="fw-muted">Loading…</p>
          ) : tab === 'members' ? (
            <MembersTab members={all} drift={drift.data} />
          ) : tab === 'components' ? (
            <ComponentsTab matrix={matrix.data} />
          ) : (
            <SnapshotTab members={all} />
          )}
        </div>
      )}
    </>
  );
}
