import { conditionEnvironment } from '@fleetwatch/contracts';
import {
  readsOf,
  showValue,
  stringMap,
  toCelValue,
  valueAt,
  type MetricCall,
  type ValuePath,
} from './condition-values';
import type { PrometheusSample } from './prometheus-text';

// Evaluates a check's conditions (CEL, issue 15) over one probe result. Built on the
// contracts' `conditionEnvironment`, so exactly the variables and functions the save-time
// check accepted are the ones that run. Pure and synchronous: a collector evaluates
// thousands of these a minute, so compiled expressions are cached.

/** What a probe saw, plus its outcome: the collector's ProbeFacts with `ok` and `latencyMs`. */
export interface ConditionFacts {
  ok: boolean;
  latencyMs: number | null;
  status?: number;
  body?: unknown;
  bodyText?: string;
  headers?: Record<string, string>;
  cert?: {
    daysLeft: number;
    subject: string;
    issuer: string;
    validFrom?: string;
    validTo: string;
    authorized: boolean;
  };
  answers?: string[];
  result?: Record<string, unknown>;
  metrics?: readonly PrometheusSample[];
}

export interface ConditionFailure {
  /** Position in the check's `conditions` (0-based, as a validation path); `reason` counts from 1 for people. */
  index: number;
  expression: string;
  reason: string;
}

export interface ConditionVerdict {
  ok: boolean;
  /** The first condition that was false or could not be evaluated. */
  failed?: ConditionFailure;
}

interface Compiled {
  run?: (context: Readonly<Record<string, unknown>>) => unknown;
  /** Why it does not compile (a check saved before a rule changed, or by an older version). */
  error?: string;
  paths: ValuePath[];
  metrics: MetricCall[];
}

/** Compiled expressions kept; beyond this the least recently used goes (bounded memory). */
export const CONDITION_CACHE_SIZE = 2000;
const cache = new Map<string, Compiled>();

// metric() is registered once with the environment, so it reads the samples of the result
// being judged from here. Evaluation is synchronous: nothing else runs between setting
// this and clearing it.
let currentMetrics: readonly PrometheusSample[] | undefined;

const env = conditionEnvironment({
  metric: (name) => seriesValue(name, undefined),
  metricWith: (name, labels) => seriesValue(name, labels),
});

/** Cache size now, for tests and a collector's own metrics. */
export function conditionCacheSize(): number {
  return cache.size;
}

function compile(expression: string): Compiled {
  const hit = cache.get(expression);
  if (hit) {
    // Re-inserting moves it to the end: Map order is the recency order.
    cache.delete(expression);
    cache.set(expression, hit);
    return hit;
  }
  let compiled: Compiled;
  try {
    const parsed = env.parse(expression);
    const checked = parsed.check();
    if (!checked.valid) throw checked.error ?? new Error('invalid');
    const { paths, metrics } = readsOf(parsed.ast);
    compiled = { run: (context) => parsed(context), paths, metrics };
  } catch (e) {
    compiled = { error: summaryOf(e), paths: [], metrics: [] };
  }
  cache.set(expression, compiled);
  if (cache.size > CONDITION_CACHE_SIZE) cache.delete(cache.keys().next().value as string);
  return compiled;
}

/** All conditions must be true; the verdict names the first that is not, and why. */
export function evaluateConditions(conditions: readonly string[], facts: ConditionFacts): ConditionVerdict {
  if (conditions.length === 0) return { ok: true };
  const compiled = conditions.map(compile);
  const context = contextOf(facts, conditions);
  currentMetrics = facts.metrics;
  try {
    for (let i = 0; i < compiled.length; i++) {
      const reason = judge(conditions[i], compiled[i], context);
      if (reason)
        return { ok: false, failed: { index: i, expression: conditions[i], reason: `condition ${i + 1} ${reason}` } };
    }
    return { ok: true };
  } finally {
    currentMetrics = undefined;
  }
}

/** Null when the condition holds; else the reason, after `condition N `. */
function judge(expression: string, c: Compiled, context: Readonly<Record<string, unknown>>): string | null {
  const quoted = JSON.stringify(expression);
  if (!c.run) return `${quoted} could not be compiled: ${c.error}`;
  let value: unknown;
  try {
    value = c.run(context);
  } catch (e) {
    return `${quoted} could not be evaluated: ${summaryOf(e)}`;
  }
  if (value === true) return null;
  const shown = shownValues(c, context);
  if (value === false) return `${quoted} was false${shown}`;
  return `${quoted} gave ${showValue(toCelValue(value))}, not true or false${shown}`;
}

