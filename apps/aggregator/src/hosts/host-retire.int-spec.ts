import type { INestApplicationContext } from '@nestjs/common';
import { Messages, TargetKind, TargetStatus, uuidv7, type HostMetricsPayload } from '@fleetwatch/contracts';
import { LiveKeys, LiveStateStore } from '@fleetwatch/live-state';
import { publishRequest } from '@fleetwatch/messaging';
import { waitFor } from '@fleetwatch/testing';
import { count, createIsolatedTestSite, flushPrefix, startAggregator, type TestSite } from '../aggregator.int-helpers';
import { alertsOf, configChanged, putRule, storedAlert } from '../alerts/evaluation/alert-evaluation.int-helpers';
import { ALERT_EVALUATOR } from '../alerts/evaluation/alert-evaluation.providers';
import type { AlertEvaluator } from '../alerts/evaluation/alert-evaluator.service';
import { LiveStateBoot } from '../live/live-state.boot';

// A host taken out of service (host.retire, what DELETE /api/v1/hosts/{id} publishes), on the real bus and the real
// aggregator: folded through the host's shard in order with its samples, the host leaves live state (target, indexes,
// deadline, latest sample), its 'Target stale' alert resolves through the removal's UNKNOWN events and its metric
// alert does not come back on its old sample; its history stays; a redelivery changes nothing; a sample stamped
// before the retirement does not bring it back, one stamped after does (a new life, its events numbered on); a
// rebuild of a flushed Redis restores neither the retired host nor its sample.

jest.setTimeout(120_000);

const STALE_RULE = 'r-stale';
const DISK_RULE = 'r-disk';

let site: TestSite;
let app: INestApplicationContext;
let store: LiveStateStore;

beforeAll(async () => {
  const name = 'agg-host-retire';
  site = await createIsolatedTestSite(name, { SWEEP_INTERVAL_MS: '200', AGGREGATOR_BATCH_WAIT_MS: '20' });
  // The shipped 'Target stale' and 'Host disk almost full' rules, as a site starts with them.
  await putRule(site.pg, STALE_RULE, {
    name: 'Target stale',
    condition: { type: 'status', statuses: [TargetStatus.Stale] },
    for: '0s',
    severity: 'warning',
  });
  await putRule(site.pg, DISK_RULE, {
    name: 'Host disk almost full',
    selector: { kinds: [TargetKind.Host] },
    condition: { type: 'metric', metric: { kind: 'host_disk_pct' }, op: 'above', threshold: 90 },
    for: '0s',
    severity: 'warning',
  });
  app = await startAggregator(site.env);
  await waitFor(() => app.get<AlertEvaluator>(ALERT_EVALUATOR).active, {
    timeoutMs: 15_000,
    description: 'evaluator active',
  });
  store = new LiveStateStore(site.redis, { keyPrefix: site.redisPrefix });
});
afterAll(async () => {
  await app?.close();
  await site?.dispose();
});

function sample(hostId: string, at: number, diskPct = 50): HostMetricsPayload {
  return {
    hostId,
    location: 'lab-2',
    sampledAt: new Date(at).toISOString(),
    intervalSeconds: 1,
    cpu: { usagePct: 5, cores: 4, load1: 0.5, load5: 0.4, load15: 0.3 },
    memory: { totalBytes: 8e9, usedBytes: 1e9 },
    disks: [{ mount: '/', totalBytes: 1e11, usedBytes: diskPct * 1e9 }],
    network: [],
    gpus: [],
    system: { hostname: hostId, platform: 'linux' },
  };
}

const publishSample = (payload: HostMetricsPayload, id: string = uuidv7()) =>
  site.bus.publisher.publishMany([publishRequest(Messages.HostMetrics, payload, { id })]);
const retire = (hostId: string, at: number, id: string = uuidv7()) =>
  site.bus.publisher.publishMany([
    publishRequest(
      Messages.HostRetire,
      { hostId, at: new Date(at).toISOString(), actor: { id: 'user:1', name: 'ops' } },
      { id },
    ),
  ]);

const events = async (targetId: string) =>
  (
    await site.pg.query<{
      location: string | null;
      from_status: string;
      to_status: string;
      sequence: string;
      reason: string;
    }>(
      'SELECT location, from_status, to_status, sequence::text, reason FROM status_events WHERE target_id = $1 ORDER BY sequence',
      [targetId],
    )
  ).rows.map((e) => [e.location, e.from_status, e.to_status, Number(e.sequence), e.reason] as const);
const stateOf = async (targetId: string) =>
  (
    await site.pg.query<{ status: string; deleted_at: Date | null; seq: string }>(
      'SELECT status, deleted_at, seq::text FROM target_states WHERE target_id = $1',
      [targetId],
    )
  ).rows[0];
