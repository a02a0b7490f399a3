/**
 * How often lists refresh while the gateway offers no push channel to this page. Queries
 * also refetch when the window regains focus. Once `/ws` is there, its events invalidate
 * the affected queries and this becomes a slow safety net.
 */
export const LIVE_POLL_MS = 10_000;
