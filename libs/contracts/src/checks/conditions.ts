import { Environment } from '@marcbachmann/cel-js';

// Check conditions are CEL expressions (https://cel.dev) over one result: `status == 200`,
// `latency < 300`, `body.status == "UP"`, `cert.daysLeft > 14`, `metric("pg_lag_seconds") < 30`.
// This file is the one place that knows the variables a condition may use: the save-time
// check (contracts schema, gateway and sync-orchestrator alike) and the collector's
// evaluator (libs/domain) both build on `conditionEnvironment`, so what is accepted at
// save time is what runs. Pure JS, no I/O: the dashboard can validate too.

/** Variables every condition may use. Types are CEL types; ints travel as BigInt at evaluation. */
export const CONDITION_VARIABLES = {
  /** Did the probe itself succeed (connected, answered within the timeout)? */
  ok: 'bool',
  /** Milliseconds the probe took. */
  latency: 'double',
  /** HTTP status code (http, prometheus). */
  status: 'int',
  /** Response body parsed as JSON (http), when the answer's content type says JSON; absent otherwise — read `bodyText`. */
  body: 'dyn',
  /** Response body as text (http, at most the first 64 KiB). */
  bodyText: 'string',
  /** Response headers, lower-case names (http). */
  headers: 'map<string, string>',
  /** Peer certificate: daysLeft, subject, issuer, validFrom, validTo, authorized (http over TLS, tls). */
  cert: 'map<string, dyn>',
  /** DNS answers as strings (dns). */
  answers: 'list<string>',
  /** Type-specific facts: queue depth and consumers (amqp), cpu/memory (process), … */
  result: 'map<string, dyn>',
} as const;

export type ConditionVariable = keyof typeof CONDITION_VARIABLES;

/** Size limits of one expression (a condition runs on every result of every check). */
export const CONDITION_LIMITS = { maxLength: 1024, maxAstNodes: 256, maxDepth: 32 } as const;

export interface ConditionFunctions {
  /**
   * `metric("name")`: the value of a scraped series (prometheus), a type's named number, or a service
   * collector's figure as its result's `metrics` carry it (`metric("redis_connected_clients")`,
   * `metric("rabbitmq_queue_messages", {"queue": "orders"})`, `metric("pg_standby_lag_seconds") < 30`).
   */
  metric(name: string): number;
  /** `metric("name", {"label": "value"})`: the series with those labels. */
  metricWith(name: string, labels: Record<string, string>): number;
}

/**
 * A CEL environment declaring the condition variables and `metric(...)`. Save-time
 * validation passes no functions (only types are checked); the collector passes the
 * functions that read the result being judged.
 */
export function conditionEnvironment(fns?: ConditionFunctions): Environment {
  const env = new Environment({
    limits: { maxAstNodes: CONDITION_LIMITS.maxAstNodes, maxDepth: CONDITION_LIMITS.maxDepth },
  });
  for (const [name, type] of Object.entries(CONDITION_VARIABLES)) env.registerVariable(name, type);
  const none = (): number => {
    throw new Error('metric() is only evaluated by the collector');
  };
  env.registerFunction('metric(string): dyn', fns ? (n: string) => fns.metric(n) : none);
  env.registerFunction(
    'metric(string, map<string, string>): dyn',
    fns ? (n: string, l: Map<string, string> | Record<string, string>) => fns.metricWith(n, toRecord(l)) : none,
  );
  return env;
}

function toRecord(labels: Map<string, string> | Record<string, string>): Record<string, string> {
  return labels instanceof Map ? Object.fromEntries(labels) : labels;
}

export interface ConditionProblem {
  /** 0-based character offset into the expression where the problem is. */
  offset: number;
  /** 1-based line and column of that offset. */
  line: number;
  column: number;
  message: string;
}

let shared: Environment | undefined;

/** Null when `expression` is a valid condition (parses, type-checks to bool); else where and why not. */
export function conditionProblem(expression: string): ConditionProblem | null {
  if (expression.length > CONDITION_LIMITS.maxLength)
    return at(expression, CONDITION_LIMITS.maxLength, `at most ${CONDITION_LIMITS.maxLength} characters`);
  if (expression.trim() === '') return at(expression, 0, 'a condition cannot be empty');
  shared ??= conditionEnvironment();
  let result: ReturnType<Environment['check']>;
  try {
    result = shared.check(expression);
  } catch (e) {
    return fromError(expression, e);
  }
  if (!result.valid) return fromError(expression, result.error);
  if (result.type !== 'bool' && result.type !== 'dyn')
    return at(expression, 0, `a condition must be true or false, this one is ${result.type ?? 'unknown'}`);
  return null;
}

function fromError(expression: string, e: unknown): ConditionProblem {
  const err = e as { message?: string; summary?: string; node?: { pos?: number } } | undefined;
  const summary = err?.summary ?? String(err?.message ?? e).split('\n')[0];
  const offset = typeof err?.node?.pos === 'number' ? err.node.pos : 0;
  return at(expression, Math.min(Math.max(offset, 0), expression.length), summary);
}

function at(expression: string, offset: number, message: string): ConditionProblem {
  const before = expression.slice(0, offset);
  const line = before.split('\n').length;
  const column = offset - (before.lastIndexOf('\n') + 1) + 1;
  return { offset, line, column, message };
}
