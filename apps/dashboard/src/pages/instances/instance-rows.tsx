import { memo, useRef } from 'react';
import { useVirtualizer } from '@tanstack/react-virtual';
import { Link } from 'react-router';
import type { InstanceView } from '@fleetwatch/contracts';
import { RelativeTime, StatusBadge } from '@fleetwatch/ui';

const ROW_HEIGHT = 38;
const estimateSize = () => ROW_HEIGHT;

const labelText = (labels: Readonly<Record<string, string>>) =>
  Object.entries(labels)
    .map(([k, v]) => `${k}=${v}`)
    .join(', ');

/** The newest per-location message (what the pusher said last), if any. */
const messageOf = (i: InstanceView) =>
  [...i.locations].filter((l) => l.detail).sort((a, b) => (b.lastSeen ?? '').localeCompare(a.lastSeen ?? ''))[0]
    ?.detail ?? '';

/** One row; re-rendered only when its instance or its place changes. Every text is a React text node. */
const InstanceRow = memo(function InstanceRow({
  instance: i,
  index,
  start,
}: {
  instance: InstanceView;
  index: number;
  start: number;
}) {
  const labels = labelText(i.labels);
  const message = messageOf(i);
  return (
    <div
      className="fw-instances__row"
      role="row"
      aria-rowindex={index + 2}
      data-instance={i.instanceId}
      style={{ transform: `translateY(${start}px)` }}
    >
      <span role="cell" className="fw-instances__clip">
        <Link to={`/targets/${encodeURIComponent(i.id)}`} title={i.id}>
          {i.name}
        </Link>
      </span>
      <span role="cell">
        <StatusBadge status={i.status} />
      </span>
      <span role="cell" className="fw-instances__clip">
        {i.instanceKind ?? '—'}
      </span>
      <span role="cell" className="fw-instances__clip">
        {i.lifecycle ?? '—'}
      </span>
      <span role="cell" className="fw-instances__clip fw-instances__locs">
        {i.locations.map((l) => (
          <span key={l.location} className="fw-chip" data-status={l.status} title={`${l.location}: ${l.status}`}>
            {l.location} {l.status}
          </span>
        ))}
      </span>
      <span role="cell" className="fw-instances__clip" title={labels}>
        {labels}
      </span>
      <span role="cell" className="fw-instances__clip" title={message}>
        {message}
      </span>
      <span role="cell">
        <RelativeTime iso={i.since} />
      </span>
      <span role="cell">
        <RelativeTime iso={i.lastSeen} />
      </span>
    </div>
  );
});

/**
 * Any number of pushed instances as a virtualised table (only the rows in view, plus a few, are
 * in the DOM). Rows are placed through the CSSOM (React's style property), which the CSP allows.
 */
export function InstanceRows({ instances, loading }: { instances: readonly InstanceView[]; loading: boolean }) {
  const scroller = useRef<HTMLDivElement>(null);
  const virtual = useVirtualizer({
    count: instances.length,
    getScrollElement: () => scroller.current,
    estimateSize,
    overscan: 8,
  });
  return (
    <div className="fw-instances" role="table" aria-label="Pushed instances" aria-rowcount={instances.length + 1}>
      <div className="fw-instances__row fw-instances__head" role="row" aria-rowindex={1}>
        <span role="columnheader">Instance</span>
        <span role="columnheader">Status</span>
        <span role="columnheader">Kind</span>
        <span role="columnheader">Lifecycle</span>
        <span role="columnheader">Per location</span>
        <span role="columnheader">Labels</span>
        <span role="columnheader">Message</span>
        <span role="columnheader">Since</span>
        <span role="columnheader">Last push</span>
      </div>
      <div ref={scroller} className="fw-instances__scroller" data-testid="instances-scroller" tabIndex={0}>
        {instances.length === 0 && (
          <p className="fw-muted fw-instances__empty">{loading ? 'Loading…' : 'No pushed instances match.'}</p>
        )}
        <div className="fw-instances__canvas" style={{ height: virtual.getTotalSize() }}>
          {virtual.getVirtualItems().map((item) => {
            const i = instances[item.index];
            return <InstanceRow key={i.id} instance={i} index={item.index} start={item.start} />;
          })}
        </div>
      </div>
    </div>
  );
}
