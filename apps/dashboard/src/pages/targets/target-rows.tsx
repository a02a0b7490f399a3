import { memo, useRef } from 'react';
import { useVirtualizer } from '@tanstack/react-virtual';
import { Link } from 'react-router';
import type { TargetView } from '@fleetwatch/contracts';
import { RelativeTime, StatusBadge } from '@fleetwatch/ui';

const ROW_HEIGHT = 38;
const estimateSize = () => ROW_HEIGHT;

/** One row; re-rendered only when its target or its place changes, not on every scroll step. */
const TargetRow = memo(function TargetRow({
  target: t,
  index,
  start,
}: {
  target: TargetView;
  index: number;
  start: number;
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
  return (
    <div className="fw-targets" role="table" aria-label="Targets" aria-rowcount={targets.length + 1}>
      <div className="fw-targets__row fw-targets__head" role="row" aria-rowindex={1}>
        <span role="columnheader">Target</span>
        <span role="columnheader">Kind</span>
        <span role="columnheader">Status</span>
        <span role="columnheader">Consensus</span>
        <span role="columnheader">Per location</span>
        <span role="columnheader">Tags</span>
        <span role="columnheader">Last seen</span>
      </div>
      <div ref={scroller} className="fw-targets__scroller" data-testid="targets-scroller" tabIndex={0}>
        {targets.length === 0 && (
          <p className="fw-muted fw-targets__empty">{loading ? 'Loading…' : 'No targets match.'}</p>
        )}
        <div className="fw-targets__canvas" style={{ height: virtual.getTotalSize() }}>
          {virtual.getVirtualItems().map((item) => {
            const t = targets[item.index];
            return <TargetRow key={t.id} target={t} index={item.index} start={item.start} />;
          })}
        </div>
      </div>
    </div>
  );
}
