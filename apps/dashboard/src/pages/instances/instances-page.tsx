import { useEffect, useMemo, useState } from 'react';
import { useQuery } from '@tanstack/react-query';
import { CheckboxGroup, ErrorNote, PageHeader, TextField, ticked } from '@fleetwatch/ui';
import { adminKeys, fetchAllInstances, fetchInstanceCounts } from '../../api/admin-queries';
import { LIVE_POLL_MS } from '../../live';
import { useRememberedFilter } from '../../remembered-filter';
import { StatusFilterButtons } from '../targets/status-filter-buttons';
import {
  INSTANCE_KINDS,
  instanceFilterToParams,
  instancePlaceholder,
  matchesInstance,
  parseInstanceFilter,
} from './instance-filter';
import { InstanceRows } from './instance-rows';
import './instances.css';
import '../targets/targets.css';

const FILTER_KEY = 'fleetwatch.instances.filter';

/**
 * Pushed instances (`GET /api/v1/instances`, every page): live through the shell's socket (a status
 * change invalidates this list, so a new instance appears without reload), else refreshed every 10 s.
 */
export function InstancesPage() {
  const { filter, setFilter } = useRememberedFilter(FILTER_KEY, parseInstanceFilter, instanceFilterToParams);

  // Tag and location reach the URL (and the API) once typing pauses.
  const [tagDraft, setTagDraft] = useState(filter.tag);
  const [locationDraft, setLocationDraft] = useState(filter.location);
  // The search box shows what was typed at once (bound to the address alone, a key typed before the address's
  // transition rendered was lost, and the caret jumped to the end).
  const [qDraft, setQDraft] = useState(filter.q);
  useEffect(() => setTagDraft(filter.tag), [filter.tag]);
  useEffect(() => setLocationDraft(filter.location), [filter.location]);
  useEffect(() => setQDraft(filter.q), [filter.q]);
  useEffect(() => {
    if (tagDraft.trim() === filter.tag && locationDraft.trim() === filter.location) return;
    const t = setTimeout(
      () => setFilter((f) => ({ ...f, tag: tagDraft.trim(), location: locationDraft.trim() }), true),
      300,
    );
    return () => clearTimeout(t);
  });

  const counts = useQuery({
    queryKey: adminKeys.instanceCounts(),
    queryFn: ({ signal }) => fetchInstanceCounts(signal),
    refetchInterval: LIVE_POLL_MS,
  });
  const list = useQuery({
    queryKey: adminKeys.instances(filter),
    queryFn: ({ signal }) => fetchAllInstances(filter, signal),
    // The list it had, less the rows the new filter does not take: never another filter's rows.
    placeholderData: (previous) => instancePlaceholder(previous, filter),
    refetchInterval: LIVE_POLL_MS,
  });
  const rows = useMemo(
    () => (list.data?.items ?? []).filter((i) => matchesInstance(i, filter.q)),
    [list.data, filter.q],
  );

  return (
    <>
      <PageHeader title="Pushed instances">
        <span className="fw-muted" aria-live="polite" data-testid="instances-shown">
          {list.isPending || list.isPlaceholderData
            ? 'Loading…'
            : `${rows.length.toLocaleString()} shown of ${list.data?.total ?? 0}`}
        </span>
      </PageHeader>
      <div className="fw-stack">
        <StatusFilterButtons
          selected={filter.status}
          counts={counts.data}
          onChange={(change) => setFilter((f) => ({ ...f, status: change(f.status) }))}
        />
        <CheckboxGroup
          label="Kinds"
          options={INSTANCE_KINDS}
          selected={filter.kind}
          onToggle={(k, on) => setFilter((f) => ({ ...f, kind: ticked(INSTANCE_KINDS, f.kind, k, on) }))}
        />
        <div className="fw-row fw-instances-filters">
          <TextField label="Tag" name="tag" value={tagDraft} onChange={(e) => setTagDraft(e.target.value)} />
          <TextField
            label="Location"
            name="location"
            value={locationDraft}
            onChange={(e) => setLocationDraft(e.target.value)}
          />
          <TextField
            label="Search"
            name="q"
            type="search"
            placeholder="instance, lifecycle, label, message"
            value={qDraft}
            onChange={(e) => {
              const q = e.target.value;
              setQDraft(q);
              setFilter((f) => ({ ...f, q }), true);
            }}
          />
        </div>
        <ErrorNote error={list.error ?? counts.error} />
        <InstanceRows instances={rows} loading={list.isPending} />
      </div>
    </>
  );
}