const rawRows = (hostId: string) =>
  count(site.pg, 'SELECT count(*) AS n FROM host_metrics WHERE host_id = $1', [hostId]);
const listedHosts = async () => (await store.listTargets({ kind: [TargetKind.Host] }, 100)).items.map((t) => t.id);

describe('aggregator: a host retired (host.retire)', () => {
  const host = 'rack-1/gpu 7';
  const target = `host:${host}`;
  const retirementId = uuidv7();
  let retiredAt = 0;

  it('a STALE host with a full disk: out of live state, its alerts resolved and not back, its history kept', async () => {
    // A full disk fires the metric rule while samples arrive; then the host stops and turns STALE.
    await publishSample(sample(host, Date.now() - 2000, 95));
    await publishSample(sample(host, Date.now(), 95));
    await waitFor(
      async () => (await alertsOf(site.pg, DISK_RULE)).some((a) => a.target === target && a.state === 'firing'),
      {
        description: 'disk alert firing',
        timeoutMs: 20_000,
      },
    );
    await waitFor(async () => (await store.getTarget(target))?.status === TargetStatus.Stale, {
      description: 'host STALE',
      timeoutMs: 30_000,
    });
    await waitFor(async () => (await storedAlert(site.pg, STALE_RULE, target))?.state === 'firing', {
      description: "'Target stale' firing",
      timeoutMs: 20_000,
    });
    // A full evaluation (a configuration reload) resolves the disk alert: a STALE host's last sample measures nothing.
    const diskFiring = async () =>
      (await alertsOf(site.pg, DISK_RULE)).filter((a) => a.target === target && a.state === 'firing');
    await configChanged(site, ['rules']);
    await waitFor(async () => (await diskFiring()).length === 0, {
      description: 'disk alert resolved while STALE',
      timeoutMs: 20_000,
    });
    expect(await rawRows(host)).toBe(2);
    const before = await events(target);
    expect(before.map(([l, f, t]) => [l, f, t])).toEqual([
      ['lab-2', 'UNKNOWN', 'UP'],
      [null, 'UNKNOWN', 'UP'],
      ['lab-2', 'UP', 'STALE'],
      [null, 'UP', 'STALE'],
    ]);

    retiredAt = Date.now();
    await retire(host, retiredAt, retirementId);
    const state = await waitFor(
      async () => {
        const s = await stateOf(target);
        return s?.deleted_at ? s : null;
      },
      { description: 'tombstone in target_states', timeoutMs: 20_000 },
    );
    expect(state).toMatchObject({ status: 'UNKNOWN' });
    expect(state.deleted_at?.getTime()).toBe(retiredAt);
    expect((await events(target)).slice(4)).toEqual([
      ['lab-2', 'STALE', 'UNKNOWN', 5, 'retired by ops (user:1)'],
      [null, 'STALE', 'UNKNOWN', 6, 'retired by ops (user:1)'],
    ]);
    // Live state: no target, in no index, no deadline, no latest sample.
    await waitFor(async () => (await store.getTarget(target)) === null, { description: 'out of live state' });
    expect(await listedHosts()).not.toContain(target);
    expect(await site.redis.zscore(LiveKeys.deadlines, `${target}\u0000lab-2`)).toBeNull();
    expect(await store.getHostMetrics(host)).toBeNull();
    // The evaluator learnt it from the UNKNOWN events: 'Target stale' resolves; the disk alert stays resolved
    // (its last sample is gone from live state: it would fire again on a figure days old).
    await waitFor(async () => (await storedAlert(site.pg, STALE_RULE, target))?.state !== 'firing', {
      description: "'Target stale' resolved",
      timeoutMs: 20_000,
    });
    // The host is UNKNOWN in the evaluator's view until its next full read of target_states: the metric rule reads
    // the host's figures meanwhile, and the old sample must not fire it again.
    await new Promise((r) => setTimeout(r, 3000));
    expect(await diskFiring()).toEqual([]);
    // History: the raw samples and the record of the retirement.
    expect(await rawRows(host)).toBe(2);
    const rows = await site.pg.query<{ message_id: string; actor_id: string; actor_name: string }>(
      'SELECT message_id::text, actor_id, actor_name FROM host_retirements WHERE host_id = $1',
      [host],
    );
    expect(rows.rows).toEqual([{ message_id: retirementId, actor_id: 'user:1', actor_name: 'ops' }]);
  });

  it('a redelivered retirement, a second one, and a sample stamped before the retirement change nothing', async () => {
    await retire(host, retiredAt, retirementId);
    await retire(host, Date.now());
    const late = uuidv7();
    await publishSample(sample(host, retiredAt - 500), late);
    await waitFor(async () => (await rawRows(host)) === 3, {
      description: 'late sample stored raw',
      timeoutMs: 20_000,
    });
    await waitFor(async () => (await count(site.pg, 'SELECT count(*) AS n FROM host_retirements')) === 2, {
      description: 'the second retirement recorded',
      timeoutMs: 20_000,
    });
    expect(await events(target)).toHaveLength(6);
    expect((await stateOf(target)).deleted_at?.getTime()).toBe(retiredAt);
    expect(await store.getTarget(target)).toBeNull();
    expect(await store.getHostMetrics(host)).toBeNull();
  });

  it('a sample stamped after the retirement brings the host back, its events numbered on', async () => {
    const at = Date.now();
    // A long interval: back UP, it stays UP through the checks below (1 s: STALE 8 s after it was heard).
    await publishSample({ ...sample(host, at), intervalSeconds: 600 });
    const back = await waitFor(
      async () => {
        const t = await store.getTarget(target);
        return t?.status === TargetStatus.Up ? t : null;
      },
      { description: 'host back UP', timeoutMs: 20_000 },
    );
    expect(back.locations['lab-2']?.status).toBe(TargetStatus.Up);
    expect(await listedHosts()).toContain(target);
    expect((await stateOf(target)).deleted_at).toBeNull();
    expect((await events(target)).slice(6).map(([l, f, t, s]) => [l, f, t, s])).toEqual([
      ['lab-2', 'UNKNOWN', 'UP', 7],
      [null, 'UNKNOWN', 'UP', 8],
    ]);
    const json = await waitFor(() => store.getHostMetrics(host), { description: 'its sample in live state' });
    expect((JSON.parse(json) as HostMetricsPayload).sampledAt).toBe(new Date(at).toISOString());
  });

  it('the first retirement redelivered after the host came back does not retire it again', async () => {
    const toUnknown = async () => (await events(target)).filter(([, , to]) => to === 'UNKNOWN');
    expect(await toUnknown()).toHaveLength(2);
    await retire(host, retiredAt, retirementId);
    // Behind it in the host's shard queue: a sample stamped before the revival (stored raw, changes nothing). Once it
    // is stored, the redelivery before it has been folded.
    const rows = await rawRows(host);
    await publishSample(sample(host, retiredAt + 1));
    await waitFor(async () => (await rawRows(host)) === rows + 1, { description: 'marker sample stored raw' });
    expect((await stateOf(target)).deleted_at).toBeNull();
    expect(await store.getTarget(target)).not.toBeNull();
    expect(await toUnknown()).toHaveLength(2);
  });

  it('a host retired while UP with a full disk: its metric alert resolves at once, not at the 5-minute reload', async () => {
    const full = 'lab-host-full';
    // A long interval: the host stays UP (a STALE host's figures are not read), so only the retirement takes them.
    await publishSample({ ...sample(full, Date.now(), 97), intervalSeconds: 600 });
    const diskFiring = async () =>
      (await alertsOf(site.pg, DISK_RULE)).some((a) => a.target === `host:${full}` && a.state === 'firing');
    await waitFor(diskFiring, { description: 'disk alert firing', timeoutMs: 20_000 });
    expect((await store.getTarget(`host:${full}`))?.status).toBe(TargetStatus.Up);
    await retire(full, Date.now());
    await waitFor(async () => (await stateOf(`host:${full}`))?.deleted_at != null, { description: 'retired' });
    // The evaluator reads target_states again only every 5 minutes; its figures are gone from live state now.
    await waitFor(async () => !(await diskFiring()), { description: 'disk alert resolved', timeoutMs: 20_000 });
  });

  it('a rebuild of a flushed Redis restores neither a retired host nor its sample', async () => {
    const gone = 'lab-host-gone';
    await publishSample(sample(gone, Date.now()));
    await waitFor(async () => (await store.getHostMetrics(gone)) !== null, { description: 'second host sampled' });
    await retire(gone, Date.now());
    await waitFor(async () => (await stateOf(`host:${gone}`))?.deleted_at != null, { description: 'retired' });
    await waitFor(async () => (await store.getHostMetrics(gone)) === null, { description: 'its sample dropped' });

    await flushPrefix(site.redis, site.redisPrefix);
    // Rebuilt by this call, or already by the sweeper's rebuild job (every SWEEP_INTERVAL_MS): either way, once the
    // host that came back is there with its sample, the rebuild is done.
    await app.get(LiveStateBoot).check();
    await waitFor(async () => (await store.getHostMetrics(host)) !== null, { description: 'live state rebuilt' });
    expect(await store.getTarget(`host:${gone}`)).toBeNull();
    expect(await store.getHostMetrics(gone)).toBeNull();
    // The host that came back is restored, with its sample.
    expect(await store.getTarget(target)).toMatchObject({ kind: TargetKind.Host });
    expect(await store.getHostMetrics(host)).not.toBeNull();
  });
});
