import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { Link } from 'react-router';
import type { AlertRuleDefinition } from '@fleetwatch/contracts';
import { Button, ErrorNote, PageHeader, Table } from '@fleetwatch/ui';
import { api, enc } from '../../../api/client';
import { alertKeys, fetchRules, ifMatch } from '../../../api/alert-queries';
import { AlertsNav } from '../alerts-nav';
import { LabelChips } from '../label-chips';
import { hiddenFor } from '../../../roles';
import { useCanWrite } from '../../../session';

/** What a rule waits for, in words ("DOWN for 1m", "host_cpu_pct above 90 for 5m"). */
export function describeCondition(r: AlertRuleDefinition): string {
  const c = r.condition;
  const what = c.type === 'status' ? c.statuses.join(' or ') : `${c.metric.kind} ${c.op} ${c.threshold}`;
  return r.for === '0s' || r.for === '0' ? what : `${what} for ${r.for}`;
}

function describeSelector(r: AlertRuleDefinition): string {
  const s = r.selector;
  const parts = [
    s.targetIds.length ? `targets ${s.targetIds.join(', ')}` : '',
    s.tags.length ? `tags ${s.tags.join(' + ')}` : '',
    s.sites.length ? `sites ${s.sites.join(', ')}` : '',
    s.locations.length ? `locations ${s.locations.join(', ')}` : '',
    s.kinds.length ? `kinds ${s.kinds.join(', ')}` : '',
  ].filter(Boolean);
  return parts.length ? parts.join('; ') : 'every target';
}

export function RulesPage() {
  const canWrite = useCanWrite();
  const queryClient = useQueryClient();
  const rules = useQuery({ queryKey: alertKeys.rules(), queryFn: ({ signal }) => fetchRules(signal) });
  const remove = useMutation({
    mutationFn: (r: AlertRuleDefinition) =>
      api(`/api/v1/alert-rules/${enc(r.id)}`, { method: 'DELETE', headers: ifMatch(r.version) }),
    onSettled: () => queryClient.invalidateQueries({ queryKey: alertKeys.rules() }),
  });
  return (
    <>
      <PageHeader title="Alert rules">
        {canWrite && (
          <Link className="fw-button fw-button--primary" to="/alerts/rules/new">
            New rule
          </Link>
        )}
      </PageHeader>
      <AlertsNav />
      <ErrorNote error={rules.error ?? remove.error} />
      <Table
        caption="Alert rules"
        rows={rules.data ?? []}
        rowKey={(r) => r.id}
        empty={rules.isPending ? 'Loading…' : 'No rules yet.'}
        hidden={hiddenFor(canWrite)}
        columns={[
          {
            key: 'name',
            header: 'Name',
            cell: (r) => (
              <span className="fw-row">
                <Link to={`/alerts/rules/${enc(r.id)}`}>{r.name}</Link>
                {!r.enabled && <span className="fw-chip">disabled</span>}
              </span>
            ),
          },
          {
            key: 'severity',
            header: 'Severity',
            cell: (r) => (
              <span className="fw-alert-state" data-state={r.severity}>
                {r.severity}
              </span>
            ),
          },
          { key: 'condition', header: 'Condition', cell: (r) => describeCondition(r) },
          { key: 'selector', header: 'Targets', cell: (r) => describeSelector(r) },
          { key: 'labels', header: 'Labels', cell: (r) => <LabelChips labels={r.labels} /> },
          {
            key: 'summary',
            header: 'Summary',
            cell: (r) => <span data-summary>{r.annotations['summary'] ?? ''}</span>,
          },
          {
            key: 'channels',
            header: 'Channels',
            cell: (r) => (r.channels.length ? r.channels.length : <span className="fw-muted">none</span>),
          },
          {
            key: 'actions',
            header: <span className="fw-visually-hidden">Actions</span>,
            cell: (r) => (
              <Button
                size="small"
                variant="danger"
                aria-label={`Delete ${r.name}`}
                onClick={() => {
                  if (window.confirm(`Delete the rule “${r.name}”?`)) remove.mutate(r);
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
