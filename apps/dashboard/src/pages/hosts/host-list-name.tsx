import type { HostSummaryView } from '@fleetwatch/contracts';
import { Link } from 'react-router';
import { HostConflictMarker } from './host-conflict-note';

/** A host's name in the hosts list: a link to its page, marked when two or more collectors report its id at once. */
export function HostListName({ host }: { host: Pick<HostSummaryView, 'id' | 'name' | 'conflict'> }) {
  return (
    <>
      <Link to={`/hosts/${encodeURIComponent(host.id)}`}>{host.name}</Link>
      <HostConflictMarker conflict={host.conflict} />
    </>
  );
}
