import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { Link } from 'react-router';
import type { MaintenanceWindowDefinition } from '@fleetwatch/contracts';
import { Button, ErrorNote, formatLocal, PageHeader, Table } from '@fleetwatch/ui';
import { api, enc } from '../../../api/client';
import { alertKeys, fetchWindows, ifMatch } from '../../../api/alert-queries';
import { AlertsNav } from '../alerts-nav';
import { describeSchedule } from './window-form-model';
import { hiddenFor } from '../../../roles';
import { useCanWrite } from '../../../session';

const scopeOf = (w: MaintenanceWindowDefinition) =>
  [
    w.scope.targetIds.length ? `targets ${w.scope.targetIds.join(', ')}` : '',
    w.scope.tags.length ? `tags ${w.scope.tags.join(', ')}` : '',
    w.scope.sites.length ? `sites ${w.scope.sites.join(', ')}` : '',
  ]
    .filter(Boolean)
    .join('; ');

export function MaintenancePage() {
  const canWrite = useCanWrite();
  const queryClient = useQueryClient();
  const windows = useQuery({ queryKey: alertKeys.windows(), queryFn: ({ signal }) => fetchWindows(signal) });
  const remove = useMutation({
    mutationFn: (w: MaintenanceWindowDefinition) =>
      api(`/api/v1/maintenance-windows/${enc(w.id)}`, { method: 'DELETE', headers: ifMatch(w.version) }),
    onSettled: () => queryClient.invalidateQueries({ queryKey: alertKeys.windows() }),
  });
  return (
    <>
      <PageHeader title="Maintenance windows">
        {canWrite && (
          <Link className="fw-button fw-button--primary" to="/alerts/maintenance/new">
            New window
          </Link>
        )}
      </PageHeader>
      <AlertsNav />
      <p className="fw-muted">A window mutes the notifications of the targets it covers; checks go on.</p>
      <ErrorNote error={windows.error ?? remove.error} />
      <Table
        caption="Maintenance windows"
        rows={windows.data ?? []}
        rowKey={(w) => w.id}
        empty={windows.isPending ? 'Loading…' : 'No maintenance windows.'}
        hidden={hiddenFor(canWrite)}
        columns={[
          { key: 'name', header: 'Name', cell: (w) => <Link to={`/alerts/maintenance/${enc(w.id)}`}>{w.name}</Link> },
          { key: 'scope', header: 'Covers', cell: (w) => scopeOf(w) },
          {
            key: 'schedule',
            header: 'When',
            cell: (w) => describeSchedule(w, (iso) => formatLocal(iso, { dateStyle: 'medium', timeStyle: 'short' })),
          },
          { key: 'author', header: 'Author', cell: (w) => w.createdBy },
          { key: 'comment', header: 'Comment', cell: (w) => w.comment ?? '' },
          {
            key: 'actions',
            header: <span className="fw-visually-hidden">Actions</span>,
            cell: (w) => (
              <Button
                size="small"
                variant="danger"
                aria-label={`Delete ${w.name}`}
                onClick={() => {
                  if (window.confirm(`Delete the maintenance window “${w.name}”?`)) remove.mutate(w);
                }}
              >
                Delete
              </Button>
            ),
          },
        ]}
      />
    </>
  );
}
