import { announcementsAt, type PublicStatusPage, type StatusPageDefinition } from '@fleetwatch/contracts';
import { fromLocalInput, toLocalInput } from '../../local-time';

export { toLocalInput };

// The status page editor's form: text fields as people type them (tags and target ids as
// comma-separated text), turned into the API's body on save; the API's issue paths
// (`components.1.name`) map back onto the fields. Pure, so it is table-tested.

export interface ComponentDraft {
  name: string;
  description: string;
  tags: string;
  targetIds: string;
}

export interface AnnouncementDraft {
  title: string;
  body: string;
  severity: 'info' | 'maintenance' | 'minor' | 'major';
  /** `YYYY-MM-DDTHH:mm` in the viewer's zone (datetime-local), as typed. */
  startsAt: string;
  endsAt: string;
  /**
   * The stored times (ISO), kept while their field shows them unchanged: the field has minute precision, so saving
   * an untouched page cut their seconds (and wrote a new version for nothing).
   */
  stored?: { startsAt: string; endsAt: string | null };
}

export interface StatusPageDraft {
  slug: string;
  title: string;
  description: string;
  published: boolean;
  components: ComponentDraft[];
  announcements: AnnouncementDraft[];
}

export type FieldErrors = Record<string, string>;

export const NEW_COMPONENT: ComponentDraft = { name: '', description: '', tags: '', targetIds: '' };
export const NEW_DRAFT: StatusPageDraft = {
  slug: '',
  title: '',
  description: '',
  published: false,
  components: [NEW_COMPONENT],
  announcements: [],
};

const list = (text: string) =>
  text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);

export function draftFromPage(p: StatusPageDefinition): StatusPageDraft {
  return {
    slug: p.slug,
    title: p.title,
    description: p.description,
    published: p.published,
    components: p.components.map((c) => ({
      name: c.name,
      description: c.description,
      tags: c.tags.join(', '),
      targetIds: c.targetIds.join(', '),
    })),
    announcements: p.announcements.map((a) => ({
      title: a.title,
      body: a.body,
      severity: a.severity,
      startsAt: toLocalInput(a.startsAt),
      endsAt: a.endsAt ? toLocalInput(a.endsAt) : '',
      stored: { startsAt: a.startsAt, endsAt: a.endsAt ?? null },
    })),
  };
}

export function draftToBody(d: StatusPageDraft): Record<string, unknown> {
  return {
    slug: d.slug.trim(),
    title: d.title.trim(),
    description: d.description,
    published: d.published,
    components: d.components.map((c) => ({
      name: c.name.trim(),
      description: c.description,
      tags: list(c.tags),
      targetIds: list(c.targetIds),
    })),
    announcements: d.announcements.map((a) => ({
      title: a.title.trim(),
      body: a.body,
      severity: a.severity,
      startsAt: fromLocalInput(a.startsAt, a.stored?.startsAt),
      ...(a.endsAt ? { endsAt: fromLocalInput(a.endsAt, a.stored?.endsAt) } : {}),
    })),
  };
}

/** A slug from a title: what the slug field offers while it is empty. */
export function slugOf(title: string): string {
  return title
    .normalize('NFKD')
    .replace(/\p{M}+/gu, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 64)
    .replace(/-+$/, '');
}

/** The fields the editor shows a message under (`N`: a component's or an announcement's place). */
const SHOWN =
  /^(?:slug|title|description|components|components\.\d+\.(?:name|description|tags|targetIds)|announcements\.\d+\.(?:title|body|startsAt|endsAt))$/;
const LIST_ITEM = /^(components\.\d+\.(tags|targetIds))\.(\d+)$/;
const ITEM_NOUN: Record<string, string> = { tags: 'tag', targetIds: 'target id' };

/**
 * The API's issues by the field that shows them (the first message of each). One about an item of a comma-separated
 * list (`components.0.tags.2`) goes to the list's field, naming the item ("tag 3: …"); one no field shows goes to the
 * form, with its path. Before, such issues were kept under keys no field read: Save did nothing visible.
 */
export function errorsFromIssues(issues: readonly { path: string; message: string }[]): FieldErrors {
  const out: FieldErrors = {};
  for (const i of issues) {
    const item = LIST_ITEM.exec(i.path);
    const [key, message] = item
      ? [item[1], `${ITEM_NOUN[item[2]]} ${Number(item[3]) + 1}: ${i.message}`]
      : SHOWN.test(i.path)
        ? [i.path, i.message]
        : ['form', i.path && i.path !== '(body)' ? `${i.path}: ${i.message}` : i.message];
    out[key] ??= message;
  }
  return out;
}

/** What the preview shows: the draft's texts with no data yet (the public page fills the bars in). */
export function previewOf(d: StatusPageDraft, days = 90, now = Date.now()): PublicStatusPage {
  const dayMs = 86_400_000;
  const first = Math.floor(now / dayMs) * dayMs - (days - 1) * dayMs;
  return {
    slug: d.slug,
    title: d.title || 'Untitled status page',
    description: d.description,
    state: 'unknown',
    components: d.components.map((c) => ({
      name: c.name || 'Unnamed component',
      description: c.description,
      state: 'unknown',
      uptime: null,
      days: Array.from({ length: days }, (_, i) => ({
        date: new Date(first + i * dayMs).toISOString().slice(0, 10),
        uptime: null,
        state: 'unknown' as const,
      })),
    })),
    incidents: [],
    announcements: announcementsAt(
      d.announcements.map((a) => ({
        title: a.title,
        body: a.body,
        severity: a.severity,
        startsAt: fromLocalInput(a.startsAt) || new Date(now).toISOString(),
        endsAt: a.endsAt ? fromLocalInput(a.endsAt) : null,
      })),
      now,
    ),
    days,
    generatedAt: new Date(now).toISOString(),
  };
}
