import { useEffect, useMemo, useState } from 'react';
import { useQuery, useQueryClient } from '@tanstack/react-query';
import { TargetKind, type TargetView } from '@fleetwatch/contracts';
import { Button, ErrorNote, PageHeader, TextField } from '@fleetwatch/ui';
import { fetchAllTargets, fetchStatusCounts, keys } from '../../api/queries';
import { listSource, type PartialList } from './list-source';
import { LIVE_POLL_MS } from '../../live';
import { useRememberedFilter } from '../../remembered-filter';
import { EMPTY_FILTER, filterToParams, matchesFilter, matchesSearch, parseFilter, toggle } from './target-filter';
import { StatusFilterButtons } from './status-filter-buttons';
import { TargetRows } from './target-rows';
import './targets.css';

const FILTER_KEY = 'fleetwatch.targets.filter';

export function TargetsPage() {
  const { filter, setFilter } = useRememberedFilter(FILTER_KEY, parseFilter, filterToParams);
  const [tagDraft, setTagDraft] = useState(filter.tag);
  const [locationDraft, setLocationDraft] = useState(filter.location);
  // The search box shows what was typed at once: bound to the address alone, whose change renders in a transition,
  // React would put the box back to the old text after each key (a key typed before that render was lost, the caret
  // jumped to the end).
  const [qDraft, setQDraft] = useState(filter.q);

  // Tag and location reach the URL (and the API) once typing pauses.
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
    queryKey: keys.counts(),
    queryFn: ({ signal }) => fetchStatusCounts(signal),
    refetchInterval: LIVE_POLL_MS,
  });
  const queryClient = useQueryClient();
  // The first pages of a list not yet in the cache, shown as they arrive (10,000 targets are 10 requests).
  const listKey = JSON.stringify(keys.targets(filter));
  const [partial, setPartial] = useState<PartialList | null>(null);
  const list = useQuery<TargetView[]>({
    queryKey: keys.targets(filter),
    queryFn: ({ signal }) => {
      const key = JSON.stringify(keys.targets(filter));
      // A refetch of a list already shown replaces it whole when complete; only a first load shows pages.
      const first = queryClient.getQueryData(keys.targets(filter)) === undefined;
      // Each attempt starts from nothing: a retry or a return to this filter never shows an older attempt's pages.
      if (first) setPartial(null);
      return fetchAllTargets(filter, signal, first ? (items, total) => setPartial({ key, items, total }) : undefined);
    },
    // While the API answers a new filter: the whole list, if cached, filtered here (a filter change
    // shows at once); else its first pages as they arrive — never another filter's rows.
    placeholderData: (): TargetView[] | undefined => {
      const all = queryClient.getQueryData<TargetView[]>(keys.targets(EMPTY_FILTER));
      return all ? all.filter((t) => matchesFilter(t, filter)) : undefined;
    },
    refetchInterval: LIVE_POLL_MS,
  });
  // Once an answer is complete its pages are dropped (they hold up to a whole list).
  const complete = list.isSuccess && !list.isPlaceholderData;
  useEffect(() => {
    if (complete) setPartial(null);
  }, [complete]);
  // Pages show only while the first attempt runs: during a retry's wait, and after an error, they would be stale.
  const shown = listSource(list.data, list.fetchStatus === 'fetching' && list.failureCount === 0, partial, listKey);
  const source = shown.kind === 'none' ? undefined : shown.items;
  const rows = useMemo(() => (source ?? []).filter((t) => matchesSearch(t, filter.q)), [source, filter.q]);

  return (
    <>
      <PageHeader title="Targets">
        <span className="fw-muted" aria-live="polite" data-testid="targets-shown">
          {shown.kind === 'pages'
            ? `Loading… ${shown.loaded.toLocaleString()} of ${shown.total.toLocaleString()}`
            : shown.kind === 'none'
              ? list.isError
                ? 'Not loaded'
                : 'Loading…'
              : `${rows.length.toLocaleString()} shown`}
        </span>
      </PageHeader>
      <div className="fw-stack">
        <StatusFilterButtons
          selected={filter.status}
          counts={counts.data}
          onChange={(change) => setFilter((f) => ({ ...f, status: change(f.status) }))}
        />
        <div className="fw-row fw-targets-filters">
          <div className="fw-row" role="group" aria-label="Filter by kind">
            {Object.values(TargetKind).map((k) => (
              <Button
                key={k}
                size="small"
                aria-pressed={filter.kind.includes(k)}
                onClick={() => setFilter((f) => ({ ...f, kind: toggle(f.kind, k) }))}
              >
                {k}
              </Button>
            ))}
          </div>
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
            placeholder="name, id, tag, label"
            value={qDraft}
            onChange={(e) => {
              const q = e.target.value;
              setQDraft(q);
              setFilter((f) => ({ ...f, q }), true);
            }}
          />
        </div>
        <ErrorNote error={list.error ?? counts.error} />
        <TargetRows targets={rows} loading={source === undefined} />
      </div>
    </>
  );
}
