import type { AlertRuleSpec, ChannelConfig, ConfigPlanItem } from '@fleetwatch/contracts';
import { channelTargetProblem } from '@fleetwatch/alerting';
import {
  createTargetPolicy,
  DEFAULT_DENY_NETWORKS,
  InvalidError,
  type ErrorIssue,
  type TargetPolicy,
} from '@fleetwatch/domain';
import type {
  AlertConfigRecord,
  AlertConfigRepository,
  AlertConfigWrite,
  AuditDraft,
  SecretSealer,
  SqlTransaction,
} from '@fleetwatch/persistence';
import { KINDS, invalidOf, type AlertKind } from './alert-config.service';
import {
  ALERT_AREAS,
  alertEntryHash,
  entryDiff,
  parseChannel,
  parseRule,
  parseWindow,
  put,
  type AlertArea,
  type AlertChanges,
} from './alert-forms';
import type { AlertSections } from './alert-yaml';
import { TargetDeniedError } from '../config/config.errors';
import { channelHeaderSecrets, channelSecretsWrite } from './channel-secrets';
import { redactAuditDiff } from '../config/check-secrets';

// Config as code for alert configuration (issue 18): the plan of an import's alert sections against
// what is stored (create / change / delete / unchanged per id), and its writes inside the import's one
// version. Plan items are named `<area>/<id>`. A channel whose file entry carries no secret keeps its
// stored ones (export → import is a no-op), and a credential-named header exported masked keeps its
// stored value (channelHeaderSecrets); a rule must name channels that exist after the import. A
// maintenance window's `createdBy` is never the file's: the importer on create, the stored one after.

const KIND_OF: Record<AlertArea, AlertKind> = { alertRules: 'rule', channels: 'channel', maintenanceWindows: 'window' };

interface AreaPlan {
  area: AlertArea;
  creates: AlertConfigWrite[];
  changes: { write: AlertConfigWrite; before: AlertConfigRecord; diff: AuditDraft['diff'] }[];
  deletes: AlertConfigRecord[];
  forms: Map<string, Record<string, unknown>>;
}

export interface AlertImportPlan {
  items: ConfigPlanItem[];
  areas: AreaPlan[];
  count: { created: number; changed: number; deleted: number };
}

function parsedSpec(area: AlertArea, input: unknown): unknown {
  const p = area === 'alertRules' ? parseRule(input) : area === 'channels' ? parseChannel(input) : parseWindow(input);
  if (!p.ok) throw invalidOf(KINDS[KIND_OF[area]].noun, p.issues); // validated by the parse already
  return p.spec;
}

/** A channel's refusal as an import names it: each issue under `channels.<id>.`, as the file's other refusals. */
function inImport<T>(id: string, work: () => T): T {
  try {
    return work();
  } catch (err) {
    if (err instanceof InvalidError)
      throw new InvalidError(
        `channels.${id}: ${err.message}`,
        err.issues.map((i) => ({ ...i, path: `channels.${id}.${i.path}` })),
      );
    throw err;
  }
}

/** A plan's diff as callers see it: a channel's credential-named header values (stored before they were refused) masked. */
const shown = (area: AlertArea, diff: AuditDraft['diff']): AuditDraft['diff'] =>
  area === 'channels' ? redactAuditDiff(diff) : diff;

