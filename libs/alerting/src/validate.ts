import type { AlertRuleSpec, MaintenanceWindowSpec } from '@fleetwatch/contracts';
import { cronProblem } from './maintenance';
import { templateProblem } from './templates';

// Checks the contracts cannot make (they import only zod): templates parsed by the template engine,
// cron expressions by cron-parser in the window's time zone. The configuration owner runs these after
// the schema and before it writes, and answers `invalid` with the issues (paths as the schema's).

export interface ConfigIssue {
  path: string;
  message: string;
}

export function alertRuleIssues(rule: AlertRuleSpec): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  for (const [name, source] of Object.entries(rule.annotations)) {
    const problem = templateProblem(source);
    if (problem) issues.push({ path: `annotations.${name}`, message: `template: ${problem}` });
  }
  return issues;
}

export function maintenanceWindowIssues(window: MaintenanceWindowSpec): ConfigIssue[] {
  if (window.schedule.type !== 'recurring') return [];
  const problem = cronProblem(window.schedule.cron, window.schedule.timezone);
  return problem ? [{ path: 'schedule.cron', message: problem }] : [];
}
