import { createHash } from 'node:crypto';
import type { INestApplicationContext } from '@nestjs/common';
import { Messages, TargetStatus, type AlertRuleInput } from '@fleetwatch/contracts';
import { fingerprintOf } from '@fleetwatch/alerting';
import { waitFor } from '@fleetwatch/testing';
import { startAggregator, statusUpdate, type TestSite } from '../../aggregator.int-helpers';
import { ALERT_EVALUATOR } from './alert-evaluation.providers';
import type { AlertEvaluator } from './alert-evaluator.service';
import { createAlertEvaluationSite, putRule } from './alert-evaluation.int-helpers';

// An upgrade across the fingerprint change (U+00FF as separator, UTF-8 C3 BF → the byte 0xff): every label set's
// fingerprint differs between the two versions. Alerts pending or firing when the new version takes over were stored
// with the old one (alert_states, the notification groups). They keep it: no resolved and new firing pair, no second
// message, no `for` counted again — the engine carries an alert's fingerprint in its state for the whole episode.

jest.setTimeout(120_000);

const CHANNELS = ['ch-a', 'ch-b'];
const instance = (name: string) => `instance:${name}`;

/** The fingerprint the version before wrote: U+00FF (UTF-8 C3 BF) between names and values. */
function oldFingerprint(labels: Readonly<Record<string, string>>): string {
  const h = createHash('sha256');
  for (const name of Object.keys(labels).sort()) h.update(name).update('\u00ff').update(labels[name]).update('\u00ff');
  return h.digest('hex').slice(0, 16);
}

let site: TestSite;
let app: INestApplicationContext | undefined;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const down = (name: string) =>
  site.bus.publisher.publish(Messages.StatusUpdate, statusUpdate(name, 'exited', Date.now()));
const up = (name: string) =>
  site.bus.publisher.publish(Messages.StatusUpdate, statusUpdate(name, 'running', Date.now()));

const NAMES: Record<string, string> = { 'r-fast': 'Instance down 1s', 'r-slow': 'Instance down 8s' };
const rule = (forS: number): AlertRuleInput => ({
  name: `Instance down ${forS}s`,
  condition: { type: 'status', statuses: [TargetStatus.Down] },
  for: `${forS}s`,
  severity: 'critical',
  channels: [...CHANNELS],
  grouping: { groupBy: ['alertname', 'target'], groupWait: '0s', groupInterval: '1s' },
});

async function start(): Promise<void> {
  app = await startAggregator(site.env);
  const ev = app.get<AlertEvaluator>(ALERT_EVALUATOR);
  await waitFor(() => ev.active, { timeoutMs: 15_000, description: 'evaluator active' });
}
async function stop(): Promise<void> {
  await app?.close();
  app = undefined;
}

interface Row {
  fingerprint: string;
  state: string;
  labels: Record<string, string>;
  active_at: Date;
  fired_at: Date | null;
}
async function row(ruleId: string, target: string): Promise<Row | undefined> {
  const { rows } = await site.pg.query<Row>(
    'SELECT fingerprint, state, labels, active_at, fired_at FROM alert_states WHERE rule_id = $1 AND target_id = $2',
    [ruleId, target],
  );
  return rows[0];
}

/** One rule's alert history on a target as `from>to`, oldest first. */
async function history(ruleId: string, target: string): Promise<string[]> {
  const { rows } = await site.pg.query<{ t: string }>(
    `SELECT from_state || '>' || to_state AS t FROM alert_events WHERE rule_id = $1 AND target_id = $2
     ORDER BY occurred_at, id`,
    [ruleId, target],
  );
  return rows.map((r) => r.t);
}

/** What the version before left: the alert's state, events and groups with its fingerprint of then. */
async function asStoredByOldVersion(ruleId: string, target: string): Promise<{ old: string; now: string }> {
  const r = await row(ruleId, target);
  if (!r) throw new Error('no stored alert');
  const old = oldFingerprint(r.labels);
  expect(old).not.toBe(r.fingerprint); // the two versions differ for every label set
  await site.pg.query(
    `UPDATE alert_states SET fingerprint = $2, state_json = replace(state_json, $1, $2) WHERE fingerprint = $1`,
    [r.fingerprint, old],
  );
  await site.pg.query(`UPDATE alert_events SET fingerprint = $2 WHERE fingerprint = $1`, [r.fingerprint, old]);
  await site.pg.query(
    `UPDATE alert_notification_groups SET group_json = replace(group_json, $1, $2) WHERE group_json LIKE '%' || $1 || '%'`,
    [r.fingerprint, old],
  );
  return { old, now: r.fingerprint };
}

/** LIKE patterns of the group keys of one rule's alert on a target (the key holds the group labels as JSON pairs). */
const groupOf = (ruleId: string, target: string) => [
  `%${JSON.stringify(['alertname', NAMES[ruleId]])}%`,
  `%${JSON.stringify(['target', target])}%`,
];

