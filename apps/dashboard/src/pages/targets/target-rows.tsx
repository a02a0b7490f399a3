import { memo, useMemo, useRef } from 'react';
import { useQueries } from '@tanstack/react-query';
import { useVirtualizer } from '@tanstack/react-virtual';
import { Link } from 'react-router';
import type { TargetSparkline, TargetView } from '@fleetwatch/contracts';
import { RelativeTime, RowTrend, StatusBadge } from '@fleetwatch/ui';
import { fetchSparklines, keys } from '../../api/queries';

/** Rows per sparklines request: the rows in view come in blocks, so scrolling a little asks for nothing new. */
export const SPARKLINE_BLOCK = 40;
/** Sparklines are minute figures: asked again once a minute while in view. */
const SPARKLINE_REFRESH_MS = 60_000;

const ROW_HEIGHT = 38;
const estimateSize = () => ROW_HEIGHT;

/** One row; re-rendered only when its target or its place changes, not on every scroll step. */
const TargetRow = memo(function TargetRow({
  target: t,
  index,
  start,
  spark,
}: {
  target: TargetView;
  index: number;
  start: number;
  spark: TargetSparkline | undefined;
}) {
  return (
    <div
      className="fw-targets__row"
      role="row"
      aria-rowindex={index + 2}
      data-target={t.id}
      style={{ transform: `translateY(${start}px)` }}
    >
      <span role="cell" className="fw-targets__name">
        <Link to={`/targets/${encodeURIComponent(t.id)}`} title={t.id}>
          {t.name}
        </Link>
      </span>
      <span role="cell">{t.kind}</span>
      <span role="cell">
        <StatusBadge status={t.status} />
      </span>
      <span role="cell">
        <StatusBadge status={t.consensus} />
      </span>
      <span role="cell" className="fw-targets__locs">
        {t.locations.map((l) => (
          <span key={l.location} className="fw-chip" data-status={l.status} title={`${l.location}: ${l.status}`}>
            {l.location} {l.status}
          </span>
        ))}
      </span>
      <span role="cell" className="fw-targets__trend" data-testid="row-trend">
        {spark ? (
          <RowTrend availability={spark.availability} latencyMs={spark.latencyMs} />
        ) : (
          <span className="fw-muted" aria-label="Last hour: loading">
            …
          </span>
        )}
      </span>
      <span role="cell" className="fw-targets__tags">
        {t.tags.join(', ')}
      </span>
      <span role="cell">
        <RelativeTime iso={t.lastSeen} />
      </span>
    </div>
  );
});

/**
 * Any number of targets as a virtualised table: only the rows in view (plus a few)
 * are in the DOM. Rows are placed with transforms set through React's style
 * property, i.e. the CSSOM, which a strict CSP allows (unlike style attributes in markup).
 */
export function TargetRows({ targets, loading }: { targets: readonly TargetView[]; loading: boolean }) {
  const scroller = useRef<HTMLDivElement>(null);
  const virtual = useVirtualizer({
    count: targets.length,
    getScrollElement: () => scroller.current,
    estimateSize,
    overscan: 8,
  });
  const items = virtual.getVirtualItems();
  const sparks = useRowSparklines(
    targets,
    items.length ? items[0].index : 0,
    items.length ? items[items.length - 1].index : -1,
  );
  return (
    <div className="fw-targets" role="table" aria-label="Targets" aria-rowcount={targets.length + 1}>
      <div className="fw-targets__row fw-targets__head" role="row" aria-rowindex={1}>
        <span role="columnheader">Target</span>
        <span role="columnheader">Kind</span>
        <span role="columnheader">Status</span>
        <span role="columnheader">Consensus</span>
        <span role="columnheader">Per location</span>
        <span role="columnheader">Last hour</span>
        <span role="columnheader">Tags</span>
        <span role="columnheader">Last seen</span>
      </div>
      <div ref={scroller} className="fw-targets__scroller" data-testid="targets-scroller" tabIndex={0}>
        {targets.length === 0 && (
          <p className="fw-muted fw-targets__empty">{loading ? 'Loading…' : 'No targets match.'}</p>
        )}
        <div className="fw-targets__canvas" style={{ height: virtual.getTotalSize() }}>
          {items.map((item) => {
            const t = targets[item.index];
            return <TargetRow key={t.id} target={t} index={item.index} start={item.start} spark={sparks.get(t.id)} />;
          })}
        </div>
      </div>
    </div>
  );
}

/**
 * The sparklines of the rows in view (first..last), fetched per block of SPARKLINE_BLOCK rows: one
 * request per block in view (two at a block's edge), cached per block's ids, refreshed each minute,
 * cancelled when the block scrolls away; rows out of view cost nothing.
 */
function useRowSparklines(targets: readonly TargetView[], first: number, last: number): Map<string, TargetSparkline> {
  const blocks = useMemo(() => {
    const out: string[][] = [];
    if (last < first) return out;
    for (let b = Math.floor(first / SPARKLINE_BLOCK); b <= Math.floor(last / SPARKLINE_BLOCK); b++)
      out.push(targets.slice(b * SPARKLINE_BLOCK, (b + 1) * SPARKLINE_BLOCK).map((t) => t.id));
    return out;
  }, [targets, first, last]);
  return useQueries({
    queries: blocks.map((ids) => ({
      queryKey: keys.sparklines(ids),
      queryFn: ({ signal }: { signal: AbortSignal }) => fetchSparklines(ids, signal),
      staleTime: SPARKLINE_REFRESH_MS,
      refetchInterval: SPARKLINE_REFRESH_MS,
      // A block whose ids changed (a filter, a new target) keeps showing the old lines until its answer.
      placeholderData: (previous: TargetSparkline[] | undefined) => previous,
    })),
    combine: (results) => {
      const map = new Map<string, TargetSparkline>();
      for (const r of results) for (const s of r.data ?? []) map.set(s.id, s);
      return map;
    },
  });
}
