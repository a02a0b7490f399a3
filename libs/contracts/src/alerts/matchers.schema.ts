import { z } from 'zod';
import { ownKeysRecord, storableText } from '../common/store-safe';

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
 * same matcher exports, RE2 syntax JavaScript has no equivalent for (inline flags other than a leading `(?i)`,
 * `(?s)`, `(?m)` or a combination of them, `(?P<name>…)`, `\A` `\z` `\Q` `\C`, `[[:alpha:]]`), and a cheap test
 * for catastrophic backtracking: a repeated group that itself holds a repetition or an alternation (`(a+)+`,
 * `(a|aa)*`) can take exponential time in JavaScript. The length bound counts the whole pattern, its flags too;
 * the backtracking tests read the pattern without its leading flags (they change no repetition).
 */
export function matcherRegexProblem(pattern: string): string | null {
  if (pattern.length > MATCHER_REGEX_MAX) return `longer than ${MATCHER_REGEX_MAX} characters`;
  const parts = matcherRegexParts(pattern);
  if ('problem' in parts) return parts.problem;
  const body = parts.body;
  const re2Only = re2OnlySyntax(body);
  if (re2Only) return re2Only;
  if (/\\[1-9]|\\k</.test(body)) return 'back-references are not supported (Prometheus uses RE2)';
  if (/\(\?<?[=!]/.test(body)) return 'look-ahead and look-behind are not supported (Prometheus uses RE2)';
  try {
    // On its own first: a stray `)` (`.*)+(x`, `a)|(b`) would close the anchoring group and compile to another regex,
    // neither a full match nor what the backtracking tests below read (`(?:.*)+` is exponential). RE2 refuses it too.
    new RegExp(body, `${parts.flags}u`);
    compileMatcherRegex(pattern);
  } catch (err) {
    return `not a valid regular expression: ${(err as Error).message.replace(/^Invalid regular expression: /, '')}`;
  }
  if (nestedRepetition(body))
    return 'a repeated group contains a repetition or alternation (like (a+)+): it can take exponential time';
  // Without groups, each unbounded repetition multiplies the work on a value that does not match
  // (`.*.*.*…z` over a 1,024-character label is n^k steps): two keep it quadratic at worst. A bounded one with a
  // long range (`.{0,99}`) backtracks the same way, and so do many short ones together (`.{0,9}` twenty times).
  if (unboundedRepetitions(body) > MATCHER_UNBOUNDED_MAX)
    return `more than ${MATCHER_UNBOUNDED_MAX} unbounded repetitions (.*, +, {n,}, or {n,m} over a range past ${MATCHER_LONG_RANGE}): each multiplies the matching time; use an alternation or fewer wildcards`;
  if (boundedChoices(body) > MATCHER_BOUNDED_CHOICES_MAX)
    return `its bounded repetitions ({n,m}, ?) together match in more than ${MATCHER_BOUNDED_CHOICES_MAX} ways: that multiplies the matching time; use fewer`;
  return null;
}

/** Unbounded repetitions (`*`, `+`, `{n,}`) a matcher regex may hold at most. */
export const MATCHER_UNBOUNDED_MAX = 2;
/** A bounded repetition whose range (most − least) is past this counts as unbounded: `.{0,99}` backtracks like `.*`. */
export const MATCHER_LONG_RANGE = 10;
/** Most ways the short bounded repetitions of a pattern may match together (the product of their ranges + 1). */
export const MATCHER_BOUNDED_CHOICES_MAX = 10_000;

/** Unbounded quantifiers (and long-ranged bounded ones) outside character classes. */
function unboundedRepetitions(p: string): number {
  let n = 0;
  for (const i of structuralPositions(p)) if (unboundedQuantifierAt(p, i)) n++;
  return n;
}

/** The product of (range + 1) of the short bounded quantifiers outside character classes. */
function boundedChoices(p: string): number {
  let n = 1;
  for (const i of structuralPositions(p)) {
    const q = quantifierAt(p, i);
    if (q && q[1] !== Infinity && q[1] - q[0] <= MATCHER_LONG_RANGE) n *= q[1] - q[0] + 1;
  }
  return n;
}

/** The quantifier at `i` as [least, most] (most Infinity when unbounded), or null when there is none. */
function quantifierAt(p: string, i: number): [number, number] | null {
  const c = p[i];
  if (c === '*') return [0, Infinity];
  if (c === '+') return [1, Infinity];
  // `(?:` opens a group; `*?`, `+?`, `??`, `{n,m}?` are lazy forms of the quantifier before: neither is one itself.
  if (c === '?') return p[i - 1] === '(' || /[*+?}]/.test(p[i - 1] ?? '') ? null : [0, 1];
  if (c !== '{') return null;
  const m = /^\{(\d+)(?:(,)(\d*))?\}/.exec(p.slice(i, i + 24));
  if (!m) return null;
  const least = Number(m[1]);
  return [least, m[2] === undefined ? least : m[3] === '' ? Infinity : Number(m[3])];
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

/** RE2's inline flags that have a JavaScript flag of the same meaning. */
const RE2_FLAGS: Readonly<Record<string, string>> = {
  i: 'i', // case-insensitive
  s: 's', // `.` matches a newline too
  m: 'm', // `^` and `$` match at line breaks too
};

/**
 * A pattern's leading RE2 inline flags (`(?i)`, `(?s)`, `(?m)`, combinations like `(?is)`, one group or several)
 * as JavaScript flags, and the pattern after them; or why its flags cannot be taken. In Alertmanager a leading
 * flag group sits inside the anchoring group (`^(?:(?i)crit)$`), so it applies to the whole pattern and never to
 * the anchors: a match is a full match whatever the flags.
 */
export function matcherRegexParts(pattern: string): { body: string; flags: string } | { problem: string } {
  const flags = new Set<string>();
  let body = pattern;
  for (let m = /^\(\?([A-Za-z-]+)\)/.exec(body); m; m = /^\(\?([A-Za-z-]+)\)/.exec(body)) {
    for (const f of m[1]) {
      if (f === '-')
        return { problem: `inline flags cannot be cleared (${m[0]}): only (?i), (?s) and (?m) are supported` };
      if (f === 'U')
        return { problem: 'the RE2 flag U (ungreedy) has no JavaScript equivalent: write lazy quantifiers (*?, +?)' };
      if (!Object.hasOwn(RE2_FLAGS, f))
        return { problem: `unknown inline flag ${f} in ${m[0]}: only (?i), (?s) and (?m) are supported` };
      flags.add(RE2_FLAGS[f]);
    }
    body = body.slice(m[0].length);
  }
  return { body, flags: [...flags].sort().join('') };
}

/** RE2 syntax JavaScript reads differently or not at all, with what to write instead; null when there is none. */
function re2OnlySyntax(p: string): string | null {
  for (const i of structuralPositions(p)) {
    if (p[i] !== '(' || p[i + 1] !== '?') continue;
    if (p[i + 2] === 'P') return 'named groups are written (?<name>…), not (?P<name>…)';
    const flags = /^\(\?[A-Za-z-]+[):]/.exec(p.slice(i, i + 24));
    if (flags)
      return `inline flags (${flags[0]}…) are supported only at the start of the pattern, as (?i), (?s), (?m) or a combination like (?is)`;
  }
  const escape = /\\(.)/gsu;
  for (let m = escape.exec(p); m; m = escape.exec(p))
    if ('AzQEC'.includes(m[1]))
      return `\\${m[1]} is RE2-only syntax JavaScript cannot run (a matcher is anchored at both ends already)`;
  if (posixClassInClass(p)) return 'POSIX classes like [[:alpha:]] are not supported: write [a-zA-Z] or \\p{L}';
  return null;
}

/**
 * True when a character class holds a POSIX class (`[[:alpha:]]`, `[x[:^digit:]]`): RE2 reads one only inside a
 * class, and JavaScript reads it as characters that end the class early. A top-level `[:alpha:]` is one class of the
 * characters `:alph` in both engines, and was accepted (and stored) before: it is not refused.
 */
function posixClassInClass(p: string): boolean {
  const posix = /\[:\^?[A-Za-z]+:\]/y;
  let inClass = false;
  for (let i = 0; i < p.length; i++) {
    const c = p[i];
    if (c === '\\') i++;
    else if (!inClass) inClass = c === '[';
    else if (c === ']') inClass = false;
    else if (c === '[') {
      posix.lastIndex = i;
      if (posix.test(p)) return true;
    }
  }
  return false;
}

/**
 * Compiles a matcher regex as matchers run it: anchored at both ends (a full match, as in Alertmanager), a leading
 * `(?i)` / `(?s)` / `(?m)` as JavaScript flags. With `m` the anchors are look-arounds at the ends of the text, since
 * JavaScript's `^` and `$` would then match at every line. Call only on validated patterns.
 */
export function compileMatcherRegex(pattern: string): RegExp {
  const parts = matcherRegexParts(pattern);
  const { body, flags } = 'problem' in parts ? { body: pattern, flags: '' } : parts;
  return flags.includes('m')
    ? new RegExp(`(?<![\\s\\S])(?:${body})(?![\\s\\S])`, `${flags}u`)
    : new RegExp(`^(?:${body})$`, `${flags}u`);
}

/** True when a group holding `+`, `*`, `{n,}` or `|` is itself followed by an unbounded repetition. */
function nestedRepetition(p: string): boolean {
  // Per open group: does its content repeat (unboundedly or over a long range) or alternate, and in how many ways
  // can its short bounded repetitions match?
  const stack: Array<{ risky: boolean; ways: number }> = [];
  const top = () => stack[stack.length - 1] as { risky: boolean; ways: number } | undefined;
  for (const i of structuralPositions(p)) {
    const c = p[i];
    const q = quantifierAt(p, i);
    if (c === '(') stack.push({ risky: false, ways: 1 });
    else if (c === '|') {
      const g = top();
      if (g) g.risky = true;
    } else if (c === ')') {
      const { risky, ways } = stack.pop() ?? { risky: false, ways: 1 };
      // Repeated: up to more than once — unboundedly, a fixed number of times (`(.*a){12}` is n^12 as well) or a
      // bounded range (`(a|aa){0,60}` too).
      const most = quantifierAt(p, i + 1)?.[1] ?? 1;
      const repeated = most >= 2;
      if (risky && repeated) return true;
      // Short choices repeated many times: `(a?){30}` matches "a"×30 in 2^30 ways.
      if (repeated && ways > 1 && ways ** most > MATCHER_BOUNDED_CHOICES_MAX) return true;
      // A group that repeats or alternates makes its parent risky too.
      const parent = top();
      if (parent && (risky || repeated)) parent.risky = true;
    } else if (q) {
      const g = top();
      if (g && q[1] - q[0] > MATCHER_LONG_RANGE) g.risky = true;
      else if (g) g.ways *= q[1] - q[0] + 1;
    }
  }
  return false;
}

function unboundedQuantifierAt(p: string, i: number): boolean {
  const q = quantifierAt(p, i);
  return q !== null && q[1] - q[0] > MATCHER_LONG_RANGE;
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
export const alertLabelsSchema = ownKeysRecord(alertLabelNameSchema, alertLabelValueSchema).refine(
  (l) => Object.keys(l).length <= 32,
  'at most 32 labels',
);
export type AlertLabels = Record<string, string>;
