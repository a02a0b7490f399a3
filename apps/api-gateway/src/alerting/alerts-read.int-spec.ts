import { randomUUID } from 'node:crypto';
import {
  TargetKind as K,
  TargetStatus as S,
  type AlertHistoryResponse,
  type AlertListResponse,
  type ApiErrorBody,
  type DeliveryLogResponse,
  type StatusSummaryResponse,
} from '@fleetwatch/contracts';
import type { TargetWrite } from '@fleetwatch/live-state';
import {
  AlertConfigRepository,
  AlertDeliveriesRepository,
  AlertEventsRepository,
  AlertStatesRepository,
  closeSqlPool,
  createSqlPool,
  runInSqlTransaction,
  SilencesRepository,
  type DeliveryAttempt,
  type SqlPool,
  type StoredAlertState,
} from '@fleetwatch/persistence';
import * as testing from '@fleetwatch/testing';
import { ADMIN_PASSWORD, type GatewayHarness, startGateway } from '../int-spec.helpers';

// The alert pages' reads (issue 18) over rows the aggregator would have written: alert states (pending,
// firing, resolved), a silence and a maintenance window muting two of them, and delivery log rows. Who may
// read (401 / viewer), the filters, paging to the end, bad queries named (400), and the overview's count.

jest.setTimeout(60_000);

let gw: GatewayHarness;
let pool: SqlPool;
let admin: string;
let viewer: string;
const NOW = Date.now();

function target(id: string, tags: string[]): TargetWrite {
  return {
    id,
    kind: K.Check,
    name: `name of ${id}`,
    status: S.Down,
    previousStatus: null,
    since: NOW - 60_000,
    lastSeen: NOW - 1000,
    lastLatencyMs: null,
    lifecycle: null,
    tags,
    labels: {},
    seq: 1,
    locations: {
      'eu-west-1': {
        status: S.Down,
        observedAt: NOW - 1000,
        lastSeen: NOW - 1000,
        latencyMs: null,
        detail: null,
        lifecycle: null,
      },
    },
  };
}

function alert(
  fingerprint: string,
  ruleId: string,
  targetId: string,
  state: StoredAlertState['state'],
  activeAgoMs: number,
  severity = 'warning',
): StoredAlertState {
  const activeAt = NOW - activeAgoMs;
  return {
    key: `${ruleId}\u0000${targetId}`,
    ruleId,
    targetId,
    fingerprint,
    state,
    labels: { alertname: `rule ${ruleId}`, severity, rule_id: ruleId, target: targetId },
    value: state === 'pending' ? 97.5 : null,
    activeAt,
    firedAt: state === 'pending' ? null : activeAt + 60_000,
    resolvedAt: state === 'resolved' ? NOW - 1000 : null,
    lastSentAt: state === 'firing' ? activeAt + 60_000 : null,
  };
}

function attempt(over: Partial<DeliveryAttempt>): DeliveryAttempt {
  return {
    deliveryId: randomUUID(),
    channelId: 'ops-hook',
    channelType: 'webhook',
    groupKey: 'ops-hook:{}',
    status: 'firing',
    attempt: 1,
    outcome: 'delivered',
    httpStatus: 200,
    error: null,
    durationMs: 12,
    nextAttemptAt: null,
    test: false,
    at: NOW,
    ...over,
  };
}