/** ` (latency = 412, body.status = "DOWN")`: the values the expression read, as far as cheap. */
function shownValues(c: Compiled, context: Readonly<Record<string, unknown>>): string {
  const parts: string[] = [];
  for (const p of c.paths.slice(0, 4)) parts.push(`${p.text} = ${showValue(valueAt(context, p))}`);
  for (const m of c.metrics.slice(0, Math.max(0, 4 - parts.length))) {
    try {
      parts.push(`${m.text} = ${showValue(seriesValue(m.name, m.labels))}`);
    } catch {
      // It evaluated, so the series exists; a failure here only loses the display.
    }
  }
  return parts.length ? ` (${parts.join(', ')})` : '';
}

/**
 * The CEL activation. A variable the result lacks is left out, so CEL reports it as
 * unknown rather than comparing against a made-up zero. `body` and `result` can be large,
 * so they are converted only when some condition mentions them.
 */
function contextOf(facts: ConditionFacts, conditions: readonly string[]): Record<string, unknown> {
  const context: Record<string, unknown> = {};
  const mentioned = (name: string): boolean => conditions.some((c) => c.includes(name));
  context.ok = facts.ok;
  if (facts.latencyMs !== null && Number.isFinite(facts.latencyMs)) context.latency = facts.latencyMs;
  if (facts.status !== undefined && Number.isFinite(facts.status)) context.status = BigInt(Math.trunc(facts.status));
  if (facts.bodyText !== undefined) context.bodyText = facts.bodyText;
  if (facts.headers !== undefined) context.headers = stringMap(facts.headers);
  if (facts.cert !== undefined) context.cert = toCelValue(facts.cert);
  if (facts.answers !== undefined) context.answers = facts.answers;
  if (facts.body !== undefined && mentioned('body')) context.body = toCelValue(facts.body);
  if (facts.result !== undefined && mentioned('result')) context.result = toCelValue(facts.result);
  return context;
}

function seriesValue(name: string, labels: Record<string, string> | undefined): number {
  const samples = currentMetrics ?? [];
  const named = samples.filter((s) => s.name === name);
  if (named.length === 0)
    throw new Error(
      samples.length === 0
        ? `no series named "${name}": this result has no metrics`
        : `no series named "${name}" among ${samples.length} samples`,
    );
  const wanted = labels ? Object.entries(labels) : [];
  // A label asked as "" is one the series does not have (as Prometheus reads an empty label).
  const matching = named.filter((s) =>
    wanted.every(([k, v]) => (Object.hasOwn(s.labels, k) ? s.labels[k] === v : v === '')),
  );
  const where = labels ? ` with labels ${labelText(labels)}` : '';
  if (matching.length === 0)
    throw new Error(
      `no series "${name}"${where}; it has ${named
        .slice(0, 3)
        .map((s) => labelText(s.labels))
        .join(', ')}`,
    );
  if (matching.length > 1) {
    // The one series with no label beyond those named, when there is one: `metric("lag")` beside `lag{replica="a"}`
    // is the unlabelled `lag` (no selector could name it before).
    const exact = matching.filter((s) =>
      Object.entries(s.labels).every(([k, v]) => v === '' || (labels !== undefined && Object.hasOwn(labels, k))),
    );
    if (exact.length === 1) return exact[0].value;
    const some = matching.slice(0, 3).map((s) => labelText(s.labels));
    const more = matching.length > 3 ? ` and ${matching.length - 3} more` : '';
    throw new Error(
      `${matching.length} series "${name}"${where} (${some.join(', ')}${more}): name labels to pick one, metric("${name}", {"label": "value"})`,
    );
  }
  return matching[0].value;
}

function labelText(labels: Record<string, string>): string {
  return `{${Object.entries(labels)
    .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
    .join(', ')}}`;
}

/** One line, lower-case first letter: `no such key: status`, `this result has no status`. */
function summaryOf(e: unknown): string {
  const err = e as { code?: string; summary?: string; message?: string } | undefined;
  const text = err?.summary ?? String(err?.message ?? e).split('\n')[0];
  const unknown = err?.code === 'unknown_variable' ? /Unknown variable: (\w+)/.exec(text) : null;
  if (unknown) return `this result has no ${unknown[1]}`;
  return text.charAt(0).toLowerCase() + text.slice(1);
}
