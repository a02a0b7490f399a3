// The leader poller's defaults, shared by its configuration (config.ts) and the poller (fleet-poller.ts).

/** Default of FLEET_POLL_MAX_INFLIGHT_BYTES: 64 MiB, eight answers at the per-answer cap (MAX_ANSWER_BYTES, 8 MiB). */
export const DEFAULT_MAX_INFLIGHT_BYTES = 64 * 1024 * 1024;

/** The member timeout when FLEET_POLL_MEMBER_TIMEOUT_MS is unset: half the overall timeout, at most 5 s. */
export const defaultMemberTimeoutMs = (timeoutMs: number): number => Math.min(5_000, Math.ceil(timeoutMs / 2));
