import { Inject, Injectable, OnApplicationBootstrap, Optional } from '@nestjs/common';
import { DEFAULT_ALERT_RULES, type Actor } from '@fleetwatch/contracts';
import { FLEETWATCH_LOGGER } from '@fleetwatch/observability';
import { AlertConfigRepository } from '@fleetwatch/persistence';
import type { Logger } from 'pino';
import { ConfigWriter, type WriteOutcome } from '../config/config-writer';
import { alertEntryHash, entryDiff } from './alert-forms';
import { SEED_DEFAULT_RULES } from './alerting.tokens';

// The shipped alert rules (issue 18; contracts' DEFAULT_ALERT_RULES): written once, on the first start
// that finds the seed not yet run, as one config version by `system` — then never again, so a rule a
// user deleted stays deleted (config_seeds remembers, in the same transaction). A rule id already
// present (config as code created it first) is left as it is. Under the config lock: two replicas
// starting together seed once.

export const DEFAULT_RULES_SEED = 'default-alert-rules';
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
      (r) => r.seeded > 0 && this.logger?.info({ rules: r.seeded, version: r.version }, 'default alert rules seeded'),
      (err: unknown) =>
        this.logger?.warn({ err: (err as Error).message }, 'default alert rules not seeded (next start)'),
    );
  }

  /** Seeds the default rules unless done before; answers how many rules it wrote and the version. */
  async seed(): Promise<{ seeded: number; version: number }> {
    const r = await this.writer.write(SYSTEM_ACTOR, async ({ tx, next }): Promise<WriteOutcome<{ seeded: number }>> => {
      if (await this.repo.seeded(tx, DEFAULT_RULES_SEED)) return { changed: false, result: { seeded: 0 } };
      const writes = DEFAULT_ALERT_RULES.map(({ id, ...spec }) => ({
        id,
        name: spec.name,
        spec,
        hash: alertEntryHash('alertRules', id, spec),
      }));
      const { created } = await this.repo.insertNew(tx, 'alertRules', writes, next);
      await this.repo.markSeeded(tx, DEFAULT_RULES_SEED, next);
      const createdIds = new Set(created.map((c) => c.id));
      const forms: Record<string, Record<string, unknown>> = {};
      for (const w of writes) if (createdIds.has(w.id)) forms[w.id] = w.spec;
      return {
        changed: true,
        result: { seeded: created.length },
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
    return { seeded: r.seeded, version: r.version };
  }
}
