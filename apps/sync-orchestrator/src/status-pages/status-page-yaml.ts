import { randomUUID } from 'node:crypto';
import {
  statusPageSlugSchema,
  statusPageSpecSchema,
  type ConfigDiffEntry,
  type ConfigPlanItem,
  type StatusPageSpec,
} from '@fleetwatch/contracts';
import type { ErrorIssue } from '@fleetwatch/domain';
import type { AuditDraft, SqlTransaction, StatusPageRecord, StatusPagesRepository } from '@fleetwatch/persistence';
import { isMap, isScalar, type Document, type Pair } from 'yaml';
import { jsonDiff } from '../config/canonical-json';

// Status pages in config as code (issue 17), a section beside `checks:` keyed by slug:
//
//   statusPages:
//     acme: {title: Acme status, published: true, components: [{name: Web, tags: [web]}]}
//
// Like the alert sections: a document without the section leaves the pages as they are; a section
// that is there is the truth for them (with `prune`, pages it does not list go). Plan items are named
// `statusPages/<slug>`. Export → import changes nothing.

export const STATUS_PAGES_SECTION = 'statusPages';

/** Entries by slug, each the page's config form without its slug. */
export type StatusPageSection = Map<string, StatusPageSpec>;

/** The section to render: slug → form without `slug`, by slug. */
export function statusPagesToRender(pages: readonly StatusPageRecord<StatusPageSpec>[]): Map<string, unknown> {
  const sorted = [...pages].sort((a, b) => (a.slug < b.slug ? -1 : a.slug > b.slug ? 1 : 0));
  return new Map(
    sorted.map((p) => {
      const { slug: _slug, ...form } = p.spec;
      return [p.slug, form];
    }),
  );
}

/** The document's `statusPages:` section (undefined when absent); issues pathed `statusPages.<slug>.<field>`. */
export function parseStatusPagesSection(
  doc: Document,
  at: (offset: number | undefined) => string,
  issues: ErrorIssue[],
): StatusPageSection | undefined {
  if (!doc.has(STATUS_PAGES_SECTION)) return undefined;
  const section = doc.get(STATUS_PAGES_SECTION, true);
  const out: StatusPageSection = new Map();
  if (section === undefined || section === null || (isScalar(section) && section.value === null)) return out;
  if (!isMap(section)) {
    const offset = (section as { range?: [number, number, number] } | null)?.range?.[0];
    issues.push({ path: STATUS_PAGES_SECTION, message: `${at(offset)}must be a mapping of slugs to pages` });
    return out;
  }
  for (const pair of section.items as Pair<unknown, unknown>[]) {
    const keyNode = isScalar(pair.key) ? pair.key : null;
    const where = at(keyNode?.range?.[0]);
    const slug = keyNode?.value;
    const path = `${STATUS_PAGES_SECTION}.${String(slug)}`;
    if (typeof slug !== 'string' || !statusPageSlugSchema.safeParse(slug).success) {
      issues.push({ path, message: `${where}a page's key is its slug (lowercase letters, digits, dashes)` });
      continue;
    }
    let value: unknown;
    try {
      value = pair.value ? (pair.value as { toJS(d: unknown): unknown }).toJS(doc) : null;
    } catch (e) {
      issues.push({ path, message: `${where}${(e as Error).message.split('\n')[0]}` });
      continue;
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      issues.push({ path, message: `${where}a status page is a mapping of its fields` });
      continue;
    }
    const fields = value as Record<string, unknown>;
    if ('slug' in fields && fields['slug'] !== slug) {
      issues.push({ path: `${path}.slug`, message: `${where}the slug is the key: leave \`slug\` out` });
      continue;
    }
    const r = statusPageSpecSchema.safeParse({ ...fields, slug });
    if (!r.success) {
      for (const i of r.error.issues)
        issues.push({ path: [path, ...i.path.map(String)].join('.'), message: `${where}${i.message}` });
      continue;
    }
    out.set(slug, r.data);
  }
  return out;
}

