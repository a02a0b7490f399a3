import { Inject, Injectable, OnApplicationBootstrap, Optional } from '@nestjs/common';
import { DEFAULT_ALERT_RULES, type Actor } from '@fleetwatch/contracts';
import { FLEETWATCH_LOGGER } from '@fleetwatch/observability';
import { AlertConfigRepository } from '@fleetwatch/persistence';
import type { Logger } from 'pino';
import { ConfigWriter, type WriteOutcome } from '../config/config-writer';
import { alertEntryHash, entryDiff } from './alert-forms';
import { SEED_DEFAULT_RULES } from './alerting.tokens';

// The shipped alert rules (issue 18; contracts' DEFAULT_ALERT_RULES), in seed sets: each set written once, on the
// first start that finds it not yet run, by `system` — then never again, so a rule a user deleted stays deleted
// (config_seeds remembers each set by its name, in the same transaction). A rule a later release adds goes into a new
// set of its own: an install seeded before gets that set once (and none of the first set's rules it deleted), a new
// install gets every set in one version. A rule id already present (config as code created it first) is left as it
// is; a set whose rules are all present so is only marked seeded (no version). Under the config lock: two replicas
// starting together seed once.

export interface DefaultRuleSeed {
  /** Its config_seeds name: never renamed, never reused. */
  name: string;
  /** Ids of DEFAULT_ALERT_RULES it writes. */
  ruleIds: readonly string[];
}

/** The first release's set (its seed name predates the sets). */
export const DEFAULT_RULES_SEED = 'default-alert-rules';

/**
 * Every shipped rule in exactly one set, oldest set first (default-rules.seeder.spec.ts holds to it). A new default
 * rule goes into a NEW set: put in an existing one, installs that ran that set would never get it.
 */
export const DEFAULT_RULE_SEEDS: readonly DefaultRuleSeed[] = [
  {
    name: DEFAULT_RULES_SEED,
    ruleIds: [
      'default.target-down',
      'default.target-partial',
      'default.target-stale',
      'default.host-cpu-high',
      'default.host-disk-full',
      'default.gpu-temperature-high',
    ],
  },
  { name: 'default-alert-rules.2026-12-gpus-missing', ruleIds: ['default.gpus-missing'] },
];

export const SYSTEM_ACTOR: Actor = { id: 'system:defaults', name: 'system' };

@Injectable()
export class DefaultRulesSeeder implements OnApplicationBootstrap {
  constructor(
    private readonly writer: ConfigWriter,
    private readonly repo: AlertConfigRepository,
    @Optional() @Inject(SEED_DEFAULT_RULES) private readonly enabled = true,
    @Optional() @Inject(FLEETWATCH_LOGGER) private readonly logger?: Pick<Logger, 'info' | 'warn'>,
  ) {}

  /** Not awaited: the service starts with the database away too; the next start seeds then. */
  onApplicationBootstrap(): void {
    if (!this.enabled) return;
    void this.seed().then(
      (r) =>
        r.seeds.length > 0 &&
        this.logger?.info(
          { rules: r.seeded, seeds: r.seeds, version: r.version },
          r.seeded > 0
            ? 'default alert rules seeded'
            : 'default alert rule sets recorded (their rules were there already: nothing written)',
        ),
      (err: unknown) =>
        this.logger?.warn({ err: (err as Error).message }, 'default alert rules not seeded (next start)'),
    );
  }

  /**
   * Seeds each set of default rules not seeded before (`sets`: the shipped ones; a test names an older release's);
   * answers how many rules it wrote, the sets it ran and the version.
   */
  async seed(
    sets: readonly DefaultRuleSeed[] = DEFAULT_RULE_SEEDS,
  ): Promise<{ seeded: number; seeds: string[]; version: number }> {
    type Result = { seeded: number; seeds: string[] };
    const r = await this.writer.write(SYSTEM_ACTOR, async ({ tx, head, next }): Promise<WriteOutcome<Result>> => {
      const due: DefaultRuleSeed[] = [];
      for (const set of sets) if (!(await this.repo.seeded(tx, set.name))) due.push(set);
      if (due.length === 0) return { changed: false, result: { seeded: 0, seeds: [] } };
      const seeds = due.map((s) => s.name);
      const ids = new Set(due.flatMap((s) => s.ruleIds));
      const writes = DEFAULT_ALERT_RULES.filter((rule) => ids.has(rule.id)).map(({ id, ...spec }) => ({
        id,
        name: spec.name,
        spec,
        hash: alertEntryHash('alertRules', id, spec),
      }));
      const { created } = await this.repo.insertNew(tx, 'alertRules', writes, next);
      // Every rule there already (config as code was first): nothing to version, the sets only remembered.
      const version = created.length > 0 ? next : head.version;
      for (const name of seeds) await this.repo.markSeeded(tx, name, version);
      if (created.length === 0) return { changed: false, result: { seeded: 0, seeds } };
      const createdIds = new Set(created.map((c) => c.id));
      const forms: Record<string, Record<string, unknown>> = {};
      for (const w of writes) if (createdIds.has(w.id)) forms[w.id] = w.spec;
      return {
        changed: true,
        result: { seeded: created.length, seeds },
        summary: `default alert rules: ${created.length} created`,
        audit: writes
          .filter((w) => createdIds.has(w.id))
          .map((w) => ({
            action: 'alert-rule.create',
            subject: w.id,
            diff: entryDiff(null, w.spec),
            details: { via: 'defaults' },
          })),
        touched: [],
        alertChanges: { alertRules: forms },
      };
    });
    return { seeded: r.seeded, seeds: r.seeds, version: r.version };
  }
}
