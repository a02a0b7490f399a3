import type { INestApplicationContext } from '@nestjs/common';
import {
  InstanceKind,
  Messages,
  type AlertStateChangedPayload,
  TargetKind,
  TargetStatus,
  type AlertRuleInput,
  type StatusChangedPayload,
} from '@fleetwatch/contracts';
import { closeSqlPool, createSqlPool, type SqlPool } from '@fleetwatch/persistence';
import { waitFor } from '@fleetwatch/testing';
import { count, startAggregator, statusUpdate, type TestSite } from '../../aggregator.int-helpers';
import { ALERT_EVALUATOR, ALERT_EVALUATOR_LEASE_NAME } from './alert-evaluation.providers';
import { EvaluatorFencedError, type AlertEvaluator } from './alert-evaluator.service';
import {
  configChanged,
  createAlertEvaluationSite,
  evaluatorOutsideModule,
  history,
  notified,
  putRule,
  putSilence,
  putWindow,
  storedAlert,
} from './alert-evaluation.int-helpers';

// Issue 18 must-show (evaluation side), with the real aggregator module: a target that goes DOWN fires after
// `for` and queues exactly one message per channel; it resolves and a resolved message follows; a silence
// suppresses, a maintenance window mutes while the status keeps changing; a restart while firing neither
// re-sends nor loses it; two aggregators evaluate and notify once; a replica that lost the lease cannot
// commit a decision (fencing).

jest.setTimeout(120_000);

const RULE = 'r-down';
const FOR_MS = 2000;
const CHANNELS = ['ch-a', 'ch-b'];
const instance = (name: string) => `instance:${name}`;