/** Plans the alert sections a document has; `tx` under the writer's lock, or a dry run's snapshot. */
export async function planAlertImport(
  repo: AlertConfigRepository,
  sealer: SecretSealer | null,
  sections: AlertSections,
  prune: boolean,
  tx?: SqlTransaction,
  /** Channels' hosts go through the checks' target policy (as on a single write). */
  policy: TargetPolicy = createTargetPolicy(DEFAULT_DENY_NETWORKS),
  /** A dry run's plan: a secret given is never compared with the stored one (channelSecretsWrite). */
  dryRun = false,
  /** Who imports: the `createdBy` of the maintenance windows the import creates. */
  author = 'import',
): Promise<AlertImportPlan> {
  const plan: AlertImportPlan = { items: [], areas: [], count: { created: 0, changed: 0, deleted: 0 } };
  const denied: ErrorIssue[] = [];
  const channelIds = new Set((await repo.all('channels', tx)).map((c) => c.id));
  for (const area of ALERT_AREAS) {
    const entries = sections[area];
    if (!entries) continue;
    const existing = new Map((await repo.all(area, tx)).map((r) => [r.id, r]));
    const ap: AreaPlan = { area, creates: [], changes: [], deletes: [], forms: new Map() };
    const inFile = new Set<string>();
    for (const { id, input } of entries) {
      inFile.add(id);
      const before = existing.get(id) ?? null;
      let write: AlertConfigWrite;
      let secretDiff: AuditDraft['diff'] = [];
      if (area === 'channels') {
        const stored = before
          ? {
              sealed: (await repo.sealedSecrets(id, tx)) ?? {},
              redacted: before.secretsRedacted ?? {},
              config: before.spec as unknown as ChannelConfig,
            }
          : null;
        const resolved = inImport(id, () =>
          channelHeaderSecrets(input, before ? (before.spec as unknown as ChannelConfig) : null),
        );
        const parsed = parsedSpec(area, resolved) as Record<string, string | null | undefined>;
        const problem = channelTargetProblem(parsed as unknown as ChannelConfig, parsed, policy);
        if (problem) denied.push({ path: `channels.${id}.${problem.path}`, message: problem.message });
        const s = inImport(id, () => channelSecretsWrite(sealer, id, parsed as never, stored, { dryRun }));
        const form = s.config as unknown as Record<string, unknown>;
        write = {
          id,
          name: s.config.name,
          type: s.config.type,
          spec: form,
          hash: alertEntryHash(area, id, form),
          secrets: s.sealed,
          secretsRedacted: s.redacted,
        };
        secretDiff = s.diff;
      } else {
        // A window's author is who created it (as on a single write): whatever the file says is ignored.
        const body =
          area === 'maintenanceWindows'
            ? { ...(input as Record<string, unknown>), createdBy: before ? before.spec['createdBy'] : author }
            : input;
        const spec = parsedSpec(area, body) as Record<string, unknown>;
        write = { id, name: String(spec['name']), spec, hash: alertEntryHash(area, id, spec) };
      }
      const form = write.spec as Record<string, unknown>;
      ap.forms.set(id, form);
      const name = `${area}/${id}`;
      if (!before) {
        ap.creates.push(write);
        plan.items.push({ action: 'create', name, id, diff: shown(area, entryDiff(null, form)) });
        continue;
      }
      const diff = shown(area, [...entryDiff(before.spec, form), ...secretDiff]);
      if (diff.length === 0) {
        plan.items.push({ action: 'unchanged', name, id });
        continue;
      }
      ap.changes.push({ write, before, diff });
      plan.items.push({ action: 'change', name, id, diff });
    }
    for (const [id, r] of existing) {
      if (inFile.has(id)) continue;
      if (prune) {
        ap.deletes.push(r);
        plan.items.push({ action: 'delete', name: `${area}/${id}`, id, diff: shown(area, entryDiff(r.spec, null)) });
      } else plan.items.push({ action: 'unchanged', name: `${area}/${id}`, id });
    }
    if (area === 'channels') {
      for (const d of ap.deletes) channelIds.delete(d.id);
      for (const c of ap.creates) channelIds.add(c.id);
    }
    plan.count.created += ap.creates.length;
    plan.count.changed += ap.changes.length;
    plan.count.deleted += ap.deletes.length;
    plan.areas.push(ap);
  }
  if (denied.length)
    throw new TargetDeniedError(`target denied by policy: ${denied[0].path}: ${denied[0].message}`, denied);
  // Rules name channels that exist once the import is applied (the file's rules, or the stored ones).
  const rules = sections.alertRules
    ? sections.alertRules.map((e) => ({ id: e.id, spec: parsedSpec('alertRules', e.input) as AlertRuleSpec }))
    : (await repo.all<AlertRuleSpec>('alertRules', tx)).map((r) => ({ id: r.id, spec: r.spec }));
  const issues: ErrorIssue[] = [];
  for (const r of rules)
    r.spec.channels.forEach((c, i) => {
      if (!channelIds.has(c)) issues.push({ path: `alertRules.${r.id}.channels.${i}`, message: `no channel ${c}` });
    });
  if (issues.length) throw invalidOf('configuration', issues);
  plan.items.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return plan;
}

/** Applies a plan in the import's transaction: rows, audit entries, and the version's alert changes. */
export async function applyAlertImport(
  repo: AlertConfigRepository,
  tx: SqlTransaction,
  plan: AlertImportPlan,
  version: number,
): Promise<{ audit: AuditDraft[]; alertChanges: AlertChanges }> {
  const audit: AuditDraft[] = [];
  const alertChanges: AlertChanges = {};
  const via = { via: 'import' };
  for (const ap of plan.areas) {
    const action = KINDS[KIND_OF[ap.area]].action;
    const changes: Record<string, Record<string, unknown> | null> = {};
    await repo.delete(
      tx,
      ap.area,
      ap.deletes.map((d) => d.id),
    );
    for (const d of ap.deletes) {
      put(changes, d.id, null);
      audit.push({ action: `${action}.delete`, subject: d.id, diff: entryDiff(d.spec, null), details: via });
    }
    await repo.update(
      tx,
      ap.area,
      ap.changes.map((c) => c.write),
      version,
    );
    for (const c of ap.changes) {
      put(changes, c.write.id, ap.forms.get(c.write.id));
      audit.push({ action: `${action}.replace`, subject: c.write.id, diff: c.diff, details: via });
    }
    await repo.insertNew(tx, ap.area, ap.creates, version);
    for (const c of ap.creates) {
      put(changes, c.id, ap.forms.get(c.id));
      audit.push({
        action: `${action}.create`,
        subject: c.id,
        diff: entryDiff(null, ap.forms.get(c.id) ?? null),
        details: via,
      });
    }
    if (Object.keys(changes).length) alertChanges[ap.area] = changes;
  }
  return { audit, alertChanges };
}
