import { maintenanceWindowSpecSchema, type MaintenanceWindowDefinition } from '@fleetwatch/contracts';
import { errorsFrom, fromLocalInput, joinList, splitList, toLocalInput, zodIssues, type Errors } from '../form-model';

// A maintenance window: what it covers (targets, tags, sites) and when (once, or a recurring cron
// schedule in a time zone with a duration). The owner records the caller as `createdBy`.

export interface WindowDraft {
  name: string;
  targetIds: string;
  tags: string;
  sites: string;
  scheduleType: 'once' | 'recurring';
  startsAt: string;
  endsAt: string;
  cron: string;
  duration: string;
  timezone: string;
  from: string;
  until: string;
  comment: string;
  /** The times as stored (a window being edited): given back whole while their fields still show them. */
  stored?: Partial<Record<'startsAt' | 'endsAt' | 'from' | 'until', string>>;
}

export type WindowField = Exclude<keyof WindowDraft, 'stored'> | 'scope';
export type WindowErrors = Errors<WindowField>;

const browserZone = () => {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
  } catch {
    return 'UTC';
  }
};

export function newWindow(now = Date.now()): WindowDraft {
  return {
    name: '',
    targetIds: '',
    tags: '',
    sites: '',
    scheduleType: 'once',
    startsAt: toLocalInput(now),
    endsAt: toLocalInput(now + 3_600_000),
    cron: '0 2 * * 0',
    duration: '2h',
    timezone: browserZone(),
    from: '',
    until: '',
    comment: '',
  };
}

export function draftFromWindow(w: MaintenanceWindowDefinition): WindowDraft {
  const base = newWindow();
  const s = w.schedule;
  return {
    ...base,
    name: w.name,
    targetIds: joinList(w.scope.targetIds),
    tags: joinList(w.scope.tags),
    sites: joinList(w.scope.sites),
    scheduleType: s.type,
    ...(s.type === 'once'
      ? {
          startsAt: toLocalInput(s.startsAt),
          endsAt: toLocalInput(s.endsAt),
          stored: { startsAt: s.startsAt, endsAt: s.endsAt },
        }
      : {
          cron: s.cron,
          duration: s.duration,
          timezone: s.timezone,
          from: toLocalInput(s.from),
          until: toLocalInput(s.until),
          stored: { ...(s.from ? { from: s.from } : {}), ...(s.until ? { until: s.until } : {}) },
        }),
    comment: w.comment ?? '',
  };
}

export function draftToInput(d: WindowDraft): Record<string, unknown> {
  const schedule: Record<string, unknown> =
    d.scheduleType === 'once'
      ? {
          type: 'once',
          startsAt: fromLocalInput(d.startsAt, d.stored?.startsAt),
          endsAt: fromLocalInput(d.endsAt, d.stored?.endsAt),
        }
      : { type: 'recurring', cron: d.cron.trim(), duration: d.duration.trim(), timezone: d.timezone.trim() };
  if (d.scheduleType === 'recurring') {
    if (d.from) schedule['from'] = fromLocalInput(d.from, d.stored?.from);
    if (d.until) schedule['until'] = fromLocalInput(d.until, d.stored?.until);
  }
  const body: Record<string, unknown> = {
    name: d.name,
    scope: { targetIds: splitList(d.targetIds), tags: splitList(d.tags), sites: splitList(d.sites) },
    schedule,
  };
  if (d.comment.trim()) body['comment'] = d.comment.trim();
  return body;
}

const SCHEDULE_FIELDS = new Set(['startsAt', 'endsAt', 'cron', 'duration', 'timezone', 'from', 'until']);

export function errorsFromIssues(issues: readonly { path: string; message: string }[]): WindowErrors {
  return errorsFrom<WindowField>(issues, ([head, second, third]) => {
    if (head === 'scope') {
      if (second === 'targetIds' || second === 'tags' || second === 'sites')
        return { field: second, prefix: third === undefined ? undefined : `entry ${Number(third) + 1}` };
      return { field: 'scope' };
    }
    if (head === 'schedule') {
      if (second && SCHEDULE_FIELDS.has(second)) return { field: second as WindowField };
      return { field: 'scheduleType' };
    }
    if (head === 'name' || head === 'comment') return { field: head };
    return { field: 'form' };
  });
}

/** The contract's verdict (with the author the owner will set). */
export function validateWindow(d: WindowDraft, author: string): WindowErrors {
  const r = maintenanceWindowSpecSchema.safeParse({ ...draftToInput(d), createdBy: author || 'you' });
  return r.success ? {} : errorsFromIssues(zodIssues(r.error.issues));
}

/** "once: 2 Dec 14:00 – 16:00", "every `0 2 * * 0` (Europe/Berlin) for 2h". */
export function describeSchedule(w: MaintenanceWindowDefinition, format: (iso: string) => string): string {
  const s = w.schedule;
  if (s.type === 'once') return `once: ${format(s.startsAt)} – ${format(s.endsAt)}`;
  const bounds = [s.from ? `from ${format(s.from)}` : '', s.until ? `until ${format(s.until)}` : '']
    .filter(Boolean)
    .join(' ');
  return `cron ${s.cron} (${s.timezone}) for ${s.duration}${bounds ? `, ${bounds}` : ''}`;
}
