import { randomUUID } from 'node:crypto';
import { Inject, Injectable, Optional } from '@nestjs/common';
import type {
  Actor,
  CheckDefinition,
  CheckSpec,
  ConfigPlanItem,
  ConfigRpcMethod,
  ConfigRpcResults,
} from '@fleetwatch/contracts';
import { InvalidError, type ErrorIssue, type TargetPolicy } from '@fleetwatch/domain';
import {
  AlertConfigRepository,
  ChecksRepository,
  ConfigVersionsRepository,
  PropertiesRepository,
  type AuditDraft,
  type SecretSealer,
  type SqlTransaction,
  StatusPagesRepository,
} from '@fleetwatch/persistence';
import { ALERT_AREAS, put } from '../alerting/alert-forms';
import { applyAlertImport, planAlertImport } from '../alerting/alert-import';
import { CHANNEL_SEALER } from '../alerting/alerting.tokens';
import { maskChannelHeaders } from '../alerting/channel-secrets';
import { policyIssue, specOf } from './check-form';
import { checkWrite, EMPTY_CONFIG_HASH } from './config-hash';
import { checkDiff, planImport, planSummary, snapshotOf } from './config-plan';
import { parseConfigDocument, renderConfigYaml, type ConfigSnapshot, type ImportedCheck } from './config-yaml';
import { withStoredSecrets } from './check-secrets';
import { TargetDeniedError, VersionConflictError } from './config.errors';
import { CHECK_TARGET_POLICY } from './config.tokens';
import { ConfigWriter, type WriteOutcome, type WriteRequest } from './config-writer';
import { PushMonitors } from './push-monitors';
import {
  allStatusPages,
  applyStatusPages,
  planStatusPages,
  statusPagePlanSize,
  statusPagesToRender,
  type StatusPagePlan,
  type StatusPageSection,
} from '../status-pages/status-page-yaml';
import {
  applyProperties,
  planProperties,
  propertyPlanSize,
  type PropertyPlan,
  type PropertySection,
} from '../properties/property-yaml';

// Config as code (issue 15): export the whole configuration as YAML, import a YAML file
// as a plan (create / change / delete / unchanged per check, by name) that a dry run
// shows and an apply writes as ONE version. Export → import is a no-op. Alert rules, channels
// (public fields; secrets never exported, kept when a file leaves them out) and maintenance windows
// take part by id (alerting/alert-import.ts), properties by key (properties/property-yaml.ts);
// silences, operational state, never do. An http check's credential headers export as
// `{set: true}`, which an import reads as "keep the stored value" (check-secrets.ts).

type R = ConfigRpcResults;

export interface ImportOptions {
  dryRun: boolean;
  /** Delete checks the file does not list (the file is the truth). */
  prune: boolean;
  /** The config version the file was written against (If-Match). */
  expectedVersion?: number;
  /** The RPC request an apply answers: idempotent by its id (ConfigWriter). */
  request?: WriteRequest;
}

@Injectable()
export class ConfigAsCodeService {
  constructor(
    private readonly writer: ConfigWriter,
    private readonly checks: ChecksRepository,
    private readonly monitors: PushMonitors,
    @Inject(CHECK_TARGET_POLICY) private readonly policy: TargetPolicy,
    private readonly alertConfig: AlertConfigRepository,
    private readonly versions: ConfigVersionsRepository,
    @Inject(CHANNEL_SEALER) private readonly sealer: SecretSealer | null,
    @Optional() @Inject(StatusPagesRepository) private readonly statusPages: StatusPagesRepository | null = null,
    @Optional() @Inject(PropertiesRepository) private readonly properties: PropertiesRepository | null = null,
  ) {}

