import type {
  AlertHistoryResponse,
  AlertListResponse,
  AlertRuleDefinition,
  DeliveryLogResponse,
  Channel,
  MaintenanceWindowDefinition,
  Page,
  SilenceDefinition,
  SilenceState,
} from '@fleetwatch/contracts';
import { api, enc } from './client';
import { keys } from './queries';
import { historyApiQuery, type AlertHistoryFilter } from '../pages/alerts/history/history-model';

// Alerting (issue 18): rules, channels, maintenance windows and silences are configuration,
// read and written through the gateway's alert routes (each write of a rule, channel or
// window names the version it was shown: If-Match, a change made meanwhile is a 409).
// Keys carry every input, as in queries.ts.

export const alertKeys = {
  all: () => [...keys.all, 'alerting'] as const,
  alerts: () => [...keys.all, 'alerting', 'alerts'] as const,
  firing: (limit: number) => [...keys.all, 'alerting', 'alerts', 'firing', limit] as const,
  deliveries: (filter: DeliveryFilter) => [...keys.all, 'alerting', 'deliveries', filter] as const,
  /** Pages of the alert history (`limit` each) a filter takes. */
  history: (filter: AlertHistoryFilter, limit: number) =>
    [...keys.all, 'alerting', 'history', { ruleId: filter.ruleId, targetId: filter.targetId, limit }] as const,
  rules: () => [...keys.all, 'alerting', 'rules'] as const,
  rule: (id: string) => [...keys.all, 'alerting', 'rules', id] as const,
  channels: () => [...keys.all, 'alerting', 'channels'] as const,
  channel: (id: string) => [...keys.all, 'alerting', 'channels', id] as const,
  windows: () => [...keys.all, 'alerting', 'windows'] as const,
  window: (id: string) => [...keys.all, 'alerting', 'windows', id] as const,
  silences: (state: SilenceState | 'all') => [...keys.all, 'alerting', 'silences', state] as const,
};

export interface DeliveryFilter {
  channelId?: string;
  /** One outcome: delivered, retrying, failed or skipped. */
  outcome?: string;
}

/** Every page of a config list (each at most 1,000 entries), up to `maxPages`. */
async function fetchAll<T>(path: string, signal?: AbortSignal, extra = '', maxPages = Infinity): Promise<T[]> {
  const items: T[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const page: Page<T> = await api<Page<T>>(`${path}?limit=1000${extra}${cursor ? `&cursor=${enc(cursor)}` : ''}`, {
      signal,
    });
    items.push(...page.items);
    cursor = page.nextCursor;
  } while (cursor && ++pages < maxPages);
  return items;
}

export const fetchRules = (signal?: AbortSignal) => fetchAll<AlertRuleDefinition>('/api/v1/alert-rules', signal);
export const fetchRule = (id: string, signal?: AbortSignal) =>
  api<AlertRuleDefinition>(`/api/v1/alert-rules/${enc(id)}`, { signal });

export const fetchChannels = (signal?: AbortSignal) => fetchAll<Channel>('/api/v1/channels', signal);
export const fetchChannel = (id: string, signal?: AbortSignal) =>
  api<Channel>(`/api/v1/channels/${enc(id)}`, { signal });

export const fetchWindows = (signal?: AbortSignal) =>
  fetchAll<MaintenanceWindowDefinition>('/api/v1/maintenance-windows', signal);
export const fetchWindow = (id: string, signal?: AbortSignal) =>
  api<MaintenanceWindowDefinition>(`/api/v1/maintenance-windows/${enc(id)}`, { signal });

/** Expired silences pile up: a list shows the newest this many. */
export const SILENCES_SHOWN = 2000;

/** Silences newest first (at most SILENCES_SHOWN); `all` asks without a state. */
export const fetchSilences = (state: SilenceState | 'all', signal?: AbortSignal) =>
  fetchAll<SilenceDefinition>(
    '/api/v1/silences',
    signal,
    state === 'all' ? '' : `&state=${state}`,
    SILENCES_SHOWN / 1000,
  );

/** `If-Match` for a write that names the version it was shown. */
export const ifMatch = (version: number | undefined): Record<string, string> =>
  version === undefined ? {} : { 'if-match': `"${version}"` };

/** The alerts page lists at most this many (newest first); `counts` still cover every alert. */
export const ALERTS_SHOWN = 5000;

/** Pending and firing alerts (up to ALERTS_SHOWN; `counts` over all of them) or only the first `limit` of a state. */
export async function fetchAlerts(
  options: { state?: 'pending' | 'firing'; limit?: number } = {},
  signal?: AbortSignal,
): Promise<AlertListResponse> {
  const q = new URLSearchParams({ limit: String(options.limit ?? 500) });
  if (options.state) q.set('state', options.state);
  const first = await api<AlertListResponse>(`/api/v1/alerts?${q}`, { signal });
  if (options.limit !== undefined) return first;
  const items = [...first.items];
  let cursor = first.nextCursor;
  while (cursor && items.length < ALERTS_SHOWN) {
    q.set('cursor', cursor);
    const page: AlertListResponse = await api<AlertListResponse>(`/api/v1/alerts?${q}`, { signal });
    items.push(...page.items);
    cursor = page.nextCursor;
  }
  return { ...first, items, nextCursor: null };
}

/** One page of the delivery log, newest first. */
export function fetchDeliveries(
  filter: DeliveryFilter,
  cursor: string | null,
  signal?: AbortSignal,
): Promise<DeliveryLogResponse> {
  const q = new URLSearchParams({ limit: '100' });
  if (filter.channelId) q.set('channelId', filter.channelId);
  if (filter.outcome) q.set('outcome', filter.outcome);
  if (cursor) q.set('cursor', cursor);
  return api<DeliveryLogResponse>(`/api/v1/alerts/deliveries?${q}`, { signal });
}

/** One page of the alert history (every state change of every alert), newest first. */
export function fetchAlertHistory(
  filter: AlertHistoryFilter,
  cursor: string | null,
  limit?: number,
  signal?: AbortSignal,
): Promise<AlertHistoryResponse> {
  return api<AlertHistoryResponse>(`/api/v1/alerts/history?${historyApiQuery(filter, cursor, limit)}`, { signal });
}