beforeAll(async () => {
  gw = await startGateway(testing, 'alerts-read');
  admin = await gw.login('admin', ADMIN_PASSWORD);
  await gw.request('POST', '/api/v1/users', {
    token: admin,
    body: { username: 'viewer', password: 'viewer-password', role: 'viewer' },
  });
  viewer = await gw.login('viewer', 'viewer-password');
  await gw.live.writeTargets([target('check:web', ['db']), target('check:api', [])]);
  pool = createSqlPool(gw.database.databaseUrl);
  const states = new AlertStatesRepository(pool);
  await runInSqlTransaction(pool, async (tx) => {
    await states.saveStates(
      tx,
      [
        // web: firing 10 min, under the db maintenance window
        alert('aaaaaaaaaaaaaaa1', 'default.target-down', 'check:web', 'firing', 600_000),
        // api: firing 5 min, critical: silenced
        alert('aaaaaaaaaaaaaaa2', 'default.target-down', 'check:api', 'firing', 300_000, 'critical'),
        // api: pending for 30 s, not muted
        alert('aaaaaaaaaaaaaaa3', 'host-cpu', 'check:api', 'pending', 30_000),
        // resolved: not listed
        alert('aaaaaaaaaaaaaaa4', 'host-cpu', 'check:web', 'resolved', 900_000),
      ],
      [],
    );
    const silences = new SilencesRepository(pool);
    await silences.insert(
      tx,
      {
        id: randomUUID(),
        spec: {
          matchers: [{ name: 'severity', op: '=', value: 'critical' }],
          startsAt: new Date(NOW - 3_600_000).toISOString(),
          endsAt: new Date(NOW + 3_600_000).toISOString(),
          createdBy: 'admin',
          comment: 'known outage',
        },
      },
      1,
    );
    const config = new AlertConfigRepository(pool);
    await config.insertNew(
      tx,
      'maintenanceWindows',
      [
        {
          id: 'db-upgrade',
          name: 'db upgrade',
          hash: 'x',
          spec: {
            name: 'db upgrade',
            scope: { targetIds: [], tags: ['db'], sites: [] },
            schedule: {
              type: 'once',
              startsAt: new Date(NOW - 3_600_000).toISOString(),
              endsAt: new Date(NOW + 3_600_000).toISOString(),
            },
            createdBy: 'admin',
          },
        },
      ],
      1,
    );
    await config.insertNew(
      tx,
      'channels',
      [{ id: 'ops-hook', name: 'Ops hook', hash: 'y', type: 'webhook', spec: { type: 'webhook', name: 'Ops hook' } }],
      1,
    );
  });
  const log = new AlertDeliveriesRepository(pool);
  const rows: DeliveryAttempt[] = [
    attempt({
      at: NOW - 5000,
      alerts: [
        { id: 'aaaaaaaaaaaaaaa1', ruleName: 'rule default.target-down', targetId: 'check:web', status: 'firing' },
      ],
      alertCount: 1,
    }),
    attempt({
      at: NOW - 4000,
      channelId: 'pager',
      channelType: 'pagerduty',
      outcome: 'retrying',
      httpStatus: 503,
      error: 'HTTP 503',
      nextAttemptAt: NOW + 30_000,
    }),
    attempt({ at: NOW - 3000, channelId: 'pager', channelType: 'pagerduty', outcome: 'failed', attempt: 2 }),
    attempt({ at: NOW - 2000, test: true, groupKey: 'test', alerts: [] }),
    attempt({ at: NOW - 1000, channelId: 'gone', channelType: 'unknown', outcome: 'skipped', error: 'channel gone' }),
  ];
  for (const r of rows) await log.logAttempt(r);
});

afterAll(async () => {
  if (pool) await closeSqlPool(pool);
  await gw?.close();
});

const get = <T>(path: string, token: string | null = viewer) =>
  gw.request<T>('GET', path, { token: token ?? undefined });

