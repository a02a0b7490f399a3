import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { Link, useSearchParams } from 'react-router';
import { SILENCE_STATES, type SilenceDefinition, type SilenceState } from '@fleetwatch/contracts';
import { Button, ErrorNote, formatLocal, PageHeader, RelativeTime, Table } from '@fleetwatch/ui';
import { api, enc } from '../../../api/client';
import { alertKeys, fetchSilences, SILENCES_SHOWN } from '../../../api/alert-queries';
import { LIVE_POLL_MS } from '../../../live';
import { AlertsNav } from '../alerts-nav';
import { formatMatcher } from './silence-form-model';
import { hiddenFor } from '../../../roles';
import { useCanWrite } from '../../../session';

type Shown = SilenceState | 'all';
const FILTERS: Shown[] = ['all', ...SILENCE_STATES];

export function SilencesPage() {
  const canWrite = useCanWrite();
  const queryClient = useQueryClient();
  const [params, setParams] = useSearchParams();
  const requested = params.get('state') as Shown | null;
  const state: Shown = requested && FILTERS.includes(requested) ? requested : 'all';
  const silences = useQuery({
    queryKey: alertKeys.silences(state),
    queryFn: ({ signal }) => fetchSilences(state, signal),
    refetchInterval: LIVE_POLL_MS,
  });
  const expire = useMutation({
    mutationFn: (s: SilenceDefinition) => api(`/api/v1/silences/${enc(s.id)}/expire`, { method: 'POST' }),
    onSettled: () => queryClient.invalidateQueries({ queryKey: alertKeys.all() }),
  });

  return (
    <>
      <PageHeader title="Silences">
        {canWrite && (
          <Link className="fw-button fw-button--primary" to="/alerts/silences/new">
            New silence
          </Link>
        )}
      </PageHeader>
      <AlertsNav />
      <div className="fw-row fw-alerts-filters" role="group" aria-label="Show silences">
        {FILTERS.map((f) => (
          <Button
            key={f}
            size="small"
            aria-pressed={f === state}
            variant={f === state ? 'primary' : 'default'}
            onClick={() => setParams(f === 'all' ? {} : { state: f }, { replace: true })}
          >
            {f}
          </Button>
        ))}
      </div>
      <ErrorNote error={silences.error ?? expire.error} />
      {silences.data && silences.data.length >= SILENCES_SHOWN && (
        <p className="fw-muted">Showing the newest {SILENCES_SHOWN.toLocaleString()}.</p>
      )}
      <Table
        caption="Silences"
        rows={silences.data ?? []}
        rowKey={(s) => s.id}
        empty={silences.isPending ? 'Loading…' : 'No silences.'}
        hidden={hiddenFor(canWrite)}
        columns={[
          {
            key: 'state',
            header: 'State',
            cell: (s) => (
              <span className="fw-alert-state" data-state={s.state}>
                {s.state}
              </span>
            ),
          },
          {
            key: 'matchers',
            header: 'Matchers',
            cell: (s) => (
              <span className="fw-labels">
                {s.matchers.map((m, i) => (
                  <span key={i} className="fw-chip fw-mono">
                    {formatMatcher(m)}
                  </span>
                ))}
              </span>
            ),
          },
          {
            key: 'range',
            header: 'From – to',
            cell: (s) => (
              <span title={`${formatLocal(s.startsAt)} – ${formatLocal(s.endsAt)}`}>
                <RelativeTime iso={s.startsAt} /> – <RelativeTime iso={s.endsAt} />
              </span>
            ),
          },
          { key: 'author', header: 'Author', cell: (s) => s.createdBy },
          { key: 'comment', header: 'Comment', cell: (s) => <span data-comment>{s.comment}</span> },
          {
            key: 'actions',
            header: <span className="fw-visually-hidden">Actions</span>,
            cell: (s) =>
              s.state !== 'expired' && (
                <Button
                  size="small"
                  variant="danger"
                  aria-label={`Expire silence ${s.comment}`}
                  onClick={() => expire.mutate(s)}
                >
                  Expire
                </Button>
              ),
          },
        ]}
      />
    </>
  );
}
