import { z } from 'zod';
import { storableText } from '../common/store-safe';

// Label names and matchers over alert labels (silences, routes), in Prometheus/Alertmanager syntax, so a
// matcher means the same here, in a Prometheus rule file and in Alertmanager. Regexes are fully anchored
// (`=~ "web"` matches "web", not "webserver"), as in Prometheus.

/** A Prometheus label name: letters, digits and _, not starting with a digit. `__` names are Prometheus' own. */
export const alertLabelNameSchema = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'a label name: letters, digits and _, not starting with a digit')
  .refine((n) => !n.startsWith('__'), 'names starting with __ are reserved');

export const ALERT_LABEL_VALUE_MAX = 1024;
export const alertLabelValueSchema = storableText(ALERT_LABEL_VALUE_MAX);

export const MATCHER_OPS = ['=', '!=', '=~', '!~'] as const;
export const matcherOpSchema = z.enum(MATCHER_OPS);
export type MatcherOp = z.infer<typeof matcherOpSchema>;

/** Longest regex a matcher may hold: enough for an alternation of a few dozen names. */
export const MATCHER_REGEX_MAX = 512;

/**
 * Why a matcher regex is refused, or null. Besides syntax (compiled here, anchored, as the matcher will
 * run it) this refuses what RE2 — Prometheus' engine — cannot run (back-references, look-around), so the
 * same matcher exports, and a cheap test for catastrophic backtracking: a repeated group that itself
 * holds a repetition or an alternation (`(a+)+`, `(a|aa)*`) can take exponential time in JavaScript.
 */
export function matcherRegexProblem(pattern: string): string | null {
  if (pattern.length > MATCHER_REGEX_MAX) return `longer than ${MATCHER_REGEX_MAX} characters`;
  if (/\\[1-9]|\\k</.test(pattern)) return 'back-references are not supported (Prometheus uses RE2)';
  if (/\(\?<?[=!]/.test(pattern)) return 'look-ahead and look-behind are not supported (Prometheus uses RE2)';
  try {
    new RegExp(`^(?:${pattern})$`, 'u');
  } catch (err) {
    return `not a valid regular expression: ${(err as Error).message.replace(/^Invalid regular expression: /, '')}`;
  }
  if (nestedRepetition(pattern))
    return 'a repeated group contains a repetition or alternation (like (a+)+): it can take exponential time';
  // Without groups, each unbounded repetition multiplies the work on a value that does not match
  // (`.*.*.*…z` over a 1,024-character label is n^k steps): two keep it quadratic at worst.
  if (unboundedRepetitions(pattern) > MATCHER_UNBOUNDED_MAX)
    return `more than ${MATCHER_UNBOUNDED_MAX} unbounded repetitions (.*, +, {n,}): each multiplies the matching time; use an alternation or fewer wildcards`;
  return null;
}

/** Unbounded repetitions (`*`, `+`, `{n,}`) a matcher regex may hold at most. */
export const MATCHER_UNBOUNDED_MAX = 2;

/** Unbounded quantifiers outside character classes. */
function unboundedRepetitions(p: string): number {
  let n = 0;
  for (const i of structuralPositions(p)) if (unboundedQuantifierAt(p, i)) n++;
  return n;
}

/** Positions of a pattern's characters outside escapes and character classes (what its structure is made of). */
function* structuralPositions(p: string): Generator<number> {
  let inClass = false;
  for (let i = 0; i < p.length; i++) {
    const c = p[i];
    if (c === '\\') {
      i++;
      continue;
    }
    if (inClass) {
      if (c === ']') inClass = false;
      continue;
    }
    if (c === '[') inClass = true;
    else yield i;
  }
}

/** Compiles a matcher regex as matchers run it: anchored at both ends. Call only on validated patterns. */
export function compileMatcherRegex(pattern: string): RegExp {
  return new RegExp(`^(?:${pattern})$`, 'u');
}

/** True when a group holding `+`, `*`, `{n,}` or `|` is itself followed by an unbounded repetition. */
function nestedRepetition(p: string): boolean {
  // Per open group: does its content repeat or alternate?
  const stack: boolean[] = [];
  for (const i of structuralPositions(p)) {
    const c = p[i];
    if (c === '(') stack.push(false);
    else if (c === '|') {
      if (stack.length) stack[stack.length - 1] = true;
    } else if (c === ')') {
      const risky = stack.pop() ?? false;
      // Repeated: unboundedly, or a fixed number of times more than once (`(.*a){12}` is n^12 as well).
      const repeated = unboundedQuantifierAt(p, i + 1) || /^\{(?:[2-9]|\d{2,})/.test(p.slice(i + 1, i + 8));
      if (risky && repeated) return true;
      // A group that repeats or alternates makes its parent risky too.
      if ((risky || repeated) && stack.length) stack[stack.length - 1] = true;
    } else if (unboundedQuantifierAt(p, i) && stack.length) stack[stack.length - 1] = true;
  }
  return false;
}

function unboundedQuantifierAt(p: string, i: number): boolean {
  const c = p[i];
  if (c === '+' || c === '*') return true;
  return c === '{' && /^\{\d+,\}/.test(p.slice(i, i + 12));
}

/** One label matcher: `severity="critical"`, `target=~"check:web-.*"`. */
export const labelMatcherSchema = z
  .strictObject({
    name: alertLabelNameSchema,
    op: matcherOpSchema,
    value: storableText(ALERT_LABEL_VALUE_MAX),
  })
  .superRefine((m, ctx) => {
    if (m.op !== '=~' && m.op !== '!~') return;
    const problem = matcherRegexProblem(m.value);
    if (problem) ctx.addIssue({ code: 'custom', path: ['value'], message: problem });
  });
export type LabelMatcher = z.infer<typeof labelMatcherSchema>;

/** Labels as alerts carry them (names as in Prometheus). */
export const alertLabelsSchema = z
  .record(alertLabelNameSchema, alertLabelValueSchema)
  .refine((l) => Object.keys(l).length <= 32, 'at most 32 labels');
export type AlertLabels = Record<string, string>;
