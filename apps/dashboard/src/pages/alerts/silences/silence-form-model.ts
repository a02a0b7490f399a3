import { MATCHER_OPS, silenceSpecSchema, type MatcherOp } from '@fleetwatch/contracts';
import { errorsFrom, fromLocalInput, toLocalInput, zodIssues, type Errors } from '../form-model';

// A new silence: matchers over alert labels, a time range and a comment; the author is the
// signed-in user (the gateway sets `createdBy` to the caller whatever is sent). Prefilled from
// an alert through the URL: `/alerts/silences/new?matcher=alertname%3DAPI%20down&matcher=…`.

export interface MatcherDraft {
  name: string;
  op: MatcherOp;
  value: string;
}

export interface SilenceDraft {
  matchers: MatcherDraft[];
  startsAt: string;
  endsAt: string;
  comment: string;
}

export type SilenceField = 'matchers' | 'startsAt' | 'endsAt' | 'comment' | `matcher.${number}`;
export type SilenceErrors = Errors<SilenceField>;

export const DEFAULT_HOURS = 2;

export function newSilence(now = Date.now(), matchers: MatcherDraft[] = []): SilenceDraft {
  return {
    matchers: matchers.length ? matchers : [{ name: '', op: '=', value: '' }],
    startsAt: toLocalInput(now),
    endsAt: toLocalInput(now + DEFAULT_HOURS * 3_600_000),
    comment: '',
  };
}

/** `name=value`, `name!=value`, `name=~re`, `name!~re` (the URL's `matcher` parameters). */
export function parseMatcher(text: string): MatcherDraft | null {
  const m = /^([^=!~]+?)(=~|!~|!=|=)(.*)$/su.exec(text);
  if (!m) return null;
  return { name: m[1].trim(), op: m[2] as MatcherOp, value: m[3] };
}

export const formatMatcher = (m: MatcherDraft) => `${m.name}${m.op}${m.value}`;

const escapeRegex = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * The link that opens a new silence for these labels (every label matched exactly). A value that
 * starts with `~` would read back as `=~`: it goes as the equivalent anchored regex of itself.
 */
export function silenceLinkFor(labels: Readonly<Record<string, string>>): string {
  const q = new URLSearchParams();
  for (const [name, value] of Object.entries(labels))
    q.append(
      'matcher',
      formatMatcher(value.startsWith('~') ? { name, op: '=~', value: escapeRegex(value) } : { name, op: '=', value }),
    );
  return `/alerts/silences/new?${q}`;
}

export function draftToInput(d: SilenceDraft): Record<string, unknown> {
  return {
    matchers: d.matchers.filter((m) => m.name.trim() || m.value).map((m) => ({ ...m, name: m.name.trim() })),
    startsAt: fromLocalInput(d.startsAt),
    endsAt: fromLocalInput(d.endsAt),
    comment: d.comment,
  };
}

export function errorsFromIssues(issues: readonly { path: string; message: string }[]): SilenceErrors {
  return errorsFrom<SilenceField>(issues, ([head, index]) => {
    if (head === 'matchers' && index !== undefined && /^\d+$/.test(index)) return { field: `matcher.${Number(index)}` };
    if (head === 'matchers' || head === 'startsAt' || head === 'endsAt' || head === 'comment') return { field: head };
    return { field: 'form' };
  });
}

/** The contract's verdict (with the author the gateway will set). */
export function validateSilence(d: SilenceDraft, author: string): SilenceErrors {
  const r = silenceSpecSchema.safeParse({ ...draftToInput(d), createdBy: author });
  return r.success ? {} : errorsFromIssues(zodIssues(r.error.issues));
}

export const OPS = MATCHER_OPS;