  /**
   * The head and the whole configuration it is the version of, with the status pages: every read at one snapshot
   * (ConfigVersionsRepository.atOneSnapshot), so writes committing meanwhile are in none of it. (Before, the parts
   * were read one after the other and read again while the head moved; after five tries under continuous writes
   * the checks of one version went out with alert areas and properties of later ones, labelled as the first.)
   */
  private readConsistent(): Promise<{
    version: number;
    hash: string | null;
    snapshot: ConfigSnapshot;
    pages: Awaited<ReturnType<typeof allStatusPages>> | null;
  }> {
    return this.versions.atOneSnapshot(async (tx) => {
      const { version, hash, checks } = await this.checks.withHead(undefined, tx);
      const snapshot = snapshotOf(checks.map(specOf));
      for (const area of ALERT_AREAS) {
        const rows = await this.alertConfig.all(area, tx);
        if (rows.length === 0) continue;
        const entries: Record<string, Record<string, unknown>> = {};
        // A channel's credential-named headers (stored before they were refused) masked: an import of the masked
        // value keeps the stored one (channelHeaderSecrets).
        for (const r of rows) put(entries, r.id, area === 'channels' ? maskChannelHeaders(r.spec) : r.spec);
        snapshot[area] = entries;
      }
      const properties = (await this.properties?.all(tx)) ?? [];
      if (properties.length > 0) {
        const entries: Record<string, Record<string, unknown>> = {};
        for (const p of properties) put(entries, p.key, { value: p.value });
        snapshot.properties = entries;
      }
      const pages = this.statusPages ? await allStatusPages(this.statusPages, tx) : null;
      return { version, hash, snapshot, pages };
    });
  }

  async export(): Promise<R[ConfigRpcMethod.ConfigExport]> {
    // The head's hash, read with the configuration it is the hash of.
    const { version, hash: headHash, snapshot, pages } = await this.readConsistent();
    const hash = headHash ?? EMPTY_CONFIG_HASH;
    const header = [
      `Fleetwatch configuration as code: version ${version}, sha256 ${hash}.`,
      'Apply with `npm run fleetwatch -- config apply <file>` or POST /api/v1/config/import;',
      'checks are keyed by name, fields left out take their defaults; alert rules, channels and',
      'maintenance windows by id; properties by key. Every section is written, empty or not: a section',
      'is the truth for its area (with prune, what it does not list is deleted; a section left out of a',
      'file leaves its area as it is). Channel secrets are never exported: an entry without them keeps',
      "them. A check's credential headers (Authorization, Cookie, X-Api-Key, …) show as `set: true`: kept",
      'as stored; a value replaces one, null removes it.',
    ].join('\n');
    // Status pages (not in snapshots or the hash) in a section of their own, by slug.
    return { yaml: renderConfigYaml(snapshot, header, pages ? statusPagesToRender(pages) : undefined), version, hash };
  }

  /** The plans of the document's alert, status page and property sections, all read through `tx`. */
  private async planSections(
    document: ReturnType<typeof parseConfigDocument>,
    prune: boolean,
    tx: SqlTransaction,
    actor: Actor,
    dryRun = false,
  ) {
    const alertPlan = await planAlertImport(
      this.alertConfig,
      this.sealer,
      document.alert,
      prune,
      tx,
      this.policy,
      dryRun,
      actor.name,
    );
    const pagePlan = await this.planPages(document.statusPages, prune, tx);
    const propPlan = await this.planProps(document.properties, prune, tx);
    return { alertPlan, pagePlan, propPlan };
  }

  /**
   * The document's status page section against the stored pages (`tx` under the writer's lock when applying:
   * read through it, not on a second pool connection, which writers queued on the lock may hold every one of;
   * a dry run's snapshot).
   */
  private async planPages(
    section: StatusPageSection | undefined,
    prune: boolean,
    tx?: SqlTransaction,
  ): Promise<StatusPagePlan> {
    if (!section || !this.statusPages) return planStatusPages([], undefined, prune);
    return planStatusPages(await allStatusPages(this.statusPages, tx), section, prune);
  }

