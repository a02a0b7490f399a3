import { useEffect, useRef, useState } from 'react';
import { useInfiniteQuery, useQuery } from '@tanstack/react-query';
import { Button, ErrorNote, PageHeader, RelativeTime, SelectField, Table, TextField } from '@fleetwatch/ui';
import { alertKeys, fetchAlertHistory, fetchRules } from '../../../api/alert-queries';
import { LIVE_POLL_MS } from '../../../live';
import { useSearchParamsEditor } from '../../../search-params';
import { AlertsNav } from '../alerts-nav';
import { LabelChips } from '../label-chips';
import {
  EMPTY_HISTORY_FILTER,
  formatAlertValue,
  HISTORY_PAGE,
  historyFilterToParams,
  historyRows,
  isHistoryFiltered,
  parseHistoryFilter,
  ruleOptions,
  type AlertHistoryFilter,
} from './history-model';
import { HistoryChange, HistoryEndReason, HistoryRule, HistorySeverity, HistoryTarget } from './history-parts';

/** The labels every alert has are columns of their own (as on the alerts page). */
const OWN_COLUMNS = ['alertname', 'severity', 'target', 'rule_id'];

/**
 * Every state change of every alert, newest first, a page at a time (Older changes reads the next with the last
 * page's cursor). The filter (rule, target) is the gateway's and lives in the address, as the delivery log's does.
 */
export function AlertHistoryPage() {
  const [params, editParams] = useSearchParamsEditor();
  const filter = parseHistoryFilter(params);
  const filtered = isHistoryFiltered(filter);
  const setFilter = (change: (f: AlertHistoryFilter) => AlertHistoryFilter) =>
    editParams((current) => historyFilterToParams(change(parseHistoryFilter(current))), { replace: true });

  // The target box reaches the address (and the API) once typing pauses, trimmed; it shows what was typed at once.
  // The address coming back with what the box sent leaves it alone (a space typed before the pause stays); another
  // change of the address (Back, Clear, a link) is put in it.
  const [targetDraft, setTargetDraft] = useState(filter.targetId);
  const sent = useRef(filter.targetId);
  // Put in the box during the render that sees the new address, not in an effect after it: the box showed the old
  // target for a frame, and the debounce below, run in that frame, scheduled sending it back (a Clear undone when
  // the next render came later than its 300 ms, as on a loaded machine).
  const [seenTarget, setSeenTarget] = useState(filter.targetId);
  if (seenTarget !== filter.targetId) {
    setSeenTarget(filter.targetId);
    if (filter.targetId !== sent.current) setTargetDraft(filter.targetId);
  }
  useEffect(() => {
    sent.current = filter.targetId;
  }, [filter.targetId]);
  useEffect(() => {
    const typed = targetDraft.trim();
    if (typed === filter.targetId) return;
    const t = setTimeout(() => {
      sent.current = typed;
      setFilter((f) => ({ ...f, targetId: typed }));
    }, 300);
    return () => clearTimeout(t);
  });

  const rules = useQuery({ queryKey: alertKeys.rules(), queryFn: ({ signal }) => fetchRules(signal) });
  const history = useInfiniteQuery({
    queryKey: alertKeys.history(filter, HISTORY_PAGE),
    queryFn: ({ signal, pageParam }) => fetchAlertHistory(filter, pageParam, HISTORY_PAGE, signal),
    initialPageParam: null as string | null,
    getNextPageParam: (last) => last.nextCursor,
    refetchInterval: LIVE_POLL_MS,
  });
  const rows = historyRows(history.data?.pages);

  return (
    <>
      <PageHeader title="Alert history" />
      <AlertsNav />
      <div className="fw-grid fw-alerts-filters">
        <SelectField
          label="Rule"
          value={filter.ruleId}
          onChange={(e) => {
            const ruleId = e.target.value;
            setFilter((f) => ({ ...f, ruleId }));
          }}
          options={ruleOptions(rules.data ?? [], filter.ruleId)}
        />
        <TextField
          label="Target"
          name="target"
          type="search"
          placeholder="target id, e.g. check:web"
          value={targetDraft}
          onChange={(e) => setTargetDraft(e.target.value)}
        />
        {filtered && (
          <Button size="small" onClick={() => setFilter(() => EMPTY_HISTORY_FILTER)}>
            Clear filter
          </Button>
        )}
      </div>
      <ErrorNote error={history.error ?? rules.error} />
      <Table
        caption="Alert state changes, newest first"
        rows={rows}
        rowKey={(e) => e.id}
        empty={
          history.isPending
            ? 'Loading…'
            : history.isError
              ? 'The history could not be read.'
              : filtered
                ? 'No alert changed state for this filter.'
                : 'No alert has changed state yet.'
        }
        columns={[
          { key: 'at', header: 'When', cell: (e) => <RelativeTime iso={e.at} /> },
          { key: 'rule', header: 'Alert', cell: (e) => <HistoryRule entry={e} /> },
          { key: 'severity', header: 'Severity', cell: (e) => <HistorySeverity entry={e} /> },
          { key: 'target', header: 'Target', cell: (e) => <HistoryTarget entry={e} /> },
          { key: 'change', header: 'Change', cell: (e) => <HistoryChange entry={e} /> },
          { key: 'reason', header: 'Reason', cell: (e) => <HistoryEndReason entry={e} /> },
          { key: 'value', header: 'Value', cell: (e) => formatAlertValue(e.value) },
          { key: 'labels', header: 'Labels', cell: (e) => <LabelChips labels={e.labels} skip={OWN_COLUMNS} /> },
        ]}
      />
      {history.hasNextPage && (
        <Button onClick={() => void history.fetchNextPage()} disabled={history.isFetchingNextPage}>
          {history.isFetchingNextPage ? 'Loading…' : 'Older changes'}
        </Button>
      )}
    </>
  );
}
