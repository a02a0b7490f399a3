import { useState } from 'react';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { Link } from 'react-router';
import type { Channel, ChannelTestResult } from '@fleetwatch/contracts';
import { Button, ErrorNote, PageHeader, Table } from '@fleetwatch/ui';
import { api, enc } from '../../../api/client';
import { alertKeys, fetchChannels, ifMatch } from '../../../api/alert-queries';
import { AlertsNav } from '../alerts-nav';
import { secretFieldsOf, storedSecret } from './channel-form-model';
import { hiddenFor } from '../../../roles';
import { useCanWrite } from '../../../session';

/** Where a channel sends, without its secrets (a Slack URL shows its origin only). */
function destinationOf(c: Channel): string {
  switch (c.type) {
    case 'webhook':
      return c.url;
    case 'slack':
    case 'teams':
      return c.url.set ? (c.url.hint ?? 'URL set') : 'URL not set';
    case 'email':
      return `${c.to.join(', ')} via ${c.host}:${c.port}`;
    case 'pagerduty':
      return c.eventsUrl;
  }
}

type Outcome = { ok: true; result: ChannelTestResult } | { ok: false; error: string };

function TestOutcome({ outcome }: { outcome: Outcome | undefined }) {
  if (!outcome) return null;
  if (!outcome.ok)
    return (
      <span className="fw-test-result" data-ok="false" role="status">
        Test not sent: {outcome.error}
      </span>
    );
  const r = outcome.result;
  const detail = [r.httpStatus === null ? null : `HTTP ${r.httpStatus}`, `${r.durationMs} ms`, r.error]
    .filter(Boolean)
    .join(' · ');
  return (
    <span className="fw-test-result" data-ok={String(r.ok)} role="status">
      Test {r.outcome}: {detail}
    </span>
  );
}

export function ChannelsPage() {
  const canWrite = useCanWrite();
  const queryClient = useQueryClient();
  const channels = useQuery({ queryKey: alertKeys.channels(), queryFn: ({ signal }) => fetchChannels(signal) });
  const [outcomes, setOutcomes] = useState<Record<string, Outcome>>({});
  const remove = useMutation({
    mutationFn: (c: Channel) => api(`/api/v1/channels/${enc(c.id)}`, { method: 'DELETE', headers: ifMatch(c.version) }),
    onSettled: () => queryClient.invalidateQueries({ queryKey: alertKeys.channels() }),
  });
  const test = useMutation({
    mutationFn: (c: Channel) => api<ChannelTestResult>(`/api/v1/channels/${enc(c.id)}/test`, { method: 'POST' }),
    onSuccess: (result, c) => setOutcomes((o) => ({ ...o, [c.id]: { ok: true, result } })),
    onError: (err, c) => setOutcomes((o) => ({ ...o, [c.id]: { ok: false, error: (err as Error).message } })),
    onSettled: () => queryClient.invalidateQueries({ queryKey: [...alertKeys.all(), 'deliveries'] }),
  });

  return (
    <>
      <PageHeader title="Channels">
        {canWrite && (
          <Link className="fw-button fw-button--primary" to="/alerts/channels/new">
            New channel
          </Link>
        )}
      </PageHeader>
      <AlertsNav />
      <ErrorNote error={channels.error ?? remove.error} />
      <Table
        caption="Notification channels"
        rows={channels.data ?? []}
        rowKey={(c) => c.id}
        empty={channels.isPending ? 'Loading…' : 'No channels yet.'}
        hidden={hiddenFor(canWrite)}
        columns={[
          { key: 'name', header: 'Name', cell: (c) => <Link to={`/alerts/channels/${enc(c.id)}`}>{c.name}</Link> },
          { key: 'type', header: 'Type', cell: (c) => c.type },
          { key: 'to', header: 'Sends to', cell: (c) => <span className="fw-mono">{destinationOf(c)}</span> },
          {
            key: 'secrets',
            header: 'Secrets',
            cell: (c) =>
              secretFieldsOf(c.type)
                .map(([f]) => `${f}: ${storedSecret(c, f).set ? 'set' : 'not set'}`)
                .join(', '),
          },
          { key: 'enabled', header: 'Enabled', cell: (c) => (c.enabled ? 'yes' : 'no') },
          {
            key: 'actions',
            header: <span className="fw-visually-hidden">Actions</span>,
            cell: (c) => (
              <span className="fw-row">
                <Button
                  size="small"
                  aria-label={`Send a test through ${c.name}`}
                  disabled={test.isPending && test.variables?.id === c.id}
                  onClick={() => test.mutate(c)}
                >
                  {test.isPending && test.variables?.id === c.id ? 'Sending…' : 'Test'}
                </Button>
                <Button
                  size="small"
                  variant="danger"
                  aria-label={`Delete ${c.name}`}
                  onClick={() => {
                    if (window.confirm(`Delete the channel “${c.name}”?`)) remove.mutate(c);
                  }}
                >
                  Delete
                </Button>
                <TestOutcome outcome={outcomes[c.id]} />
              </span>
            ),
          },
        ]}
      />
    </>
  );
}