  /** The document's property section against the stored properties (`tx` under the writer's lock when applying, a dry run's snapshot). */
  private async planProps(
    section: PropertySection | undefined,
    prune: boolean,
    tx?: SqlTransaction,
  ): Promise<PropertyPlan> {
    if (!section || !this.properties) return planProperties([], undefined, prune);
    return planProperties(await this.properties.all(tx), section, prune);
  }

  async import(actor: Actor, yaml: string, options: ImportOptions): Promise<R[ConfigRpcMethod.ConfigImport]> {
    const document = parseConfigDocument(yaml);
    const incoming = document.checks;
    const denied: ErrorIssue[] = [];
    for (const c of incoming) {
      const d = policyIssue(c.spec, this.policy, ['checks', c.name]);
      if (d) denied.push(d);
    }
    if (denied.length)
      throw new TargetDeniedError(`target denied by policy: ${denied[0].path}: ${denied[0].message}`, denied);

    if (options.dryRun) {
      // The plan against one version: every part read at the snapshot the head is read at.
      return this.versions.atOneSnapshot(async (tx) => {
        const { version, checks } = await this.checks.withHead(undefined, tx);
        expectVersion(options.expectedVersion, version);
        const { specs, given } = withSiteSecrets(incoming, checks);
        const { alertPlan, pagePlan, propPlan } = await this.planSections(document, options.prune, tx, actor, true);
        return {
          dryRun: true,
          plan: [
            ...planImport(checks, specs, options.prune, given).items,
            ...alertPlan.items,
            ...propPlan.items,
            ...pagePlan.items,
          ],
          version,
        };
      });
    }

    const applied = await this.writer.write(
      actor,
      async ({
        tx,
        head,
        next,
      }): Promise<WriteOutcome<{ plan: ConfigPlanItem[]; pingTokens?: Record<string, string> }>> => {
        expectVersion(options.expectedVersion, head.version);
        const existing = await this.checks.all(tx);
        const plan = planImport(existing, withSiteSecrets(incoming, existing).specs, options.prune);
        const { alertPlan, pagePlan, propPlan } = await this.planSections(document, options.prune, tx, actor);
        const alertCount = alertPlan.count.created + alertPlan.count.changed + alertPlan.count.deleted;
        if (
          plan.creates.length +
            plan.changes.length +
            plan.deletes.length +
            alertCount +
            propertyPlanSize(propPlan) +
            statusPagePlanSize(pagePlan) ===
          0
        )
          return {
            changed: false,
            result: { plan: [...plan.items, ...alertPlan.items, ...propPlan.items, ...pagePlan.items] },
          };
        // Deletes first (a check never changes type on import: planImport refuses it, as the checks' own writes do).
        await this.checks.deleteMany(
          tx,
          plan.deletes.map((c) => c.id),
        );
        const changed = await this.checks.updateMany(
          tx,
          plan.changes.map((c) => checkWrite(c.existing.id, c.spec)),
          next,
        );
        const created = await this.checks.insertMany(
          tx,
          plan.creates.map((spec) => checkWrite(randomUUID(), spec)),
          next,
        );
        // Push checks: monitors follow; new ones get their ping tokens (in this answer only).
        const pingTokens = await this.monitors.follow(tx, { deleted: plan.deletes, changed, created });
        const via = { via: 'import' };
        const audit: AuditDraft[] = [
          ...plan.deletes.map((c) => ({
            action: 'check.delete',
            subject: c.id,
            diff: checkDiff(specOf(c), null),
            details: via,
          })),
          ...plan.changes.map((c) => ({ action: 'check.replace', subject: c.existing.id, diff: c.diff, details: via })),
          ...created.map((c) => ({
            action: 'check.create',
            subject: c.id,
            diff: checkDiff(null, specOf(c)),
            details: via,
          })),
        ];
        // The plan as applied: created checks with their new ids.
        const idOf = new Map(created.map((c) => [c.name, c.id]));
        const items = [
          ...plan.items.map((i) => (i.action === 'create' ? { ...i, id: idOf.get(i.name) ?? null } : i)),
          ...alertPlan.items,
        ];
        const alert = await applyAlertImport(this.alertConfig, tx, alertPlan, next);
        audit.push(...alert.audit);
        const props =
          this.properties && propertyPlanSize(propPlan) > 0
            ? await applyProperties(this.properties, tx, propPlan, next)
            : null;
        if (props) audit.push(...props.audit);
        items.push(...propPlan.items);
        const pages =
          this.statusPages && statusPagePlanSize(pagePlan) > 0
            ? await applyStatusPages(this.statusPages, tx, pagePlan, next)
            : { audit: [], items: pagePlan.items };
        audit.push(...pages.audit);
        items.push(...pages.items);
        const propCreated = propPlan.upserts.filter((u) => !u.before).length;
        const summary = planSummary({
          ...plan,
          creates: [...plan.creates, ...Array<never>(alertPlan.count.created + pagePlan.creates.length + propCreated)],
          changes: [
            ...plan.changes,
            ...Array<never>(alertPlan.count.changed + pagePlan.changes.length + propPlan.upserts.length - propCreated),
          ],
          deletes: [
            ...plan.deletes,
            ...Array<never>(alertPlan.count.deleted + pagePlan.deletes.length + propPlan.deletes.length),
          ],
        });
        return {
          changed: true,
          result: pingTokens ? { plan: items, pingTokens } : { plan: items },
          audit,
          summary,
          alertChanges: alert.alertChanges,
          ...(props ? { propertyChanges: props.changes } : {}),
          ...(statusPagePlanSize(pagePlan) > 0 ? { areas: ['statusPages' as const] } : {}),
          touched: [
            ...plan.deletes.map((c) => ({ id: c.id, before: specOf(c), after: null })),
            ...plan.changes.map((c) => ({ id: c.existing.id, before: specOf(c.existing), after: c.spec })),
            ...created.map((c) => ({ id: c.id, before: null, after: specOf(c) })),
          ],
        };
      },
      { request: options.request },
    );
    const { plan, pingTokens, version } = applied;
    return pingTokens ? { dryRun: false, plan, pingTokens, version } : { dryRun: false, plan, version };
  }
}

