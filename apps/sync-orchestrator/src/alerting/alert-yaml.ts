import { alertRuleIdSchema } from '@fleetwatch/contracts';
import type { ErrorIssue } from '@fleetwatch/domain';
import { isMap, isScalar, type Document, type Pair } from 'yaml';
import { ALERT_AREAS, parseChannel, parseRule, parseWindow, type AlertArea, type Parsed } from './alert-forms';

// The alert sections of a config-as-code document (issue 18), beside `checks:`:
//
//   alertRules:          # by id: a slug (`default.target-down`, `team.api-slow`) or the owner's UUID
//     default.target-down: {name: Target down, condition: {...}, for: 1m, ...}
//   channels:            # public fields only: secrets are never exported; absent in a file = keep stored
//     ops-webhook: {type: webhook, name: Ops, url: https://…}
//   maintenanceWindows:
//     nightly-db: {name: …, scope: {...}, schedule: {type: recurring, cron: …}, createdBy: …}
//
// Silences are operational state and never part of the document. A section a document leaves out
// leaves that area as it is (a file written before alert configuration existed changes no rule); a
// section that is there is the truth for its area (with `prune`, entries it does not list go). An
// export writes every section, empty ones as `{}`. A window's `createdBy` is exported but never read
// back: the importer's on create, the stored one after (alert-import.ts).

export type AlertSections = Partial<Record<AlertArea, { id: string; input: unknown }[]>>;

export type LocatedPair = Pair<unknown, unknown>;

/** A window's fields without `createdBy`. */
function withoutAuthor(fields: Record<string, unknown>): Record<string, unknown> {
  const out = { ...fields };
  delete out['createdBy'];
  return out;
}

/** Parses one alert section's entries: ids checked, each entry validated by its contract (issues pathed `<area>.<id>.<field>`). */
export function parseAlertSection(
  doc: Document,
  area: AlertArea,
  section: unknown,
  at: (offset: number | undefined) => string,
  issues: ErrorIssue[],
): { id: string; input: unknown }[] {
  const out: { id: string; input: unknown }[] = [];
  if (section === undefined || (isScalar(section) && section.value === null)) return out;
  if (!isMap(section)) {
    const offset = (section as { range?: [number, number, number] } | null)?.range?.[0];
    issues.push({ path: area, message: `${at(offset)}must be a mapping of ids to entries` });
    return out;
  }
  for (const pair of section.items as LocatedPair[]) {
    const keyNode = isScalar(pair.key) ? pair.key : null;
    const where = at(keyNode?.range?.[0]);
    const id = keyNode?.value;
    if (typeof id !== 'string' || !alertRuleIdSchema.safeParse(id).success) {
      issues.push({
        path: `${area}.${String(id)}`,
        message: `${where}an entry's key is its id: letters, digits and . _ : - (quote it)`,
      });
      continue;
    }
    let value: unknown;
    try {
      value = pair.value ? (pair.value as { toJS(d: unknown): unknown }).toJS(doc) : null;
    } catch (e) {
      issues.push({ path: `${area}.${id}`, message: `${where}${(e as Error).message.split('\n')[0]}` });
      continue;
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      issues.push({ path: `${area}.${id}`, message: `${where}an entry is a mapping of its fields` });
      continue;
    }
    // A window's `createdBy` in a file is ignored (set from who imports, or kept as stored: alert-import.ts).
    const input = area === 'maintenanceWindows' ? withoutAuthor(value as Record<string, unknown>) : value;
    const parsed: Parsed<unknown> =
      area === 'alertRules'
        ? parseRule(input, [area, id])
        : area === 'channels'
          ? parseChannel(input, [area, id])
          : parseWindow({ ...(input as Record<string, unknown>), createdBy: 'import' }, [area, id]);
    if (!parsed.ok) {
      for (const i of parsed.issues) issues.push({ path: i.path, message: `${where}${i.message}` });
      continue;
    }
    out.push({ id, input });
  }
  return out;
}

/** The alert sections of a parsed document; `issues` collects what is wrong. */
export function parseAlertSections(
  doc: Document,
  at: (offset: number | undefined) => string,
  issues: ErrorIssue[],
): AlertSections {
  const sections: AlertSections = {};
  for (const area of ALERT_AREAS) {
    const section = doc.get(area, true);
    if (section === undefined) continue;
    sections[area] = parseAlertSection(doc, area, section, at, issues);
  }
  return sections;
}

/**
 * The alert sections to render: every area, an empty one as `{}` (entries by id, a Map: ids may be anything). An
 * export writes each section it owns, so that importing it with `prune` deletes what was added since (a section left
 * out of a file would leave its area as it is).
 */
export function alertSectionsToRender(
  snapshot: Partial<Record<AlertArea, Record<string, Record<string, unknown>>>>,
): Record<string, Map<string, Record<string, unknown>>> {
  const out: Record<string, Map<string, Record<string, unknown>>> = {};
  for (const area of ALERT_AREAS) {
    const entries = snapshot[area] ?? {};
    out[area] = new Map(
      Object.keys(entries)
        .sort()
        .map((id) => [id, entries[id]]),
    );
  }
  return out;
}
