import type { HostConflictView } from '@fleetwatch/contracts';

/**
 * A host id that two or more collectors report at once (cloned machines, one COLLECTOR_HOST_ID configured twice): the
 * figures on the page jump between machines. Nothing when the gateway says none (or is older and does not say).
 */
export function HostConflictNote({ conflict }: { conflict: HostConflictView | null | undefined }) {
  if (!conflict) return null;
  return (
    <p className="fw-alert" role="alert">
      {conflict.reporters} collectors report this host id at once (since{' '}
      <time dateTime={conflict.since}>{new Date(conflict.since).toLocaleString()}</time>): its figures, history and
      alerts mix their machines. Give each machine its own host id (COLLECTOR_HOST_ID, or a hostname of its own) — see
      the host id conflict runbook.
    </p>
  );
}

/**
 * The hosts list's marker beside a host id two or more collectors report at once (the host's page says more): nothing
 * when the gateway says none (or is older and does not say).
 */
export function HostConflictMarker({ conflict }: { conflict: HostConflictView | null | undefined }) {
  if (!conflict) return null;
  const text = `${conflict.reporters} collectors report this host id at once (since ${new Date(conflict.since).toLocaleString()})`;
  return (
    <span className="fw-host-conflict" role="img" aria-label={text} title={text}>
      ⚠ {conflict.reporters} collectors
    </span>
  );
}
