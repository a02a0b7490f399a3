import type { CheckDefinition, CheckMetric, CheckSpec, CheckType } from '@fleetwatch/contracts';
import type { TargetPolicy } from '@fleetwatch/domain';

// The contract between the collector's runner and each check type's probe. A probe does
// one attempt of one check and reports what it saw; it never throws for a failing
// target (that is a result with ok=false and a reason), only for a bug. The runner adds
// retries, the check's conditions (CEL over `facts`), the timeout and publication.

export interface ProbeContext {
  /** Aborted at the check's timeout or at shutdown: stop and release sockets promptly. */
  signal: AbortSignal;
  timeoutMs: number;
  /** The deny list (FLEETWATCH_CHECK_DENY_NETWORKS): every address actually connected to is checked. */
  policy: TargetPolicy;
  /** COLLECTOR_DNS_SERVERS (resolver entries, see net/dns-servers.ts); empty or absent = the system resolver. */
  dnsServers?: readonly string[];
  /** The collector's environment, for `passwordEnv`-style references. Never logged, never published. */
  env: Readonly<Record<string, string | undefined>>;
}

/** One scraped Prometheus sample (prometheus probe) for `metric("name", {labels})`. */
export interface MetricSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** What a probe saw, exposed to conditions under CONDITION_VARIABLES' names. */
export interface ProbeFacts {
  status?: number;
  body?: unknown;
  bodyText?: string;
  headers?: Record<string, string>;
  cert?: {
    daysLeft: number;
    subject: string;
    issuer: string;
    validFrom: string;
    validTo: string;
    authorized: boolean;
  };
  answers?: string[];
  /** Type-specific numbers and values (`result.messages`, `result.cpuPct`, `result.row`). */
  result?: Record<string, unknown>;
  /** Samples `metric()` reads (prometheus scrape; other types may expose their numbers here too). */
  metrics?: MetricSample[];
}

export interface ProbeOutcome {
  /** Did the target pass the type's own checks (connected, expected status, assertions, cert days)? */
  ok: boolean;
  /** Milliseconds the attempt took (null when it never got as far as a measurement). */
  latencyMs: number | null;
  /** Why not ok, for people: "connect ECONNREFUSED 127.0.0.1:9", "status 503 not in [200]". */
  failureReason?: string;
  facts: ProbeFacts;
  /**
   * Figures a service collector read, published with the result as its `metrics` (bounded and valid
   * by checkMetricSchema: probes/service-metrics.ts); an amqp check's queue depth and consumers too. Absent
   * for the other types, whose `facts.metrics` serve conditions only.
   */
  metrics?: CheckMetric[];
}

export type Probe<T extends CheckType = CheckType> = (
  check: Extract<CheckSpec, { type: T }>,
  ctx: ProbeContext,
) => Promise<ProbeOutcome>;

/** What a probe session gets: a probe's context without a per-run signal or timeout. */
export type SessionContext = Omit<ProbeContext, 'signal' | 'timeoutMs'> & {
  logger: { warn(obj: object, msg: string): void };
};

/**
 * Probes that hold something open while their checks are assigned (rabbitmq-tap's subscription).
 * Told the active checks each time the assignment is applied: what is new opens, what changed
 * reopens, what is gone (deleted, paused, moved away) closes. Each run of such a check reads
 * and resets what its session gathered since the last run.
 */
export interface ProbeSessions {
  assign(checks: readonly CheckDefinition[], ctx: SessionContext): void;
  close(): Promise<void>;
}
