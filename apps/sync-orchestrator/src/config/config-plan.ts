import type { CheckDefinition, CheckSpec, ConfigDiffEntry, ConfigPlanItem } from '@fleetwatch/contracts';
import { InvalidError, type ErrorIssue } from '@fleetwatch/domain';
import { jsonDiff } from './canonical-json';
import { auditFormOf, configFormOf, specOf } from './check-form';
import { secretHeaderDiff, withSecretEntries } from './check-secrets';
import type { ConfigSnapshot } from './config-yaml';

// Pure parts of a configuration write: the snapshot a version hashes, and the plan of
// an import (which checks a file creates, changes, deletes or leaves as they are).

/** The whole configuration as a version stores it: checks by name in config form. */
export function snapshotOf(specs: Iterable<CheckSpec>): ConfigSnapshot {
  const checks: Record<string, Record<string, unknown>> = {};
  // defineProperty: a check may be called `__proto__`.
  for (const s of specs)
    Object.defineProperty(checks, s.name, {
      value: configFormOf(s),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  return { checks };
}

/**
 * A change of one check, as the audit log records it: its config forms compared, and a credential header's
 * change said in words, never its value (check-secrets.ts). `given`: credential headers a dry run was given values
 * for, planned as changed whatever the value.
 */
export function checkDiff(
  before: CheckSpec | null,
  after: CheckSpec | null,
  given?: ReadonlySet<string>,
): ConfigDiffEntry[] {
  const diff = jsonDiff(before ? auditFormOf(before) : {}, after ? auditFormOf(after) : {});
  const secret = secretHeaderDiff(before, after, given);
  // Without a credential header that changed, the forms' diff holds none (equal `{set: true}` give no entry).
  return secret.length ? withSecretEntries(diff, secret) : diff;
}

export interface ImportPlan {
  items: ConfigPlanItem[];
  creates: CheckSpec[];
  changes: { existing: CheckDefinition; spec: CheckSpec; diff: ConfigDiffEntry[] }[];
  deletes: CheckDefinition[];
}

/**
 * Matches a file's checks to the site's by name. A check never changes type (its results would mix): as
 * `PUT`/`PATCH /api/v1/checks/{id}` do, a file that gives a stored check another type is refused, every such check
 * named (`checks.<name>.type`). It was deleted and created again under a new id before, which left the alert rules,
 * maintenance windows and status pages that name `check:<old id>` watching nothing. Checks only in the site are
 * deleted when `prune`, else listed as unchanged. Items sorted by name.
 */
export function planImport(
  existing: readonly CheckDefinition[],
  incoming: readonly CheckSpec[],
  prune: boolean,
  /** A dry run's credential headers given as values, by check name (checkDiff's `given`). */
  given?: ReadonlyMap<string, ReadonlySet<string>>,
): ImportPlan {
  const byName = new Map(existing.map((c) => [c.name, c]));
  const plan: ImportPlan = { items: [], creates: [], changes: [], deletes: [] };
  const inFile = new Set<string>();
  const typeChanges: ErrorIssue[] = [];
  for (const spec of incoming) {
    inFile.add(spec.name);
    const current = byName.get(spec.name);
    if (!current) {
      plan.creates.push(spec);
      plan.items.push({ action: 'create', name: spec.name, id: null, diff: checkDiff(null, spec) });
      continue;
    }
    if (current.type !== spec.type) {
      typeChanges.push({
        path: `checks.${spec.name}.type`,
        message:
          `check ${JSON.stringify(spec.name)} (${current.id}) is a ${current.type} check: a check cannot change type ` +
          `(the file says ${spec.type}). Give the ${spec.type} check another name, or delete this one first — ` +
          `alert rules, maintenance windows and status pages naming check:${current.id} would then watch nothing`,
      });
      continue;
    }
    const diff = checkDiff(specOf(current), spec, given?.get(spec.name));
    if (diff.length === 0) {
      plan.items.push({ action: 'unchanged', name: spec.name, id: current.id });
      continue;
    }
    plan.changes.push({ existing: current, spec, diff });
    plan.items.push({ action: 'change', name: spec.name, id: current.id, diff });
  }
  for (const c of existing) {
    if (inFile.has(c.name)) continue;
    if (prune) {
      plan.deletes.push(c);
      plan.items.push({ action: 'delete', name: c.name, id: c.id, diff: checkDiff(specOf(c), null) });
    } else {
      plan.items.push({ action: 'unchanged', name: c.name, id: c.id });
    }
  }
  if (typeChanges.length)
    throw new InvalidError(
      `${typeChanges.length} problem${typeChanges.length === 1 ? '' : 's'} in the configuration: ${typeChanges[0].path}: ${typeChanges[0].message}`,
      typeChanges.slice(0, 200),
    );
  const rank = { delete: 0, create: 1, change: 2, unchanged: 3 } as const;
  plan.items.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : rank[a.action] - rank[b.action]));
  return plan;
}

/** One line for a version: `import: 2 created, 1 changed, 3 deleted`. */
export function planSummary(plan: ImportPlan): string {
  const parts = [
    [plan.creates.length, 'created'],
    [plan.changes.length, 'changed'],
    [plan.deletes.length, 'deleted'],
  ]
    .filter(([n]) => (n as number) > 0)
    .map(([n, what]) => `${n} ${what}`);
  return `import: ${parts.join(', ') || 'nothing changed'}`;
}
