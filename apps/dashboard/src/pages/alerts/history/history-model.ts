import {
  alertEndReasonText,
  alertHistoryQuerySchema,
  type AlertHistoryEntry,
  type AlertHistoryResponse,
  type AlertRuleDefinition,
} from '@fleetwatch/contracts';

/** What the alert history page shows; kept in the address (`?rule=&target=`, shareable, the back button). */
export interface AlertHistoryFilter {
  /** One rule's changes; '' every rule. */
  ruleId: string;
  /** One target's changes; '' every target. */
  targetId: string;
}

export const EMPTY_HISTORY_FILTER: AlertHistoryFilter = { ruleId: '', targetId: '' };

/** The history page lists this many a page (Older changes asks for the next); the API allows 1–500. */
export const HISTORY_PAGE = 100;

/** The target detail page's card: that target's newest this many changes. */
export const TARGET_HISTORY_SHOWN = 20;

const RULE_ID = alertHistoryQuerySchema.shape.ruleId;
const TARGET_ID = alertHistoryQuerySchema.shape.targetId;

/** A rule id the API takes, else '' (a bad one is dropped, never sent: it would be a 400). */
function ruleIdOf(raw: string | null): string {
  const v = (raw ?? '').trim();
  return v && RULE_ID.safeParse(v).success ? v : '';
}

/** A target id the API takes (trimmed), else ''. */
function targetIdOf(raw: string | null): string {
  const v = (raw ?? '').trim();
  return v && TARGET_ID.safeParse(v).success ? v : '';
}

/** From the address; what the API would refuse is dropped. */
export function parseHistoryFilter(params: URLSearchParams): AlertHistoryFilter {
  return { ruleId: ruleIdOf(params.get('rule')), targetId: targetIdOf(params.get('target')) };
}

/** For the address: only what is set, in a stable order. */
export function historyFilterToParams(f: AlertHistoryFilter): URLSearchParams {
  const p = new URLSearchParams();
  if (f.ruleId) p.set('rule', f.ruleId);
  if (f.targetId) p.set('target', f.targetId);
  return p;
}

export const isHistoryFiltered = (f: AlertHistoryFilter) => f.ruleId !== '' || f.targetId !== '';

/** The history page filtered to one target (the target detail page links it). */
export const historyLinkFor = (targetId: string) =>
  `/alerts/history?${historyFilterToParams({ ...EMPTY_HISTORY_FILTER, targetId: targetId.trim() }).toString()}`;

/** For `GET /api/v1/alerts/history`: the filter, the page size and the previous page's cursor. */
export function historyApiQuery(f: AlertHistoryFilter, cursor: string | null, limit = HISTORY_PAGE): URLSearchParams {
  const q = new URLSearchParams({ limit: String(limit) });
  if (f.ruleId) q.set('ruleId', f.ruleId);
  if (f.targetId) q.set('targetId', f.targetId);
  if (cursor) q.set('cursor', cursor);
  return q;
}

/** The pages' rows, newest first as they came; a change met twice (pages read again while new ones arrive) once. */
export function historyRows(pages: readonly AlertHistoryResponse[] | undefined): AlertHistoryEntry[] {
  const seen = new Set<string>();
  const rows: AlertHistoryEntry[] = [];
  for (const page of pages ?? [])
    for (const e of page.items) {
      if (seen.has(e.id)) continue;
      seen.add(e.id);
      rows.push(e);
    }
  return rows;
}

export interface RuleOption {
  value: string;
  label: string;
}

/**
 * The rule picker's choices: every rule by name (ties told apart by id); a rule the address names that is not among
 * them (deleted since, or not loaded yet) stays choosable by its id, so the picker shows the filter in force.
 */
export function ruleOptions(
  rules: readonly Pick<AlertRuleDefinition, 'id' | 'name'>[],
  selected: string,
): RuleOption[] {
  const names = new Map<string, number>();
  for (const r of rules) names.set(r.name, (names.get(r.name) ?? 0) + 1);
  const options = [...rules]
    .sort((a, b) => a.name.localeCompare(b.name) || a.id.localeCompare(b.id))
    .map((r) => ({ value: r.id, label: (names.get(r.name) ?? 0) > 1 ? `${r.name} (${r.id})` : r.name }));
  if (selected && !rules.some((r) => r.id === selected)) options.unshift({ value: selected, label: selected });
  return [{ value: '', label: 'every rule' }, ...options];
}

/**
 * A metric condition's value at the change, readable: integers as they are, others to 3 decimals (below 1, to 4
 * significant digits: 0.30000000000000004 is 0.3, 1234.5678 is 1234.568, 0.000123456 is 0.0001235); '' for none
 * (status conditions).
 */
export function formatAlertValue(value: number | null): string {
  if (value === null) return '';
  if (Number.isInteger(value) || !Number.isFinite(value)) return String(value);
  return String(Number(Math.abs(value) >= 1 ? value.toFixed(3) : value.toPrecision(4)));
}

/** "pending → firing": the change as text (for labels and titles). */
export const changeText = (e: Pick<AlertHistoryEntry, 'from' | 'to'>) => `${e.from} → ${e.to}`;

/**
 * Why a change ended its alert, as the Reason column reads it ("condition cleared", "series absent (no data for 20
 * min)", "rule deleted"): the API's text, which says how long the data was missing when that is recorded; the reason
 * alone from a gateway before it. '' for a change that ended nothing, and for one recorded before reasons were kept.
 */
export const endReasonLabel = (e: Pick<AlertHistoryEntry, 'endReason' | 'endReasonText'>): string =>
  e.endReason ? e.endReasonText || alertEndReasonText(e.endReason) : '';

/** The alert ended without its figures recovering (its data gone, its target, its rule): shown as a warning. */
export const endedWithoutRecovery = (e: Pick<AlertHistoryEntry, 'endReason'>): boolean =>
  e.endReason !== null && e.endReason !== 'condition_cleared';
