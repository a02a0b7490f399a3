import { compileMatcherRegex, type LabelMatcher, type Silence, type SilenceSpec } from '@fleetwatch/contracts';

// Silences (Alertmanager semantics): a silence mutes an alert while startsAt ≤ now < endsAt and every
// matcher matches the alert's labels. A label the alert does not have reads as the empty string, so
// `team!="db"` matches an alert without a team and `team=""` matches only those.

export type LabelPredicate = (labels: Readonly<Record<string, string>>) => boolean;

/** Prepares one matcher (regexes compiled once, anchored). */
export function compileMatcher(m: LabelMatcher): LabelPredicate {
  const read = (l: Readonly<Record<string, string>>) => (Object.hasOwn(l, m.name) ? l[m.name] : '');
  switch (m.op) {
    case '=':
      return (l) => read(l) === m.value;
    case '!=':
      return (l) => read(l) !== m.value;
    case '=~': {
      const re = compileMatcherRegex(m.value);
      return (l) => re.test(read(l));
    }
    case '!~': {
      const re = compileMatcherRegex(m.value);
      return (l) => !re.test(read(l));
    }
  }
}

export function matchersMatch(matchers: readonly LabelMatcher[], labels: Readonly<Record<string, string>>): boolean {
  return matchers.every((m) => compileMatcher(m)(labels));
}

export interface CompiledSilence {
  silence: Silence;
  startsAt: number;
  endsAt: number;
  matches: LabelPredicate;
}

export function compileSilence(silence: Silence): CompiledSilence {
  const preds = silence.matchers.map(compileMatcher);
  return {
    silence,
    startsAt: Date.parse(silence.startsAt),
    endsAt: Date.parse(silence.endsAt),
    matches: (l) => preds.every((p) => p(l)),
  };
}

export function silenceActive(s: CompiledSilence, now: number): boolean {
  return s.startsAt <= now && now < s.endsAt;
}

/** The silences muting an alert with these labels now (empty: not silenced). */
export function silencesFor(
  silences: readonly CompiledSilence[],
  labels: Readonly<Record<string, string>>,
  now: number,
): CompiledSilence[] {
  return silences.filter((s) => silenceActive(s, now) && s.matches(labels));
}

export function isSilenced(
  silences: readonly CompiledSilence[],
  labels: Readonly<Record<string, string>>,
  now: number,
): boolean {
  return silences.some((s) => silenceActive(s, now) && s.matches(labels));
}

/** Labels that identify one alert: a silence made from an alert matches that alert (and its repeats) only. */
const IDENTIFYING = ['alertname', 'rule_id', 'target'];

/**
 * A silence made from an alert ("silence this"): equality matchers on the alert's identifying labels
 * plus its series labels (mount, device …), so it mutes this alert and nothing else.
 */
export function silenceFromAlert(
  labels: Readonly<Record<string, string>>,
  opts: { startsAt: string; endsAt: string; createdBy: string; comment: string; ruleLabels?: readonly string[] },
): SilenceSpec {
  const skip = new Set(['severity', ...(opts.ruleLabels ?? [])]);
  const names = Object.keys(labels)
    .filter((n) => IDENTIFYING.includes(n) || !skip.has(n))
    .sort();
  return {
    matchers: names.map((name) => ({ name, op: '=' as const, value: labels[name] })),
    startsAt: opts.startsAt,
    endsAt: opts.endsAt,
    createdBy: opts.createdBy,
    comment: opts.comment,
  };
}
