// Shared by the alert evaluation integration specs: a site of their own following alert.state-changed, an evaluator
// built outside the aggregator module, configuration rows written as the configuration owner writes them (validated
// with the shared contract), config.changed as it publishes it, and reads of what the evaluator decided
// (alert_states) and queued (alert_delivery_queue, or the delivery log once sent).
import { createHash, randomUUID } from 'node:crypto';
import {
  alertRuleSpecSchema,
  ExchangeName,
  maintenanceWindowSpecSchema,
  Messages,
  RoutingKey,
  silenceSpecSchema,
  type AlertRuleInput,
  type Envelope,
  type MaintenanceWindowInput,
  type SilenceInput,
} from '@fleetwatch/contracts';
import { LiveStateStore } from '@fleetwatch/live-state';
import { createLogger } from '@fleetwatch/observability';
import {
  AlertConfigRepository,
  AlertDeliveriesRepository,
  AlertEvaluationReaderRepository,
  AlertEventsRepository,
  AlertStatesRepository,
  TargetStatesRepository,
  type SqlPool,
} from '@fleetwatch/persistence';
import { createIsolatedTestSite, type SqlClient, type TestSite } from '../../aggregator.int-helpers';
import { AlertConfigLoader } from './alert-config.loader';
import { ALERT_EVALUATOR_LEASE_NAME } from './alert-evaluation.providers';
import { AlertEvaluator } from './alert-evaluator.service';
import { AlertEventsRelay } from './alert-events.relay';
import { AlertMetricsReader } from './alert-metrics.reader';

/**
 * A site of the spec's own (database, vhost, Redis prefix; AGGREGATOR_BATCH_WAIT_MS 5) where every
 * alert.state-changed published is given to `onStateChanged`, from a queue `test.<name>.alert-state-changed`
 * bound before this resolves.
 */
export async function createAlertEvaluationSite(
  name: string,
  onStateChanged: (envelope: Envelope) => void,
): Promise<TestSite> {
  const site = await createIsolatedTestSite(name, { AGGREGATOR_BATCH_WAIT_MS: '5' });
  try {
    await site.bus.consumer
      .consume(
        {
          name: `test.${name}.alert-state-changed`,
          bindings: [{ exchange: ExchangeName.Events, routingKey: RoutingKey.AlertStateChanged }],
        },
        async (envelope: Envelope) => onStateChanged(envelope),
      )
      .waitUntilActive(15_000);
  } catch (e) {
    await site.dispose();
    throw e;
  }
  return site;
}

/**
 * An evaluator built as the aggregator module builds it, outside the module (no lifecycle, no delivery worker): on
 * `pool` and the site's Redis and bus, logging nothing; `now` is its clock (a test's own, or the wall clock);
 * `resyncMs` how often a tick is a full one (1: every tick).
 */
export function evaluatorOutsideModule(
  site: TestSite,
  pool: SqlPool,
  options: { externalURL?: string; now?: () => number; resyncMs?: number } = {},
): AlertEvaluator {
  const store = new LiveStateStore(site.redis, { keyPrefix: site.redisPrefix });
  return new AlertEvaluator(
    new AlertConfigLoader(new AlertConfigRepository(pool), new AlertEvaluationReaderRepository(pool)),
    new AlertStatesRepository(pool),
    new AlertDeliveriesRepository(pool),
    new TargetStatesRepository(pool),
    new AlertMetricsReader(store, new AlertEvaluationReaderRepository(pool)),
    createLogger('aggregator', 'silent', process.stderr),
    {
      holder: 'test',
      site: 'test',
      externalURL: options.externalURL ?? '',
      leaseName: ALERT_EVALUATOR_LEASE_NAME,
      resyncMs: options.resyncMs ?? 60_000,
      now: options.now ?? Date.now,
    },
    new AlertEventsRelay(site.bus.publisher, new AlertEventsRepository(pool), createLogger('aggregator', 'silent')),
  );
}

let version = 1;
const hash = (v: unknown) => createHash('sha256').update(JSON.stringify(v)).digest('hex');

export async function putRule(pg: SqlClient, id: string, input: AlertRuleInput): Promise<void> {
  const spec = alertRuleSpecSchema.parse(input);
  await pg.query(
    `INSERT INTO alert_rules (id, name, spec, content_hash, version) VALUES ($1, $2, $3::jsonb, $4, $5)
     ON CONFLICT (id) DO UPDATE SET spec = EXCLUDED.spec, content_hash = EXCLUDED.content_hash, version = EXCLUDED.version`,
    [id, spec.name, JSON.stringify(spec), hash(spec), version++],
  );
}