export interface StatusPagePlan {
  items: ConfigPlanItem[];
  creates: StatusPageSpec[];
  changes: { before: StatusPageRecord<StatusPageSpec>; spec: StatusPageSpec; diff: ConfigDiffEntry[] }[];
  deletes: StatusPageRecord<StatusPageSpec>[];
}

const diffOf = (before: object | null, after: object | null) =>
  jsonDiff((before ?? {}) as Record<string, unknown>, (after ?? {}) as Record<string, unknown>);

/** The section against what is stored (by slug). No section: nothing planned. */
export function planStatusPages(
  stored: readonly StatusPageRecord<StatusPageSpec>[],
  section: StatusPageSection | undefined,
  prune: boolean,
): StatusPagePlan {
  const plan: StatusPagePlan = { items: [], creates: [], changes: [], deletes: [] };
  if (!section) return plan;
  const bySlug = new Map(stored.map((p) => [p.slug, p]));
  const name = (slug: string) => `${STATUS_PAGES_SECTION}/${slug}`;
  for (const [slug, spec] of [...section].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const before = bySlug.get(slug);
    if (!before) {
      plan.creates.push(spec);
      plan.items.push({ action: 'create', name: name(slug), id: null });
      continue;
    }
    const diff = diffOf(before.spec, spec);
    if (diff.length === 0) plan.items.push({ action: 'unchanged', name: name(slug), id: before.id });
    else {
      plan.changes.push({ before, spec, diff });
      plan.items.push({ action: 'change', name: name(slug), id: before.id, diff });
    }
  }
  if (prune)
    for (const p of stored)
      if (!section.has(p.slug)) {
        plan.deletes.push(p);
        plan.items.push({ action: 'delete', name: name(p.slug), id: p.id });
      }
  return plan;
}

export const statusPagePlanSize = (p: StatusPagePlan) => p.creates.length + p.changes.length + p.deletes.length;

/** Writes the plan in the import's transaction as version `next`; answers its audit entries and the plan with new ids. */
export async function applyStatusPages(
  repo: StatusPagesRepository,
  tx: SqlTransaction,
  plan: StatusPagePlan,
  next: number,
): Promise<{ audit: AuditDraft[]; items: ConfigPlanItem[] }> {
  const via = { via: 'import' };
  const audit: AuditDraft[] = [];
  for (const p of plan.deletes) {
    await repo.delete(tx, p.id);
    audit.push({ action: 'status-page.delete', subject: p.id, diff: diffOf(p.spec, null), details: via });
  }
  for (const c of plan.changes) {
    await repo.update(tx, { id: c.before.id, slug: c.spec.slug, spec: c.spec }, next);
    audit.push({ action: 'status-page.replace', subject: c.before.id, diff: c.diff, details: via });
  }
  const idOf = new Map<string, string>();
  for (const spec of plan.creates) {
    const id = randomUUID();
    await repo.insert(tx, { id, slug: spec.slug, spec }, next);
    idOf.set(`${STATUS_PAGES_SECTION}/${spec.slug}`, id);
    audit.push({ action: 'status-page.create', subject: id, diff: diffOf(null, spec), details: via });
  }
  return {
    audit,
    items: plan.items.map((i) => (i.action === 'create' ? { ...i, id: idOf.get(i.name) ?? null } : i)),
  };
}

/** Every stored page (a site has a handful: pages of 1000); `tx` inside a configuration write. */
export async function allStatusPages(
  repo: StatusPagesRepository,
  tx?: SqlTransaction,
): Promise<StatusPageRecord<StatusPageSpec>[]> {
  const out: StatusPageRecord<StatusPageSpec>[] = [];
  for (let afterId: string | undefined; ;) {
    const page = await repo.list<StatusPageSpec>({ afterId, limit: 1000 }, tx);
    out.push(...page);
    if (page.length < 1000) return out;
    afterId = page[page.length - 1].id;
  }
}