let site: TestSite;
const apps: INestApplicationContext[] = [];
/** alert.state-changed as consumed from a queue bound to it: message id and payload. */
const published: Array<{ id: string; payload: AlertStateChangedPayload }> = [];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Evaluator ticks of the aggregators started here (their lease holder's): numbered as they start; the newest done. */
let ticksStarted = 0;
let ticksDone = 0;
/** config.changed reloads asked of the evaluators started here (by their follower). */
let reloadsAsked = 0;
function instrument(app: INestApplicationContext): void {
  const evaluator = evaluatorOf(app);
  const tick = evaluator.tick.bind(evaluator);
  evaluator.tick = async () => {
    const n = ++ticksStarted;
    try {
      return await tick();
    } finally {
      ticksDone = Math.max(ticksDone, n);
    }
  };
  const onConfigChanged = evaluator.onConfigChanged.bind(evaluator);
  evaluator.onConfigChanged = () => {
    onConfigChanged();
    reloadsAsked++;
  };
}
/** Waits until `n` ticks that started after this call have completed (generous bound: a loaded box). */
async function ticks(n: number): Promise<void> {
  const mark = ticksStarted;
  await waitFor(() => ticksDone >= mark + n, { timeoutMs: 20_000, description: `${n} evaluator ticks` });
}
/**
 * Nothing more is decided: at least `minMs` (past the rules' 1 s group interval) and two whole ticks of the evaluator
 * (every due alert, repeat and group flush looked at twice) after this call — not a fixed sleep, which on a loaded box
 * may see fewer ticks.
 */
async function settled(minMs = 1500): Promise<void> {
  const until = Date.now() + minMs;
  await ticks(2);
  await sleep(Math.max(0, until - Date.now()));
}
/** Publishes config.changed for `areas` and waits until the evaluator was told and a tick after that reloaded it. */
async function reloaded(areas: Parameters<typeof configChanged>[1]): Promise<void> {
  const asked = reloadsAsked;
  await configChanged(site, areas);
  await waitFor(() => reloadsAsked > asked, { timeoutMs: 15_000, description: 'config.changed followed' });
  await ticks(1);
}
const down = (name: string) =>
  site.bus.publisher.publish(Messages.StatusUpdate, statusUpdate(name, 'exited', Date.now()));
const up = (name: string) =>
  site.bus.publisher.publish(Messages.StatusUpdate, statusUpdate(name, 'running', Date.now()));

async function start(): Promise<INestApplicationContext> {
  const app = await startAggregator(site.env);
  instrument(app);
  apps.push(app);
  return app;
}
async function stop(app: INestApplicationContext): Promise<void> {
  apps.splice(apps.indexOf(app), 1);
  await app.close();
}
/** The rule every test here evaluates (DOWN for FOR_MS), sending to `channels`. */
const ruleSpec = (channels: readonly string[]): AlertRuleInput => ({
  name: 'Instance down',
  condition: { type: 'status', statuses: [TargetStatus.Down] },
  for: `${FOR_MS / 1000}s`,
  severity: 'critical',
  annotations: { summary: '{{ target.name }} is down' },
  channels: [...channels],
  grouping: { groupBy: ['alertname', 'target'], groupWait: '0s', groupInterval: '1s' },
});

const evaluatorOf = (app: INestApplicationContext) => app.get<AlertEvaluator>(ALERT_EVALUATOR);
const epoch = async () =>
  count(site.pg, 'SELECT epoch AS n FROM alert_evaluator_epochs WHERE name = $1', [ALERT_EVALUATOR_LEASE_NAME]);

/** Messages per channel for one target: [statuses of ch-a, statuses of ch-b]. */
const perChannel = async (target: string) =>
  Promise.all(CHANNELS.map(async (c) => (await notified(site.pg, c, target)).map((n) => n.status)));

async function firing(target: string) {
  return waitFor(
    async () => {
      const a = await storedAlert(site.pg, RULE, target);
      return a?.state === 'firing' ? a : null;
    },
    { timeoutMs: 15_000, description: `${target} firing` },
  );
}

beforeAll(async () => {
  site = await createAlertEvaluationSite('alert-eval', (envelope) =>
    published.push({ id: envelope.id, payload: envelope.payload as AlertStateChangedPayload }),
  );
  await putRule(site.pg, RULE, ruleSpec(CHANNELS));
  await start();
  await waitFor(() => evaluatorOf(apps[0]).active, { timeoutMs: 15_000, description: 'evaluator active' });
});

afterAll(async () => {
  for (const app of [...apps].reverse()) await app.close().catch(() => undefined);
  await site?.dispose();
});

it('a target DOWN fires only after `for`, one message per channel; its recovery sends one resolved', async () => {
  await down('web-1');
  const pending = await waitFor(() => storedAlert(site.pg, RULE, instance('web-1')), { description: 'pending' });
  expect(pending.state).toBe('pending');
  expect(await perChannel(instance('web-1'))).toEqual([[], []]);

  const fired = await firing(instance('web-1'));
  const { rows } = await site.pg.query<{ active_at: Date }>('SELECT active_at FROM alert_states WHERE rule_id = $1', [
    RULE,
  ]);
  expect((fired.firedAt?.getTime() ?? 0) - rows[0].active_at.getTime()).toBeGreaterThanOrEqual(FOR_MS);
  await waitFor(async () => (await perChannel(instance('web-1'))).every((s) => s.length === 1), {
    description: 'one message per channel',
  });
  await settled(); // ticks, a group interval: nothing more
  expect(await perChannel(instance('web-1'))).toEqual([['firing'], ['firing']]);

  await up('web-1');
  await waitFor(async () => (await storedAlert(site.pg, RULE, instance('web-1')))?.state === 'resolved', {
    description: 'resolved',
  });
  await waitFor(async () => (await perChannel(instance('web-1'))).every((s) => s.length === 2), {
    description: 'resolved message',
  });
  await settled();
  expect(await perChannel(instance('web-1'))).toEqual([
    ['firing', 'resolved'],
    ['firing', 'resolved'],
  ]);

  // Its history (SPEC §7 states), each change published once as alert.state-changed (SPEC §3), by its event's id.
  expect(await history(site.pg, instance('web-1'))).toEqual(['inactive>pending', 'pending>firing', 'firing>resolved']);
  const { rows: events } = await site.pg.query<{ id: string }>(
    'SELECT id::text FROM alert_events WHERE target_id = $1 ORDER BY occurred_at, id',
    [instance('web-1')],
  );
  // At least once: a relay run and the decision's own publish may both send one (same id) — consumers de-duplicate.
  const ofWeb1 = () =>
    published.filter(
      (p, i) => p.payload.labels['target'] === instance('web-1') && published.findIndex((q) => q.id === p.id) === i,
    );
  await waitFor(() => ofWeb1().length >= 3, { description: 'three alert.state-changed' });
  expect(ofWeb1().map((p) => `${p.payload.from}>${p.payload.to}`)).toEqual([
    'inactive>pending',
    'pending>firing',
    'firing>resolved',
  ]);
  expect(ofWeb1().map((p) => p.id)).toEqual(events.map((e) => e.id));
  expect(ofWeb1()[0].payload).toMatchObject({
    ruleId: RULE,
    labels: { alertname: 'Instance down', severity: 'critical' },
  });
  expect(await count(site.pg, 'SELECT count(*) AS n FROM alert_event_outbox')).toBe(0);
});

it('a change committed but not published (a crash between commit and publish) is published by the relay', async () => {
  const [app] = apps;
  await stop(app);
  // What a decision's transaction leaves when the process dies before the broker confirms: the event and its outbox row.
  const { rows } = await site.pg.query<{ id: string }>(
    `WITH ins AS (
       INSERT INTO alert_events (id, rule_id, target_id, fingerprint, from_state, to_state, labels, value, occurred_at)
       VALUES (gen_random_uuid(), $1, $2, 'fp-crash', 'pending', 'firing', '{"alertname":"Instance down"}', 3, now())
       RETURNING id
     ), o AS (INSERT INTO alert_event_outbox (event_id) SELECT id FROM ins)
     SELECT id::text FROM ins`,
    [RULE, instance('crashed')],
  );
  await start();
  const seen = await waitFor(() => published.find((p) => p.id === rows[0].id), {
    timeoutMs: 20_000,
    description: 'the outbox relayed',
  });
  expect(seen.payload).toMatchObject({
    ruleId: RULE,
    fingerprint: 'fp-crash',
    from: 'pending',
    to: 'firing',
    value: 3,
  });
  await waitFor(async () => (await count(site.pg, 'SELECT count(*) AS n FROM alert_event_outbox')) === 0, {
    description: 'the outbox row dropped once confirmed',
  });
  await sleep(1500);
  expect(published.filter((p) => p.id === rows[0].id)).toHaveLength(1);
});

it('a silence suppresses the notification; the alert still fires', async () => {
  await putSilence(site.pg, {
    matchers: [{ name: 'target', op: '=', value: instance('web-2') }],
    startsAt: new Date(Date.now() - 60_000).toISOString(),
    endsAt: new Date(Date.now() + 3_600_000).toISOString(),
    createdBy: 'test',
    comment: 'planned',
  });
  await reloaded(['silences']); // reloaded at the next tick
  await down('web-2');
  await firing(instance('web-2'));
  await settled();
  expect(await perChannel(instance('web-2'))).toEqual([[], []]);
});

it('a silence made while the alert waits in its group (group_wait) keeps it back until the silence ends', async () => {
  const target = instance('web-9');
  await putRule(site.pg, 'r-wait', {
    name: 'Held back',
    selector: { targetIds: [target] },
    condition: { type: 'status', statuses: [TargetStatus.Down] },
    channels: ['ch-w'],
    grouping: { groupBy: ['alertname', 'target'], groupWait: '6s', groupInterval: '1s' },
  });
  // Published once the evaluator's own events queue is bound (unroutable until then, when this case runs alone).
  const asked = reloadsAsked;
  await waitFor(
    async () =>
      configChanged(site, ['rules']).then(
        () => true,
        () => false,
      ),
    {
      description: 'config.changed routed to the evaluator',
    },
  );
  await waitFor(() => reloadsAsked > asked, { timeoutMs: 15_000, description: 'config.changed followed' });
  await ticks(1); // the rule reloaded
  await down('web-9');
  // `for` 0 s: firing at once, its notification decided then; the message waits for group_wait.
  await waitFor(async () => (await storedAlert(site.pg, 'r-wait', target))?.state === 'firing', {
    description: 'web-9 firing',
  });
  const silencedAt = Date.now();
  await putSilence(site.pg, {
    matchers: [{ name: 'alertname', op: '=', value: 'Held back' }],
    startsAt: new Date(silencedAt - 1000).toISOString(),
    endsAt: new Date(silencedAt + 12_000).toISOString(),
    createdBy: 'test',
    comment: 'seen on the dashboard, being handled',
  });
  await configChanged(site, ['silences']);
  await sleep(Math.max(0, silencedAt + 9000 - Date.now())); // past group_wait, before the silence ends
  expect(await notified(site.pg, 'ch-w', target)).toEqual([]);
  // The silence ended and the alert still fires: now it is announced, once.
  await waitFor(async () => (await notified(site.pg, 'ch-w', target)).length > 0, {
    timeoutMs: 15_000,
    description: 'announced after the silence',
  });
  expect(Date.now()).toBeGreaterThanOrEqual(silencedAt + 12_000);
  await settled();
  expect((await notified(site.pg, 'ch-w', target)).map((n) => n.status)).toEqual(['firing']);
});

it('a maintenance window mutes notifications while the status keeps changing', async () => {
  await putWindow(site.pg, 'mw-web-3', {
    name: 'web-3 upgrade',
    scope: { targetIds: [instance('web-3')] },
    schedule: {
      type: 'once',
      startsAt: new Date(Date.now() - 60_000).toISOString(),
      endsAt: new Date(Date.now() + 3_600_000).toISOString(),
    },
    createdBy: 'test',
  });
  await reloaded(['maintenance']);
  await down('web-3');
  await firing(instance('web-3'));
  await up('web-3');
  await waitFor(async () => (await storedAlert(site.pg, RULE, instance('web-3')))?.state === 'resolved');
  await down('web-3');
  // Checks go on: every transition is recorded, none notified.
  await waitFor(
    async () =>
      (await count(
        site.pg,
        `SELECT count(*) AS n FROM status_events WHERE target_id = $1 AND location IS NULL AND to_status = 'DOWN'`,
        [instance('web-3')],
      )) === 2,
    { description: 'two DOWN transitions stored' },
  );
  await firing(instance('web-3'));
  await settled();
  expect(await perChannel(instance('web-3'))).toEqual([[], []]);
});

it('a restart while firing neither re-sends nor loses the alert', async () => {
  await down('web-4');
  const before = await firing(instance('web-4'));
  await waitFor(async () => (await perChannel(instance('web-4'))).every((s) => s.length === 1));
  const epochBefore = await epoch();

  await stop(apps[0]);
  const app = await start();
  await waitFor(() => evaluatorOf(app).active, { timeoutMs: 15_000, description: 'evaluator active again' });
  expect(await epoch()).toBeGreaterThan(epochBefore);
  await settled(2500);
  const after = await storedAlert(site.pg, RULE, instance('web-4'));
  expect(after).toEqual(before);
  expect(await perChannel(instance('web-4'))).toEqual([['firing'], ['firing']]);

  // Still evaluated after the restart: its recovery is sent once.
  await up('web-4');
  await waitFor(async () => (await perChannel(instance('web-4'))).every((s) => s.length === 2));
});

it('two aggregators: one evaluates, each message is queued once, and the other takes over', async () => {
  const second = await start();
  await sleep(2500);
  expect(apps.filter((a) => evaluatorOf(a).active)).toHaveLength(1);

  await down('web-5');
  await firing(instance('web-5'));
  await waitFor(async () => (await perChannel(instance('web-5'))).every((s) => s.length === 1));
  await settled();
  expect(await perChannel(instance('web-5'))).toEqual([['firing'], ['firing']]);

  const holder = apps.find((a) => evaluatorOf(a).active) ?? second;
  const other = holder === second ? apps[0] : second;
  await stop(holder);
  await waitFor(() => evaluatorOf(other).active, { timeoutMs: 15_000, description: 'the other takes over' });
  await up('web-5');
  await waitFor(async () => (await perChannel(instance('web-5'))).every((s) => s.length === 2));
  await settled();
  expect(await perChannel(instance('web-5'))).toEqual([
    ['firing', 'resolved'],
    ['firing', 'resolved'],
  ]);
});

it("a rule selecting pods fires for a pod that goes DOWN, not for a container (the instance's own kind)", async () => {
  await putRule(site.pg, 'r-pods', {
    name: 'Pod down',
    selector: { kinds: [InstanceKind.Pod] },
    condition: { type: 'status', statuses: [TargetStatus.Down] },
    severity: 'warning',
  });
  await reloaded(['rules']); // the evaluator reads the new rule
  await site.bus.publisher.publish(
    Messages.StatusUpdate,
    statusUpdate('pod-1', 'failed', Date.now(), { kind: InstanceKind.Pod }),
  );
  await down('box-1'); // a container
  await waitFor(async () => (await storedAlert(site.pg, 'r-pods', instance('pod-1')))?.state === 'firing', {
    timeoutMs: 15_000,
    description: 'the pod rule fires for the pod',
  });
  // The container went DOWN too (the catch-all rule says so) but is no pod.
  await firing(instance('box-1'));
  expect(await storedAlert(site.pg, 'r-pods', instance('box-1'))).toBeNull();
});

it('a channel added to a rule while its alert fires is told at once; the channels told already are not', async () => {
  await down('web-late');
  await firing(instance('web-late'));
  await waitFor(async () => (await perChannel(instance('web-late'))).every((s) => s.length === 1), {
    description: 'one message per channel',
  });
  // The pager attached to the incident in progress: it heard of it at the next repeat (4 h) before.
  await putRule(site.pg, RULE, ruleSpec([...CHANNELS, 'ch-c']));
  await configChanged(site, ['rules']);
  await waitFor(async () => (await notified(site.pg, 'ch-c', instance('web-late'))).length === 1, {
    timeoutMs: 15_000,
    description: 'the added channel told',
  });
  await settled();
  expect((await notified(site.pg, 'ch-c', instance('web-late'))).map((n) => n.status)).toEqual(['firing']);
  expect(await perChannel(instance('web-late'))).toEqual([['firing'], ['firing']]);
  await up('web-late');
  await waitFor(async () => (await notified(site.pg, 'ch-c', instance('web-late'))).length === 2, {
    timeoutMs: 15_000,
    description: 'the added channel told it resolved',
  });
});

it('a channel added while the firing alert is silenced is told when the silence ends by itself', async () => {
  const target = instance('web-hush');
  await down('web-hush');
  await firing(target);
  await waitFor(async () => (await perChannel(target)).every((s) => s.length === 1), {
    description: 'one message per channel',
  });
  const silencedAt = Date.now();
  await putSilence(site.pg, {
    matchers: [{ name: 'target', op: '=~', value: '.*web-hush.*' }],
    startsAt: new Date(silencedAt - 1000).toISOString(),
    endsAt: new Date(silencedAt + 8000).toISOString(),
    createdBy: 'test',
    comment: 'being handled',
  });
  await configChanged(site, ['silences']);
  // The pager attached during the silence: nothing while it lasts...
  await putRule(site.pg, RULE, ruleSpec([...CHANNELS, 'ch-c', 'ch-d']));
  await configChanged(site, ['rules']);
  await sleep(Math.max(0, silencedAt + 6000 - Date.now()));
  expect(await notified(site.pg, 'ch-d', target)).toEqual([]);
  // ...then, the silence over (no reload: it ends by itself), told it fires — not at the next repeat (4 h).
  await waitFor(async () => (await notified(site.pg, 'ch-d', target)).length > 0, {
    timeoutMs: 15_000,
    description: 'the added channel told after the silence',
  });
  expect(Date.now()).toBeGreaterThanOrEqual(silencedAt + 8000);
  await settled();
  expect((await notified(site.pg, 'ch-d', target)).map((n) => n.status)).toEqual(['firing']);
  expect(await perChannel(target)).toEqual([['firing'], ['firing']]);
  await putRule(site.pg, RULE, ruleSpec([...CHANNELS, 'ch-c']));
  await configChanged(site, ['rules']);
});

it("a rule's groupBy changed while its alert fires: its old group is told it ended, the new one announces it, once", async () => {
  const target = instance('web-regroup');
  /** ch-a's messages for the target: `old`/`new` grouping (the new one groups by severity too) and status. */
  const messages = async () => {
    const { rows } = await site.pg.query<{ group_key: string; status: string }>(
      `SELECT group_key, min(status) AS status FROM (
         SELECT id::text AS id, group_key, notification->>'status' AS status, created_at AS t
         FROM alert_delivery_queue WHERE channel_id = 'ch-a' AND group_key LIKE $1
         UNION ALL
         SELECT delivery_id::text, group_key, status, at FROM alert_deliveries
         WHERE channel_id = 'ch-a' AND group_key LIKE $1 AND NOT test
       ) x GROUP BY id, group_key ORDER BY min(t), id`,
      [`%${JSON.stringify(['target', target])}%`],
    );
    return rows.map((r) => `${r.group_key.includes('"severity"') ? 'new' : 'old'} ${r.status}`).sort();
  };
  await down('web-regroup');
  await firing(target);
  await waitFor(async () => (await messages()).length === 1, { description: 'told under the old grouping' });
  const regrouped = { ...ruleSpec([...CHANNELS, 'ch-c']) };
  regrouped.grouping = { ...regrouped.grouping, groupBy: ['alertname', 'target', 'severity'] };
  await putRule(site.pg, RULE, regrouped);
  await configChanged(site, ['rules']);
  await waitFor(async () => (await messages()).length === 3, {
    timeoutMs: 15_000,
    description: 'the old group closed, the new one told',
  });
  await settled();
  expect(await messages()).toEqual(['new firing', 'old firing', 'old resolved']);
  expect((await storedAlert(site.pg, RULE, target))?.state).toBe('firing');
  // Its recovery: one "resolved", from the group that carries it now.
  await up('web-regroup');
  await waitFor(async () => (await messages()).length === 4, { timeoutMs: 15_000, description: 'resolved' });
  await settled();
  expect(await messages()).toEqual(['new firing', 'new resolved', 'old firing', 'old resolved']);
  await putRule(site.pg, RULE, ruleSpec([...CHANNELS, 'ch-c']));
  await configChanged(site, ['rules']);
});

describe('fencing', () => {
  let pool: SqlPool;
  const evaluator = () => evaluatorOutsideModule(site, pool);

  beforeAll(async () => {
    for (const app of [...apps]) await stop(app);
    pool = createSqlPool(site.database.databaseUrl);
  });
  afterAll(async () => closeSqlPool(pool));

  it('a replica whose epoch was superseded commits nothing; the current holder does', async () => {
    const { rows } = await site.pg.query<{ seq: string }>('SELECT seq::text FROM target_states WHERE target_id = $1', [
      instance('web-1'),
    ]);
    const a = evaluator();
    const b = evaluator();
    await a.tick(); // a takes the lease's epoch
    await b.tick(); // then b does: a is fenced from now on
    await site.pg.query(`UPDATE target_states SET status = 'DOWN' WHERE target_id = $1`, [instance('web-1')]);
    const event: StatusChangedPayload = {
      targetId: instance('web-1'),
      kind: TargetKind.Instance,
      location: null,
      from: TargetStatus.Up,
      to: TargetStatus.Down,
      reason: 'test',
      at: new Date().toISOString(),
      sequence: Number(rows[0].seq) + 1,
    };
    const statesBefore = await count(site.pg, 'SELECT count(*) AS n FROM alert_states');
    const historyOf = () => history(site.pg, instance('web-1'));
    const historyBefore = await historyOf();
    a.onStatusChanged(event);
    await expect(a.evaluateEvents()).rejects.toBeInstanceOf(EvaluatorFencedError);
    expect(a.active).toBe(false);
    expect((await storedAlert(site.pg, RULE, instance('web-1')))?.state).toBe('resolved');
    // A fenced decision leaves no history either.
    expect(await historyOf()).toEqual(historyBefore);

    b.onStatusChanged(event);
    await b.evaluateEvents();
    expect((await storedAlert(site.pg, RULE, instance('web-1')))?.state).toBe('pending');
    expect(await count(site.pg, 'SELECT count(*) AS n FROM alert_states')).toBe(statesBefore);
    expect(await historyOf()).toEqual([...historyBefore, 'resolved>pending']);
  });
});