describe('GET /api/v1/alerts', () => {
  it('401 without a token; a viewer reads', async () => {
    expect((await get('/api/v1/alerts', null)).status).toBe(401);
    expect((await get('/api/v1/alerts/deliveries', null)).status).toBe(401);
    expect((await get('/api/v1/alerts')).status).toBe(200);
  });

  it('lists pending and firing alerts newest first, each with since, duration and what mutes it', async () => {
    const res = await get<AlertListResponse>('/api/v1/alerts');
    expect(res.status).toBe(200);
    expect(res.body.counts).toEqual({ pending: 1, firing: 2 });
    expect(res.body.items.map((a) => [a.id, a.state])).toEqual([
      ['aaaaaaaaaaaaaaa3', 'pending'],
      ['aaaaaaaaaaaaaaa2', 'firing'],
      ['aaaaaaaaaaaaaaa1', 'firing'],
    ]);
    const [pending, silenced, maintained] = res.body.items;
    expect(pending).toMatchObject({
      ruleId: 'host-cpu',
      ruleName: 'rule host-cpu',
      targetId: 'check:api',
      targetName: 'name of check:api',
      value: 97.5,
      since: new Date(NOW - 30_000).toISOString(),
      firedAt: null,
      muted: null,
      silenced: false,
    });
    expect(pending.durationSeconds).toBeGreaterThanOrEqual(30);
    expect(pending.durationSeconds).toBeLessThan(90);
    expect(silenced).toMatchObject({ severity: 'critical', silenced: true, muted: { kind: 'silence' } });
    // firing since firedAt (4 min ago), not since activeAt
    expect(silenced.since).toBe(new Date(NOW - 240_000).toISOString());
    expect(maintained).toMatchObject({
      silenced: false,
      muted: { kind: 'maintenance', id: 'db-upgrade' },
      lastNotifiedAt: new Date(NOW - 540_000).toISOString(),
    });
  });

  it('filters by state, rule and target, and pages to the end', async () => {
    const firing = await get<AlertListResponse>('/api/v1/alerts?state=firing');
    expect(firing.body.items.map((a) => a.id)).toEqual(['aaaaaaaaaaaaaaa2', 'aaaaaaaaaaaaaaa1']);
    expect(firing.body.counts).toEqual({ pending: 1, firing: 2 });
    const byRule = await get<AlertListResponse>('/api/v1/alerts?ruleId=host-cpu&state=pending,firing');
    expect(byRule.body.items.map((a) => a.id)).toEqual(['aaaaaaaaaaaaaaa3']);
    const byTarget = await get<AlertListResponse>('/api/v1/alerts?targetId=check:web');
    expect(byTarget.body.items.map((a) => a.id)).toEqual(['aaaaaaaaaaaaaaa1']);

    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: { body: AlertListResponse } = await get<AlertListResponse>(
        `/api/v1/alerts?limit=1${cursor ? `&cursor=${cursor}` : ''}`,
      );
      expect(page.body.items.length).toBeLessThanOrEqual(1);
      seen.push(...page.body.items.map((a) => a.id));
      cursor = page.body.nextCursor;
    } while (cursor);
    expect(seen).toEqual(['aaaaaaaaaaaaaaa3', 'aaaaaaaaaaaaaaa2', 'aaaaaaaaaaaaaaa1']);
  });

  it.each([
    ['state=resolved', ['state.0']],
    ['limit=0', ['limit']],
    ['cursor=1_nothex', ['cursor']],
    // A time past 9999 goes to Postgres with a six-digit year, which it refuses: was a 500.
    ['cursor=999999999999999_0123456789abcdef', ['cursor']],
    ['bogus=1', ['(body)']],
  ])('a bad query (%s) is a 400 naming it', async (query, paths) => {
    const res = await get<ApiErrorBody>(`/api/v1/alerts?${query}`);
    expect(res.status).toBe(400);
    expect(res.body.error.issues?.map((i) => i.path)).toEqual(paths);
  });

  it("the overview's firing count is the real one", async () => {
    const res = await get<StatusSummaryResponse>('/api/v1/status/summary');
    expect(res.body.alerts).toEqual({ firing: 2 });
  });
});

