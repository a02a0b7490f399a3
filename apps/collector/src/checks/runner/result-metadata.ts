import { FORBIDDEN_KEYS } from '@fleetwatch/contracts';
import type { ProbeFacts } from '../probe';

// What of a probe's facts travels with the result (metadata, SPEC §1): small, bounded
// and never a secret. Status code, certificate days left, DNS answers, and the type's
// numbers (queue depth, consumers, CPU, memory…) — numbers and booleans only, because
// result strings can carry what a target or a query returned. Headers and bodies stay
// in the collector: they serve conditions, and they are where secrets would be.

const MAX_RESULT_KEYS = 16;
const MAX_ANSWERS = 8;
const KEY = /^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/;

export function resultMetadata(facts: ProbeFacts, conditionFailed?: number): Record<string, unknown> | undefined {
  const m: Record<string, unknown> = {};
  if (typeof facts.status === 'number' && Number.isFinite(facts.status)) m.status = facts.status;
  if (facts.cert && Number.isFinite(facts.cert.daysLeft)) {
    m.certDaysLeft = facts.cert.daysLeft;
    m.certValidTo = storable(facts.cert.validTo, 64);
  }
  if (Array.isArray(facts.answers))
    m.answers = facts.answers.slice(0, MAX_ANSWERS).map((a) => storable(String(a), 256));
  if (facts.result) {
    const numbers: Record<string, number | boolean> = {};
    let n = 0;
    for (const [k, v] of Object.entries(facts.result)) {
      if (n >= MAX_RESULT_KEYS) break;
      // `constructor` and `prototype` fit KEY, but the metadata contract refuses them (and the result with them).
      if (!KEY.test(k) || FORBIDDEN_KEYS.has(k)) continue;
      if ((typeof v === 'number' && Number.isFinite(v)) || typeof v === 'boolean') {
        numbers[k] = v;
        n++;
      }
    }
    if (n > 0) m.result = numbers;
  }
  if (conditionFailed !== undefined) m.conditionFailed = conditionFailed;
  return Object.keys(m).length > 0 ? m : undefined;
}

/** `text` as the stores downstream hold it: no NUL, no lone surrogate, at most `max` characters. */
export function storable(text: string, max: number): string {
  let s = text.includes('\u0000') ? text.replaceAll('\u0000', '') : text;
  if (s.length > max) s = `${s.slice(0, max - 1)}…`;
  return s.isWellFormed() ? s : s.toWellFormed();
}
