import { TargetStatus } from '../common/status';
import { alertGroupingSchema, alertRuleSpecSchema, type AlertGrouping, type AlertRule } from './rule.schema';

// The rules a new site starts with (issue 18): written as input and run through the same schema as any
// rule, so they carry every default and cannot drift from what a client could write. Ids are stable
// slugs, so a site can tell its shipped rules from its own and config-as-code can refer to them.

const DEFAULT_RULE_INPUTS = [
  {
    id: 'default.target-down',
    name: 'Target down',
    condition: { type: 'status', statuses: [TargetStatus.Down] },
    for: '1m',
    severity: 'critical',
    annotations: {
      summary: '{{ target.name }} is down',
      description: '{{ target.name }} ({{ target.id }}) has been DOWN since {{ alert.activeAt }}.',
    },
  },
  {
    id: 'default.target-partial',
    name: 'Target partially down',
    condition: { type: 'status', statuses: [TargetStatus.Partial] },
    for: '5m',
    severity: 'warning',
    annotations: { summary: '{{ target.name }} is down from some locations' },
  },
  {
    id: 'default.target-stale',
    name: 'Target stale',
    condition: { type: 'status', statuses: [TargetStatus.Stale] },
    for: '0s',
    severity: 'warning',
    annotations: { summary: 'Nothing heard from {{ target.name }} within its deadline' },
  },
  {
    id: 'default.host-cpu-high',
    name: 'Host CPU high',
    selector: { kinds: ['host'] },
    condition: { type: 'metric', metric: { kind: 'host_cpu_pct' }, op: 'above', threshold: 90 },
    for: '5m',
    severity: 'warning',
    annotations: { summary: 'CPU on {{ target.name }} at {{ alert.value | round: 1 }} %' },
  },
  {
    id: 'default.host-disk-full',
    name: 'Host disk almost full',
    selector: { kinds: ['host'] },
    condition: { type: 'metric', metric: { kind: 'host_disk_pct' }, op: 'above', threshold: 90 },
    for: '0s',
    // Fires at once, but a disk hovering about 90 % must not page and resolve every minute.
    keepFiringFor: '10m',
    severity: 'warning',
    annotations: { summary: 'Disk {{ labels.mount }} on {{ target.name }} at {{ alert.value | round: 1 }} %' },
  },
  {
    id: 'default.gpu-temperature-high',
    name: 'GPU temperature high',
    selector: { kinds: ['host'] },
    condition: { type: 'metric', metric: { kind: 'gpu_temperature_c' }, op: 'above', threshold: 85 },
    for: '0s',
    // A temperature about the threshold flaps with the load: kept firing 5 minutes after it drops below.
    keepFiringFor: '5m',
    severity: 'critical',
    annotations: { summary: 'GPU {{ labels.device }} on {{ target.name }} at {{ alert.value }} °C' },
  },
  {
    // Added after the first release: existing sites get it once too (sync-orchestrator's DEFAULT_RULE_SEEDS).
    id: 'default.gpus-missing',
    name: 'GPU fallen off the bus',
    selector: { kinds: ['host'] },
    condition: { type: 'metric', metric: { kind: 'gpus_missing' }, op: 'above', threshold: 0 },
    // A GPU reset (`nvidia-smi -r`) or a driver hiccup lists a GPU for a sample or two: only a GPU still gone after
    // a minute pages.
    for: '1m',
    severity: 'critical',
    annotations: {
      summary: '{{ alert.value }} GPU(s) missing on {{ target.name }}',
      description:
        'The collector on {{ target.name }} saw these GPUs earlier and no longer does (fallen off the bus?); the host page lists them.',
    },
  },
] as const;

/** The shipped rules, validated and with defaults applied. */
export const DEFAULT_ALERT_RULES: readonly AlertRule[] = DEFAULT_RULE_INPUTS.map(({ id, ...input }) => ({
  id,
  ...alertRuleSpecSchema.parse(input),
}));

/** The site's grouping when nothing else is configured (Alertmanager's defaults). */
export const DEFAULT_ALERT_GROUPING: AlertGrouping = alertGroupingSchema.parse({});