describe('GET /api/v1/alerts/deliveries', () => {
  it('newest first, with the channel name now, the alerts carried, and test-sends marked', async () => {
    const res = await get<DeliveryLogResponse>('/api/v1/alerts/deliveries');
    expect(res.status).toBe(200);
    expect(res.body.items.map((d) => [d.channelId, d.outcome, d.test])).toEqual([
      ['gone', 'skipped', false],
      ['ops-hook', 'delivered', true],
      ['pager', 'failed', false],
      ['pager', 'retrying', false],
      ['ops-hook', 'delivered', false],
    ]);
    const [gone, test, , retrying, first] = res.body.items;
    expect(gone).toMatchObject({ channelName: null, channelType: 'unknown', error: 'channel gone' });
    expect(test).toMatchObject({ channelName: 'Ops hook', alerts: [], alertCount: 0 });
    expect(retrying).toMatchObject({ httpStatus: 503, nextAttemptAt: new Date(NOW + 30_000).toISOString() });
    expect(first).toMatchObject({
      channelName: 'Ops hook',
      status: 'firing',
      attempt: 1,
      alertCount: 1,
      alerts: [
        { id: 'aaaaaaaaaaaaaaa1', ruleName: 'rule default.target-down', targetId: 'check:web', status: 'firing' },
      ],
      at: new Date(NOW - 5000).toISOString(),
    });
  });

  it('filters by channel, outcome and test, and pages to the end', async () => {
    const pager = await get<DeliveryLogResponse>('/api/v1/alerts/deliveries?channelId=pager');
    expect(pager.body.items.map((d) => d.outcome)).toEqual(['failed', 'retrying']);
    const bad = await get<DeliveryLogResponse>('/api/v1/alerts/deliveries?outcome=failed,retrying,skipped');
    expect(bad.body.items.map((d) => d.channelId)).toEqual(['gone', 'pager', 'pager']);
    const tests = await get<DeliveryLogResponse>('/api/v1/alerts/deliveries?test=true');
    expect(tests.body.items.map((d) => d.test)).toEqual([true]);
    const real = await get<DeliveryLogResponse>('/api/v1/alerts/deliveries?test=false&channelId=ops-hook');
    expect(real.body.items.map((d) => d.test)).toEqual([false]);

    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: { body: DeliveryLogResponse } = await get<DeliveryLogResponse>(
        `/api/v1/alerts/deliveries?limit=2${cursor ? `&cursor=${cursor}` : ''}`,
      );
      seen.push(...page.body.items.map((d) => d.channelId));
      cursor = page.body.nextCursor;
    } while (cursor);
    expect(seen).toEqual(['gone', 'ops-hook', 'pager', 'pager', 'ops-hook']);
  });

  it.each([
    ['outcome=lost', ['outcome.0']],
    ['test=yes', ['test']],
    ['cursor=-1', ['cursor']],
    ['channelId=has%20space', ['channelId']],
  ])('a bad query (%s) is a 400 naming it', async (query, paths) => {
    const res = await get<ApiErrorBody>(`/api/v1/alerts/deliveries?${query}`);
    expect(res.status).toBe(400);
    expect(res.body.error.issues?.map((i) => i.path)).toEqual(paths);
  });
});

