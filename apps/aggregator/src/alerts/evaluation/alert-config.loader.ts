import { Injectable } from '@nestjs/common';
import {
  alertRuleSpecSchema,
  DEFAULT_ALERT_GROUPING,
  maintenanceWindowSpecSchema,
  silenceSpecSchema,
  type MaintenanceWindow,
  type Silence,
} from '@fleetwatch/contracts';
import {
  compileAlertRule,
  maintenanceWindowIssues,
  routesOf,
  type CompiledAlertRule,
  type NotificationRoute,
} from '@fleetwatch/alerting';
import { AlertConfigRepository, AlertEvaluationReaderRepository } from '@fleetwatch/persistence';

/** The alert configuration one evaluation uses: compiled once per load (at start and on config.changed). */
export interface AlertConfigSet {
  rules: CompiledAlertRule[];
  rulesById: Map<string, CompiledAlertRule>;
  routes: Map<string, NotificationRoute>;
  silences: Silence[];
  windows: MaintenanceWindow[];
  /** Entries left out because the stored spec no longer passes the contract (logged by the caller). */
  skipped: { area: string; id: string; reason: string }[];
  loadedAt: number;
}

export const emptyAlertConfig = (): AlertConfigSet => ({
  rules: [],
  rulesById: new Map(),
  routes: new Map(),
  silences: [],
  windows: [],
  skipped: [],
  loadedAt: 0,
});

const reasonOf = (issues: readonly { path: PropertyKey[]; message: string }[]): string =>
  issues
    .slice(0, 3)
    .map((i) => `${i.path.map(String).join('.') || '(root)'}: ${i.message}`)
    .join('; ');

/**
 * Reads rules, maintenance windows and silences from the configuration tables (written by the
 * sync-orchestrator) and validates each with the shared contract, as the configuration owner did: a row
 * that no longer passes (a contract tightened since) is left out and reported, never half-used.
 */
@Injectable()
export class AlertConfigLoader {
  constructor(
    private readonly config: AlertConfigRepository,
    private readonly reader: AlertEvaluationReaderRepository,
  ) {}

  async load(now = Date.now()): Promise<AlertConfigSet> {
    const [ruleRows, windowRows, silenceRows] = await Promise.all([
      this.config.all('alertRules'),
      this.config.all('maintenanceWindows'),
      this.reader.unexpiredSilences(now),
    ]);
    const out = emptyAlertConfig();
    out.loadedAt = now;
    for (const row of ruleRows) {
      const r = alertRuleSpecSchema.safeParse(row.spec);
      if (!r.success) {
        out.skipped.push({ area: 'rules', id: row.id, reason: reasonOf(r.error.issues) });
        continue;
      }
      out.rules.push(compileAlertRule({ ...r.data, id: row.id }, DEFAULT_ALERT_GROUPING));
    }
    for (const row of windowRows) {
      const w = maintenanceWindowSpecSchema.safeParse(row.spec);
      if (!w.success) {
        out.skipped.push({ area: 'maintenance', id: row.id, reason: reasonOf(w.error.issues) });
        continue;
      }
      // The contract checks a cron's shape only; a schedule cron-parser cannot read would make every evaluation throw
      // (each one asks every window whether it is open), stopping all alerts for one row.
      const issues = maintenanceWindowIssues(w.data);
      if (issues.length)
        out.skipped.push({
          area: 'maintenance',
          id: row.id,
          reason: reasonOf(issues.map((i) => ({ path: [i.path], message: i.message }))),
        });
      else out.windows.push({ ...w.data, id: row.id } as MaintenanceWindow);
    }
    for (const row of silenceRows) {
      const s = silenceSpecSchema.safeParse(row.spec);
      if (s.success) out.silences.push({ ...s.data, id: row.id });
      else out.skipped.push({ area: 'silences', id: row.id, reason: reasonOf(s.error.issues) });
    }
    out.rulesById = new Map(out.rules.map((r) => [r.id, r]));
    out.routes = routesOf(out.rules);
    return out;
  }
}