/** The fingerprints one rule's groups of a target hold (their alerts' keys). */
async function groupFingerprints(ruleId: string, target: string): Promise<string[]> {
  const { rows } = await site.pg.query<{ group_json: string }>(
    'SELECT group_json FROM alert_notification_groups WHERE group_key LIKE $1 AND group_key LIKE $2 ORDER BY group_key',
    groupOf(ruleId, target),
  );
  return rows.flatMap((r) => Object.keys((JSON.parse(r.group_json) as { alerts: Record<string, unknown> }).alerts));
}

/** The statuses of the messages of one rule's group of a target, per channel (queued or already attempted). */
async function perChannel(ruleId: string, target: string): Promise<string[][]> {
  const of = groupOf(ruleId, target);
  return Promise.all(
    CHANNELS.map(async (c) => {
      const { rows } = await site.pg.query<{ status: string }>(
        `SELECT min(status) AS status FROM (
           SELECT id::text AS id, notification->>'status' AS status, created_at AS t
           FROM alert_delivery_queue WHERE channel_id = $1 AND group_key LIKE $2 AND group_key LIKE $3
           UNION ALL
           SELECT delivery_id::text, status, at FROM alert_deliveries
           WHERE channel_id = $1 AND group_key LIKE $2 AND group_key LIKE $3 AND NOT test
         ) x GROUP BY id ORDER BY min(t), id`,
        [c, ...of],
      );
      return rows.map((r) => r.status);
    }),
  );
}

beforeAll(async () => {
  site = await createAlertEvaluationSite('alert-fp-upgrade', () => undefined);
  await putRule(site.pg, 'r-fast', rule(1));
  await putRule(site.pg, 'r-slow', rule(8));
  await start();
});

afterAll(async () => {
  await app?.close().catch(() => undefined);
  await site?.dispose();
});

it('an alert firing across the upgrade keeps its fingerprint: no second page, one resolved, one group entry', async () => {
  const t = instance('fp-firing');
  await down('fp-firing');
  await waitFor(async () => (await row('r-fast', t))?.state === 'firing', { timeoutMs: 15_000 });
  await waitFor(async () => (await perChannel('r-fast', t)).every((s) => s.length === 1), { timeoutMs: 15_000 });

  await stop();
  const { old, now } = await asStoredByOldVersion('r-fast', t);
  expect(now).toBe(fingerprintOf((await row('r-fast', t))?.labels ?? {})); // what the new version computes for it
  await start();
  await sleep(3500); // ticks (1 s), group intervals: nothing to say

  expect(await perChannel('r-fast', t)).toEqual([['firing'], ['firing']]);
  expect((await row('r-fast', t))?.fingerprint).toBe(old);
  expect(await history('r-fast', t)).toEqual(['inactive>pending', 'pending>firing']);
  expect(await groupFingerprints('r-fast', t)).toEqual([old, old]);

  await up('fp-firing');
  await waitFor(async () => (await perChannel('r-fast', t)).every((s) => s.length === 2), { timeoutMs: 15_000 });
  await sleep(2000);
  expect(await perChannel('r-fast', t)).toEqual([
    ['firing', 'resolved'],
    ['firing', 'resolved'],
  ]);
  expect(await history('r-fast', t)).toEqual(['inactive>pending', 'pending>firing', 'firing>resolved']);
  const { rows } = await site.pg.query<{ fingerprint: string }>(
    'SELECT DISTINCT fingerprint FROM alert_events WHERE rule_id = $1 AND target_id = $2',
    ['r-fast', t],
  );
  expect(rows.map((r) => r.fingerprint)).toEqual([old]);
});

it('an alert pending across the upgrade fires after its `for` from when it began, with its fingerprint', async () => {
  const t = instance('fp-pending');
  await down('fp-pending');
  await waitFor(async () => (await row('r-slow', t))?.state === 'pending', { timeoutMs: 15_000 });
  const before = await row('r-slow', t);
  expect(before?.state).toBe('pending');

  await stop();
  const { old } = await asStoredByOldVersion('r-slow', t);
  await start();
  await waitFor(async () => (await row('r-slow', t))?.state === 'firing', { timeoutMs: 20_000 });

  const after = await row('r-slow', t);
  expect(after?.fingerprint).toBe(old);
  expect(after?.active_at.getTime()).toBe(before?.active_at.getTime()); // `for` not counted again
  expect(await history('r-slow', t)).toEqual(['inactive>pending', 'pending>firing']);
  await waitFor(async () => (await perChannel('r-slow', t)).every((s) => s.length === 1), { timeoutMs: 15_000 });
  await sleep(2000);
  expect(await perChannel('r-slow', t)).toEqual([['firing'], ['firing']]);
  expect(await groupFingerprints('r-slow', t)).toEqual([old, old]);
});