/**
 * The file's checks with the site's credential headers they keep (withStoredSecrets, against the stored check of
 * that name and type), and the names of those given as values (a dry run plans them as changes, whatever the
 * value). Every refusal at once, each issue `checks.<name>.headers.<header>`.
 */
function withSiteSecrets(
  incoming: readonly ImportedCheck[],
  existing: readonly CheckDefinition[],
): { specs: CheckSpec[]; given: Map<string, ReadonlySet<string>> } {
  const byName = new Map(existing.map((c) => [c.name, c]));
  const specs: CheckSpec[] = [];
  const given = new Map<string, ReadonlySet<string>>();
  const issues: ErrorIssue[] = [];
  for (const c of incoming) {
    const current = byName.get(c.name);
    const stored = current && current.type === c.spec.type ? specOf(current) : null;
    try {
      const w = withStoredSecrets(c.spec, c.marks, stored, `checks.${c.name}.`);
      specs.push(w.spec);
      if (w.given.size) given.set(c.name, w.given);
    } catch (e) {
      if (!(e instanceof InvalidError)) throw e;
      issues.push(...e.issues);
    }
  }
  if (issues.length)
    throw new InvalidError(
      `${issues.length} problem${issues.length === 1 ? '' : 's'} in the configuration: ${issues[0].path}: ${issues[0].message}`,
      issues.slice(0, 200),
    );
  return { specs, given };
}

function expectVersion(expected: number | undefined, current: number): void {
  if (expected !== undefined && expected !== current)
    throw new VersionConflictError(
      `the configuration is at version ${current}, not ${expected}: export it again`,
      current,
    );
}