export async function putSilence(pg: SqlClient, input: SilenceInput): Promise<string> {
  const spec = silenceSpecSchema.parse(input);
  const id = randomUUID();
  await pg.query(
    `INSERT INTO silences (id, spec, starts_at, ends_at, created_by, version) VALUES ($1::uuid, $2::jsonb, $3, $4, $5, $6)`,
    [id, JSON.stringify(spec), spec.startsAt, spec.endsAt, spec.createdBy, version++],
  );
  return id;
}

export async function putWindow(pg: SqlClient, id: string, input: MaintenanceWindowInput): Promise<void> {
  const spec = maintenanceWindowSpecSchema.parse(input);
  await pg.query(
    `INSERT INTO maintenance_windows (id, name, spec, content_hash, version) VALUES ($1, $2, $3::jsonb, $4, $5)`,
    [id, spec.name, JSON.stringify(spec), hash(spec), version++],
  );
}

/** config.changed as the sync-orchestrator publishes it after a write. */
export async function configChanged(site: TestSite, areas: Array<'rules' | 'silences' | 'maintenance'>): Promise<void> {
  await site.bus.publisher.publish(Messages.ConfigChanged, {
    version: version++,
    hash: hash(areas).slice(0, 64),
    areas,
    actor: 'test',
    origin: 'local',
  });
}

export interface Notified {
  id: string;
  status: string;
}

/**
 * Messages queued for a channel (of one target's group when the rule groups by target), oldest first:
 * still in the queue, or already attempted — the delivery worker of this aggregator logs each attempt
 * with the message's status under its delivery id (and removes it from the queue once done).
 */
export async function notified(pg: SqlClient, channelId: string, targetId?: string): Promise<Notified[]> {
  // Groups by target: the group key holds the group labels as JSON pairs.
  const like = targetId ? `%${JSON.stringify(['target', targetId])}%` : '%';
  const { rows } = await pg.query<{ id: string; status: string }>(
    `SELECT id, min(status) AS status FROM (
       SELECT id::text AS id, notification->>'status' AS status, created_at AS t
       FROM alert_delivery_queue WHERE channel_id = $1 AND group_key LIKE $2
       UNION ALL
       SELECT delivery_id::text, status, at FROM alert_deliveries
       WHERE channel_id = $1 AND group_key LIKE $2 AND NOT test
     ) x GROUP BY id ORDER BY min(t), id`,
    [channelId, like],
  );
  return rows;
}

export interface StoredAlert {
  state: string;
  firedAt: Date | null;
  lastSentAt: Date | null;
  labels: Record<string, string>;
}

/** The stored state of a (rule, target) alert without series labels; null: inactive. */
export async function storedAlert(pg: SqlClient, ruleId: string, targetId: string): Promise<StoredAlert | null> {
  const { rows } = await pg.query<{
    state: string;
    fired_at: Date | null;
    last_sent_at: Date | null;
    labels: Record<string, string>;
  }>('SELECT state, fired_at, last_sent_at, labels FROM alert_states WHERE rule_id = $1 AND target_id = $2', [
    ruleId,
    targetId,
  ]);
  const r = rows[0];
  return r ? { state: r.state, firedAt: r.fired_at, lastSentAt: r.last_sent_at, labels: r.labels } : null;
}

/** The stored states of every alert of a rule, by target. */
export async function alertsOf(pg: SqlClient, ruleId: string): Promise<Array<{ target: string; state: string }>> {
  const { rows } = await pg.query<{ target_id: string; state: string }>(
    'SELECT target_id, state FROM alert_states WHERE rule_id = $1 ORDER BY target_id, alert_key',
    [ruleId],
  );
  return rows.map((r) => ({ target: r.target_id, state: r.state }));
}

/** A target's alert history as `from>to`, oldest first (alert_events). */
export async function history(pg: SqlClient, targetId: string): Promise<string[]> {
  const { rows } = await pg.query<{ t: string }>(
    `SELECT from_state || '>' || to_state AS t FROM alert_events WHERE target_id = $1 ORDER BY occurred_at, id`,
    [targetId],
  );
  return rows.map((r) => r.t);
}