describe('GET /api/v1/alerts/history', () => {
  const labels = (rule: string, target: string) => ({ alertname: `rule ${rule}`, target, severity: 'critical' });
  beforeAll(async () => {
    // As the evaluator records them, in its decision's transactions: one alert's episode, another's pending cleared.
    const events = new AlertEventsRepository(pool);
    const changes = [
      ['default.target-down', 'check:web', 'inactive', 'pending', NOW - 600_000, undefined, undefined],
      ['default.target-down', 'check:web', 'pending', 'firing', NOW - 540_000, undefined, undefined],
      ['host-cpu', 'check:api', 'inactive', 'pending', NOW - 300_000, undefined, undefined],
      ['host-cpu', 'check:api', 'pending', 'inactive', NOW - 200_000, 'condition_cleared', undefined],
      // Its series missing for 20 minutes (two intervals of a check run every 10).
      ['default.target-down', 'check:web', 'firing', 'resolved', NOW - 100_000, 'series_absent', NOW - 1_300_000],
    ] as const;
    for (const [rule, target, from, to, at, endReason, absentSince] of changes)
      await runInSqlTransaction(pool, (tx) =>
        events.insertMany(tx, [
          {
            ruleId: rule,
            targetId: target,
            fingerprint: rule === 'host-cpu' ? 'bbbbbbbbbbbbbbb1' : 'bbbbbbbbbbbbbbb2',
            from,
            to,
            labels: labels(rule, target),
            value: rule === 'host-cpu' ? 97.5 : null,
            at,
            endReason,
            absentSince,
          },
        ]),
      );
  });

  it('401 without a token; every change newest first, with the rule, target, states and value', async () => {
    expect((await get('/api/v1/alerts/history', null)).status).toBe(401);
    const res = await get<AlertHistoryResponse>('/api/v1/alerts/history');
    expect(res.status).toBe(200);
    expect(res.body.items.map((e) => [e.targetId, `${e.from}>${e.to}`])).toEqual([
      ['check:web', 'firing>resolved'],
      ['check:api', 'pending>inactive'],
      ['check:api', 'inactive>pending'],
      ['check:web', 'pending>firing'],
      ['check:web', 'inactive>pending'],
    ]);
    expect(res.body.items[1]).toMatchObject({
      ruleId: 'host-cpu',
      ruleName: 'rule host-cpu',
      severity: 'critical',
      fingerprint: 'bbbbbbbbbbbbbbb1',
      value: 97.5,
      at: new Date(NOW - 200_000).toISOString(),
      endReason: 'condition_cleared',
    });
    // Why each ended: the figures back, or the data gone; changes that ended nothing carry none.
    expect(res.body.items.map((e) => e.endReason)).toEqual(['series_absent', 'condition_cleared', null, null, null]);
    // And as a person reads it, with how long the data was missing when the alert ended without it.
    expect(res.body.items.map((e) => e.endReasonText)).toEqual([
      'series absent (no data for 20 min)',
      'condition cleared',
      null,
      null,
      null,
    ]);
    expect(res.body.nextCursor).toBeNull();
  });

  it('filters by rule, target and since, and pages to the end', async () => {
    const byRule = await get<AlertHistoryResponse>('/api/v1/alerts/history?ruleId=host-cpu');
    expect(byRule.body.items.map((e) => e.to)).toEqual(['inactive', 'pending']);
    const byTarget = await get<AlertHistoryResponse>('/api/v1/alerts/history?targetId=check:web');
    expect(byTarget.body.items.map((e) => e.to)).toEqual(['resolved', 'firing', 'pending']);
    const since = encodeURIComponent(new Date(NOW - 250_000).toISOString());
    const recent = await get<AlertHistoryResponse>(`/api/v1/alerts/history?since=${since}`);
    expect(recent.body.items.map((e) => e.to)).toEqual(['resolved', 'inactive']);
    const ancient = await get<AlertHistoryResponse>('/api/v1/alerts/history?since=0001-01-01T00:00:00Z');
    expect(ancient.status).toBe(200);
    expect(ancient.body.items).toHaveLength(5);
    // An offset taking the last instant of 9999 into the year 10000 (Postgres refuses that text): nothing, not a 500.
    for (const far of ['9999-12-31T23:59:59-01:00', '9999-12-31T23:00:00-23:59']) {
      const future = await get<AlertHistoryResponse>(`/api/v1/alerts/history?since=${encodeURIComponent(far)}`);
      expect([far, future.status, future.body.items]).toEqual([far, 200, []]);
    }
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: { body: AlertHistoryResponse } = await get<AlertHistoryResponse>(
        `/api/v1/alerts/history?limit=2${cursor ? `&cursor=${cursor}` : ''}`,
      );
      seen.push(...page.body.items.map((e) => `${e.from}>${e.to}`));
      cursor = page.body.nextCursor;
    } while (cursor);
    expect(seen).toEqual([
      'firing>resolved',
      'pending>inactive',
      'inactive>pending',
      'pending>firing',
      'inactive>pending',
    ]);
  });

  it.each([
    ['since=yesterday', ['since']],
    ['cursor=12_x', ['cursor']],
    ['limit=0', ['limit']],
    ['ruleId=has%20space', ['ruleId']],
    ['state=firing', ['(body)']],
  ])('a bad query (%s) is a 400 naming it', async (query, paths) => {
    const res = await get<ApiErrorBody>(`/api/v1/alerts/history?${query}`);
    expect(res.status).toBe(400);
    expect(res.body.error.issues?.map((i) => i.path)).toEqual(paths);
  });
});
