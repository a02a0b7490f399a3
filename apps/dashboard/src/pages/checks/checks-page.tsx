import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { Link } from 'react-router';
import type { CheckView } from '@fleetwatch/contracts';
import { Button, ErrorNote, PageHeader, Table } from '@fleetwatch/ui';
import { api, enc } from '../../api/client';
import { fetchAllChecks, keys } from '../../api/queries';
import { LIVE_POLL_MS } from '../../live';
import { scheduleText } from './check-form-model';
import { hiddenFor } from '../../roles';
import { useCanWrite } from '../../session';

function addressOf(c: CheckView): string {
  const r = c as unknown as Record<string, unknown>;
  if (typeof r['url'] === 'string') return r['url'];
  if (typeof r['host'] === 'string') return r['port'] ? `${r['host']}:${r['port']}` : r['host'];
  if (typeof r['query'] === 'string') return r['query'];
  return '';
}

export function ChecksPage() {
  const canWrite = useCanWrite();
  const queryClient = useQueryClient();
  const checks = useQuery({
    queryKey: keys.checks(),
    queryFn: ({ signal }) => fetchAllChecks(signal),
    refetchInterval: LIVE_POLL_MS * 3,
  });
  const done = () => {
    void queryClient.invalidateQueries({ queryKey: keys.checks() });
    void queryClient.invalidateQueries({ queryKey: [...keys.all, 'targets'] });
  };
  // Each write names the version it was shown, so a change made meanwhile elsewhere is a 409, not lost.
  const setPaused = useMutation({
    mutationFn: (c: CheckView) =>
      api(`/api/v1/checks/${enc(c.id)}/${c.paused ? 'resume' : 'pause'}`, {
        method: 'POST',
        headers: { 'if-match': `"${c.version}"` },
      }),
    onSettled: done,
  });
  const remove = useMutation({
    mutationFn: (c: CheckView) =>
      api(`/api/v1/checks/${enc(c.id)}`, { method: 'DELETE', headers: { 'if-match': `"${c.version}"` } }),
    onSettled: done,
  });

  return (
    <>
      <PageHeader title="Checks">
        {canWrite && (
          <Link className="fw-button fw-button--primary" to="/checks/new">
            New check
          </Link>
        )}
      </PageHeader>
      <ErrorNote error={checks.error ?? setPaused.error ?? remove.error} />
      <Table
        caption="Checks"
        rows={checks.data ?? []}
        rowKey={(c) => c.id}
        empty={checks.isPending ? 'Loading…' : 'No checks yet.'}
        hidden={hiddenFor(canWrite)}
        columns={[
          { key: 'name', header: 'Name', cell: (c) => <Link to={`/checks/${enc(c.id)}`}>{c.name}</Link> },
          { key: 'type', header: 'Type', cell: (c) => c.type },
          { key: 'address', header: 'Address', cell: (c) => <span className="fw-mono">{addressOf(c)}</span> },
          {
            key: 'every',
            header: 'Every',
            cell: (c) => scheduleText(c),
          },
          { key: 'tags', header: 'Tags', cell: (c) => c.tags.join(', ') },
          {
            key: 'status',
            header: 'Status',
            cell: (c) => <Link to={`/targets/${enc(c.targetId)}`}>{c.paused ? 'paused' : 'live status'}</Link>,
          },
          {
            key: 'actions',
            header: <span className="fw-visually-hidden">Actions</span>,
            cell: (c) => (
              <span className="fw-row">
                <Button
                  size="small"
                  onClick={() => setPaused.mutate(c)}
                  aria-label={`${c.paused ? 'Resume' : 'Pause'} ${c.name}`}
                >
                  {c.paused ? 'Resume' : 'Pause'}
                </Button>
                <Button
                  size="small"
                  variant="danger"
                  aria-label={`Delete ${c.name}`}
                  onClick={() => {
                    if (window.confirm(`Delete the check “${c.name}”?`)) remove.mutate(c);
                  }}
                >
                  Delete
                </Button>
              </span>
            ),
          },
        ]}
      />
    </>
  );
}
