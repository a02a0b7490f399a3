import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { Link } from 'react-router';
import type { Page, StatusPageDefinition } from '@fleetwatch/contracts';
import { Button, ErrorNote, PageHeader, Table } from '@fleetwatch/ui';
import { api, enc } from '../../api/client';
import { hiddenFor } from '../../roles';
import { useCanWrite } from '../../session';

export const statusPageKeys = {
  list: () => ['fleetwatch', 'status-pages'] as const,
  one: (id: string) => ['fleetwatch', 'status-pages', id] as const,
};

/** Every status page (a site has a handful: one request of up to 1000). */
export const fetchStatusPages = (signal?: AbortSignal) =>
  api<Page<StatusPageDefinition>>('/api/v1/status-pages?limit=1000', { signal }).then((p) => p.items);

/** `/status-pages`: the site's public status pages, with links to edit them and to their public address. */
export function StatusPagesPage() {
  const canWrite = useCanWrite();
  const queryClient = useQueryClient();
  const pages = useQuery({ queryKey: statusPageKeys.list(), queryFn: ({ signal }) => fetchStatusPages(signal) });
  const remove = useMutation({
    mutationFn: (p: StatusPageDefinition) =>
      api(`/api/v1/status-pages/${enc(p.id)}`, { method: 'DELETE', headers: { 'if-match': `"${p.version}"` } }),
    onSettled: () => queryClient.invalidateQueries({ queryKey: statusPageKeys.list() }),
  });
  return (
    <>
      <PageHeader title="Status pages">
        {canWrite && (
          <Link className="fw-button fw-button--primary" to="/status-pages/new">
            New status page
          </Link>
        )}
      </PageHeader>
      <p className="fw-muted">
        Public, read-only pages for a group of targets chosen by tag. Visitors see only the names and texts written
        here, states and daily uptime — never addresses, check settings or error messages.
      </p>
      <ErrorNote error={pages.error ?? remove.error} />
      <Table
        caption="Status pages"
        rows={pages.data ?? []}
        rowKey={(p) => p.id}
        empty={pages.isPending ? 'Loading…' : 'No status pages yet.'}
        hidden={hiddenFor(canWrite)}
        columns={[
          {
            key: 'title',
            header: 'Title',
            cell: (p) => <Link to={`/status-pages/${enc(p.id)}`}>{p.title}</Link>,
          },
          {
            key: 'address',
            header: 'Public address',
            cell: (p) =>
              p.published ? (
                <a href={`/status/${enc(p.slug)}`} target="_blank" rel="noreferrer">
                  /status/{p.slug}
                </a>
              ) : (
                <span className="fw-muted">/status/{p.slug} (not published)</span>
              ),
          },
          { key: 'components', header: 'Components', cell: (p) => p.components.length },
          {
            key: 'actions',
            header: <span className="fw-visually-hidden">Actions</span>,
            cell: (p) => (
              <Button
                size="small"
                variant="danger"
                aria-label={`Delete ${p.title}`}
                onClick={() => {
                  if (window.confirm(`Delete the status page “${p.title}”?`)) remove.mutate(p);
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
