import type { ServerResponse } from 'node:http';
import type { MemberPollRecord } from '@fleetwatch/contracts';
import type { FleetSitesRepository } from '@fleetwatch/persistence';
import { loadSyncConfig, type SyncConfig } from '../config';
import { BudgetFullError, ByteBudget, MAX_REPORT_BYTES, ReportTooLargeError } from './byte-budget';
import { FleetPoller, type MemberRecordStore } from './fleet-poller';
import { createMemberAgent, pollMember } from './member-client';
import { pollerOptions } from './fleet.service';
import { loadLeaderConfig, type LeaderMember } from './leader-config';
import {
  memberReport,
  memberSnapshot,
  startMemberServer,
  type MemberHandler,
  type MemberServer,
} from './member-server.spec-helpers';

// The leader's poll cycle against members on a real HTTP server (the poller's own undici agent): the in-flight byte
// budget shared by a cycle's answers, a 200 whose body is `null`, the cache read counted within the overall timeout,
// and FLEET_POLL_MEMBER_TIMEOUT_MS / FLEET_POLL_MAX_INFLIGHT_BYTES through the service's configuration.

jest.setTimeout(20_000);

const MiB = 1024 * 1024;
/** A valid snapshot of about `padBytes` bytes. */
const snapshot = (site: string, padBytes = 0) =>
  JSON.stringify(memberSnapshot(site, [{ key: 'web', type: 'http', pad: 'x'.repeat(padBytes) }]));

const sites = { recordPolls: () => Promise.resolve() } as unknown as FleetSitesRepository;

function memoryCache(): { cache: MemberRecordStore; stored: Map<string, MemberPollRecord> } {
  const stored = new Map<string, MemberPollRecord>();
  return {
    stored,
    cache: {
      getMany: (names) => Promise.resolve(new Map([...stored].filter(([n]) => names.includes(n)))),
      setMany: (records) => {
        for (const [n, r] of records) stored.set(n, r);
        return Promise.resolve();
      },
    },
  };
}

let handler: MemberHandler = () => undefined;
let server: MemberServer;
let base: string;
const pollers: FleetPoller[] = [];

beforeAll(async () => {
  server = await startMemberServer((name, path, req, res) => handler(name, path, req, res));
  base = server.base;
});

afterAll(async () => {
  for (const p of pollers) await p.close();
  await server.close();
});

const members = (names: string[]): LeaderMember[] =>
  loadLeaderConfig(JSON.stringify(names.map((name) => ({ name, url: `${base}/${name}` }))), {});

const json = (res: ServerResponse, status: number, body: string) =>
  void res
    .writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
    .end(body);

function poller(cache: MemberRecordStore, options: { maxInflightBytes?: number; memberTimeoutMs?: number } = {}) {
  const p = new FleetPoller(cache, sites, { concurrency: 50, timeoutMs: 10_000, memberTimeoutMs: 5_000, ...options });
  pollers.push(p);
  return p;
}

describe('ByteBudget: bytes taken as they arrive, given back once', () => {
  it('takes chunks that fit, refuses (taking nothing) one that does not, and gives an answer’s bytes back once', () => {
    const budget = new ByteBudget(800);
    const a = budget.open('bulk');
    const b = budget.open('bulk');
    a.take(600);
    b.take(90);
    expect(() => b.take(11)).toThrow(BudgetFullError);
    expect(budget.heldBytes).toBe(690);
    b.take(10);
    expect(budget.heldBytes).toBe(700);
    a.release();
    a.release();
    expect(budget.heldBytes).toBe(100);
    b.release();
    expect(budget.heldBytes).toBe(0);
    expect(budget.peakHeldBytes).toBe(700);
  });

  it('snapshots and flow hold at most seven eighths: the last eighth is kept for status reports', () => {
    const budget = new ByteBudget(800);
    expect(budget.bulkLimit).toBe(700);
    const snap = budget.open('bulk');
    snap.take(650);
    expect(() => budget.open('bulk').take(51)).toThrow(
      "the poll cycle's in-flight byte budget (800 bytes, FLEET_POLL_MAX_INFLIGHT_BYTES; 700 of them for snapshots and flow, the rest kept for status reports) is full",
    );
    // Reports of 25 bytes (one report's limit here) take the rest of the budget: the 50 bytes snapshots left, the 100
    // kept for reports.
    const reports = Array.from({ length: 6 }, () => budget.open('report'));
    for (const report of reports) report.take(25);
    expect(budget.heldBytes).toBe(800);
    expect(() => budget.open('report').take(1)).toThrow(
      "the poll cycle's in-flight byte budget (800 bytes, FLEET_POLL_MAX_INFLIGHT_BYTES) is full",
    );
    for (const report of reports) report.release();
    // Reports' bytes given back leave the bulk share as it was: 50 bytes of it free.
    expect(() => budget.open('bulk').take(51)).toThrow(BudgetFullError);
    budget.open('bulk').take(50);
    expect(budget.heldBytes).toBe(700);
  });

  it('one report holds at most a quarter of the reports’ share (at most 1 MiB): past it, it fails and gives all back', () => {
    expect(new ByteBudget(64 * MiB).reportLimit).toBe(MAX_REPORT_BYTES);
    expect(MAX_REPORT_BYTES).toBe(MiB);
    expect(new ByteBudget(8 * MiB).reportLimit).toBe(MiB / 4);
    const budget = new ByteBudget(800);
    expect(budget.reportLimit).toBe(25);
    expect(budget.limitOf('report')).toBe(25);
    const report = budget.open('report');
    report.take(20);
    expect(() => report.take(6)).toThrow(ReportTooLargeError);
    expect(() => report.take(6)).toThrow('the status report exceeded 25 bytes');
    expect(budget.heldBytes).toBe(20);
    report.release();
    expect(budget.heldBytes).toBe(0);
  });
});

describe('a cycle’s answers share an in-flight byte budget (not only 8 MB each)', () => {
  it('six members’ 3 MB snapshots sent at once: never more than the 8 MiB budget held; those that do not fit fail saying so', async () => {
    const names = ['m1', 'm2', 'm3', 'm4', 'm5', 'm6'];
    // Every snapshot is held back until all six are asked for, then sent at once: without a budget the leader reads
    // them side by side (some 18 MB held together).
    const waiting: Array<() => void> = [];
    handler = (name, path, _req, res) => {
      if (path === '/api/v1/status/report') return json(res, 200, JSON.stringify(memberReport(name)));
      if (path !== '/api/v1/system/snapshot/current') return json(res, 404, '{}');
      waiting.push(() => json(res, 200, snapshot(name, 3 * MiB)));
      if (waiting.length === names.length) for (const send of waiting.splice(0)) send();
    };
    const { cache, stored } = memoryCache();
    const r = await poller(cache, { maxInflightBytes: 8 * MiB }).cycle(members(names));
    expect(r.peakInflightBytes).toBeGreaterThanOrEqual(3 * MiB);
    expect(r.peakInflightBytes).toBeLessThanOrEqual(8 * MiB);
    const full =
      /the poll cycle's in-flight byte budget \(8388608 bytes, FLEET_POLL_MAX_INFLIGHT_BYTES; 7340032 of them for snapshots and flow, the rest kept for status reports\) is full/;
    let read = 0;
    for (const n of names) {
      const record = stored.get(n);
      if (record?.good?.snapshot?.site === n && record.attempt.error === null) read++;
      else expect(record?.attempt.error).toMatch(full);
    }
    // Whatever the interleaving, two 3 MB snapshots fit side by side: answers fail only while others hold the room.
    expect(read).toBeGreaterThanOrEqual(2);
  });

  it('an answer whose Content-Length is larger than the whole budget is refused, saying so; the report still counts', async () => {
    handler = (name, path, _req, res) => {
      if (path === '/api/v1/status/report') return json(res, 200, JSON.stringify(memberReport(name)));
      if (path === '/api/v1/system/snapshot/current') return json(res, 200, snapshot(name, 2 * MiB));
      return json(res, 404, '{}');
    };
    const { cache, stored } = memoryCache();
    const r = await poller(cache, { maxInflightBytes: 1 * MiB }).cycle(members(['big']));
    expect(r).toMatchObject({ ok: 1, failed: 0 });
    expect(stored.get('big')?.attempt.error).toMatch(
      /^snapshot not read \(the last one kept\): GET \/api\/v1\/system\/snapshot\/current: answer of \d+ bytes cannot fit the poll cycle's in-flight byte budget \(1048576 bytes, FLEET_POLL_MAX_INFLIGHT_BYTES; 917504 of them for snapshots and flow, the rest kept for status reports\)$/,
    );
    expect(stored.get('big')?.good?.report?.site).toBe('big');
  });

  it('a snapshot announcing more than the snapshots’ share (but less than the budget) is refused unread; the last one kept', async () => {
    let second = false;
    handler = (name, path, _req, res) => {
      if (path === '/api/v1/status/report') return json(res, 200, JSON.stringify(memberReport(name)));
      // 0.95 MiB: over the 7/8 MiB share of a 1 MiB budget, under the budget itself.
      if (path === '/api/v1/system/snapshot/current')
        return json(res, 200, snapshot(name, second ? Math.floor(0.95 * MiB) : 1_000));
      return json(res, 404, '{}');
    };
    const { cache, stored } = memoryCache();
    const p = poller(cache, { maxInflightBytes: 1 * MiB });
    await p.cycle(members(['mid']));
    const before = stored.get('mid')?.good?.snapshot;
    expect(before?.hash).toEqual(expect.any(String));
    second = true;
    const r = await p.cycle(members(['mid']));
    expect(r).toMatchObject({ ok: 1, failed: 0 });
    expect(stored.get('mid')?.attempt.error).toMatch(
      /^snapshot not read \(the last one kept\): GET \/api\/v1\/system\/snapshot\/current: answer of \d+ bytes cannot fit the poll cycle's in-flight byte budget \(1048576 bytes, FLEET_POLL_MAX_INFLIGHT_BYTES; 917504 of them for snapshots and flow, the rest kept for status reports\)$/,
    );
    // Refused before its body was read: only the report's bytes were ever held.
    expect(r.peakInflightBytes).toBeLessThan(64 * 1024);
    expect(stored.get('mid')?.good?.snapshot).toEqual(before);
  });

  it('a chunk that does not fit fails its answer at once, saying the budget is full; the last snapshot is kept', async () => {
    let hogSent: () => void = () => undefined;
    const hogHasSent = new Promise<void>((r) => (hogSent = r));
    let second = false;
    handler = (name, path, _req, res) => {
      if (path === '/api/v1/status/report') return json(res, 200, JSON.stringify(memberReport(name)));
      if (path !== '/api/v1/system/snapshot/current') return json(res, 404, '{}');
      if (name === 'hog') {
        // No Content-Length: the snapshots' share of the budget (7/8 MiB) less 1,000 bytes of a body, then nothing
        // (until its member timeout).
        res.writeHead(200, { 'content-type': 'application/json' });
        return void res.write('{' + ' '.repeat((7 * MiB) / 8 - 1_001), () => hogSent());
      }
      if (!second) return json(res, 200, snapshot(name, 200_000));
      // The second cycle: sent well after hog's bytes (taken as they arrive, held until hog's member timeout).
      void hogHasSent.then(() => setTimeout(() => json(res, 200, snapshot(name, 200_000)), 500));
    };
    const { cache, stored } = memoryCache();
    const p = poller(cache, { maxInflightBytes: 1 * MiB, memberTimeoutMs: 4_000 });
    expect(await p.cycle(members(['small']))).toMatchObject({ ok: 1, failed: 0 });
    const before = stored.get('small')?.good?.snapshot;
    expect(before?.site).toBe('small');
    second = true;
    const r = await p.cycle(members(['hog', 'small']));
    expect(r).toMatchObject({ ok: 2, failed: 0 });
    expect(stored.get('small')?.attempt.error).toBe(
      "snapshot not read (the last one kept): GET /api/v1/system/snapshot/current: the poll cycle's in-flight byte budget (1048576 bytes, FLEET_POLL_MAX_INFLIGHT_BYTES; 917504 of them for snapshots and flow, the rest kept for status reports) is full: answer dropped, read again next cycle",
    );
    expect(stored.get('small')?.good?.snapshot).toEqual(before);
    expect(stored.get('hog')?.attempt.error).toContain('no answer within 4000 ms (member timeout)');
    expect(r.peakInflightBytes).toBeLessThanOrEqual(MiB);
  });

  it('a member stalling mid-body holds only the bytes it sent, not its Content-Length', async () => {
    handler = (name, path, _req, res) => {
      if (path === '/api/v1/status/report') return json(res, 200, JSON.stringify(memberReport(name)));
      if (path !== '/api/v1/system/snapshot/current') return json(res, 404, '{}');
      if (name === 'hog') {
        // Announces 3 MiB, sends a byte, then nothing: it holds that byte until its member timeout.
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': 3 * MiB });
        return void res.write('{');
      }
      setTimeout(() => json(res, 200, snapshot(name, 3 * MiB)), 150);
    };
    const { cache, stored } = memoryCache();
    const r = await poller(cache, { maxInflightBytes: 4 * MiB, memberTimeoutMs: 3_000 }).cycle(
      members(['hog', 'late']),
    );
    expect(r).toMatchObject({ ok: 2, failed: 0 });
    expect(stored.get('hog')?.attempt.error).toContain('no answer within 3000 ms (member timeout)');
    expect(stored.get('late')?.attempt).toMatchObject({ ok: true, error: null });
    expect(stored.get('late')?.good?.snapshot?.site).toBe('late');
  });
});

describe('a 200 whose body is JSON null is no data, not a missing endpoint', () => {
  it('report: the poll fails saying the member answered null (not “not found”)', async () => {
    handler = (_name, path, _req, res) =>
      path === '/api/v1/status/report' ? json(res, 200, 'null') : json(res, 404, '{}');
    const { cache, stored } = memoryCache();
    expect(await poller(cache).cycle(members(['nullreport']))).toMatchObject({ ok: 0, failed: 1 });
    expect(stored.get('nullreport')?.attempt.error).toBe(
      'GET /api/v1/status/report: answered 200 with null (no data; a missing endpoint answers 404)',
    );
  });

  it('snapshot and flow: the last snapshot and flow hour are kept, and the error says why', async () => {
    let nulls = false;
    const flow = {
      site: 'nullparts',
      minutes: 1,
      stepSeconds: 60,
      points: [
        {
          at: new Date(Math.floor(Date.now() / 60_000) * 60_000).toISOString(),
          ingress: { count: 1, bytes: null },
          egress: { count: 1, bytes: null },
          stored: { count: 1, bytes: null },
          deleted: { count: null, bytes: null },
        },
      ],
      sources: {},
    };
    handler = (name, path, _req, res) => {
      if (path === '/api/v1/status/report') return json(res, 200, JSON.stringify(memberReport(name)));
      if (path === '/api/v1/system/snapshot/current') return json(res, 200, nulls ? 'null' : snapshot(name));
      if (path === '/api/v1/metrics/flow') return json(res, 200, nulls ? 'null' : JSON.stringify(flow));
      return json(res, 404, '{}');
    };
    const { cache, stored } = memoryCache();
    const p = poller(cache);
    expect(await p.cycle(members(['nullparts']))).toMatchObject({ ok: 1 });
    const before = stored.get('nullparts')?.good;
    expect(before?.snapshot?.site).toBe('nullparts');
    expect(before?.flow?.points).toHaveLength(1);
    nulls = true;
    expect(await p.cycle(members(['nullparts']))).toMatchObject({ ok: 1 });
    const after = stored.get('nullparts');
    expect(after?.attempt.error).toBe(
      'snapshot not read (the last one kept): GET /api/v1/system/snapshot/current: answered 200 with null (no data; a missing endpoint answers 404); ' +
        'flow not read: GET /api/v1/metrics/flow?minutes=2: answered 200 with null (no data; a missing endpoint answers 404)',
    );
    expect(after?.good?.snapshot).toEqual(before?.snapshot);
    expect(after?.good?.flow).toEqual(before?.flow);
  });
});

describe('the cache read before a cycle counts within the overall timeout', () => {
  it('a cache slower than the timeout fails the cycle by then, saying so; nothing is polled or written', async () => {
    let asked = 0;
    handler = (name, _path, _req, res) => {
      asked++;
      json(res, 200, JSON.stringify(memberReport(name)));
    };
    let written = 0;
    const slow: MemberRecordStore = {
      getMany: () => new Promise((r) => setTimeout(() => r(new Map()), 2_000)),
      setMany: () => {
        written++;
        return Promise.resolve();
      },
    };
    const p = new FleetPoller(slow, sites, { concurrency: 1, timeoutMs: 500 });
    pollers.push(p);
    const t0 = Date.now();
    await expect(p.cycle(members(['eu']))).rejects.toThrow(
      "reading the members' last good data from the cache: overall poll timeout (500 ms) reached",
    );
    expect(Date.now() - t0).toBeLessThan(1_500);
    expect(asked).toBe(0);
    expect(written).toBe(0);
  });
});

describe('FLEET_POLL_MEMBER_TIMEOUT_MS and FLEET_POLL_MAX_INFLIGHT_BYTES', () => {
  const env = {
    DATABASE_URL: 'postgresql://postgres@127.0.0.1:5432/fw',
    REDIS_URL: 'redis://127.0.0.1:6379',
    AMQP_URL: 'amqp://guest:guest@127.0.0.1:5672',
  };
  const options = (extra: Record<string, string>) => pollerOptions(loadSyncConfig({ ...env, ...extra }) as SyncConfig);

  it('unset: half the overall timeout, at most 5 s, and a 64 MiB budget — handed to the poller', () => {
    expect(options({})).toMatchObject({ timeoutMs: 25_000, memberTimeoutMs: 5_000, maxInflightBytes: 64 * MiB });
    expect(options({ FLEET_POLL_TIMEOUT_SECONDS: '6' })).toMatchObject({ memberTimeoutMs: 3_000 });
  });

  it('set: handed to the poller as they are', () => {
    expect(
      options({ FLEET_POLL_MEMBER_TIMEOUT_MS: '20000', FLEET_POLL_MAX_INFLIGHT_BYTES: String(16 * MiB) }),
    ).toMatchObject({
      memberTimeoutMs: 20_000,
      maxInflightBytes: 16 * MiB,
    });
  });

  it.each([
    ['FLEET_POLL_MEMBER_TIMEOUT_MS', '25001'],
    ['FLEET_POLL_MEMBER_TIMEOUT_MS', '99'],
    ['FLEET_POLL_MEMBER_TIMEOUT_MS', 'slow'],
    ['FLEET_POLL_MAX_INFLIGHT_BYTES', String(MiB - 1)],
    ['FLEET_POLL_MAX_INFLIGHT_BYTES', 'lots'],
  ])('%s=%s is refused at boot, naming the variable', (variable, value) => {
    expect(() => loadSyncConfig({ ...env, [variable]: value })).toThrow(new RegExp(variable));
  });
});

describe('a member whose answer takes longer than the default member timeout', () => {
  it('is read with FLEET_POLL_MEMBER_TIMEOUT_MS set above it', async () => {
    handler = (name, path, _req, res) => {
      if (path === '/api/v1/status/report')
        return void setTimeout(() => json(res, 200, JSON.stringify(memberReport(name))), 1_200);
      json(res, 404, '{}');
    };
    const opts = (extra: Record<string, string>) =>
      pollerOptions(loadSyncConfig({ ...env(), FLEET_POLL_TIMEOUT_SECONDS: '2', ...extra }) as SyncConfig);
    const { cache } = memoryCache();
    // Default: half of 2 s — the answer comes too late.
    const byDefault = new FleetPoller(cache, sites, opts({}));
    pollers.push(byDefault);
    expect(await byDefault.cycle(members(['slow']))).toMatchObject({ ok: 0, failed: 1 });
    const raised = new FleetPoller(cache, sites, opts({ FLEET_POLL_MEMBER_TIMEOUT_MS: '1700' }));
    pollers.push(raised);
    expect(await raised.cycle(members(['slow']))).toMatchObject({ ok: 1, failed: 0 });
  });

  function env() {
    return {
      DATABASE_URL: 'postgresql://postgres@127.0.0.1:5432/fw',
      REDIS_URL: 'redis://127.0.0.1:6379',
      AMQP_URL: 'amqp://guest:guest@127.0.0.1:5672',
    };
  }
});

describe('review: answers that hold the budget without sending', () => {
  it('a Content-Length over the per-answer cap is refused at once, not reserved (it would hold the whole budget)', async () => {
    handler = (name, path, _req, res) => {
      if (name === 'hog' && path === '/api/v1/system/snapshot/current') {
        // Announces the whole default budget, sends a byte, then nothing.
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': 64 * MiB });
        return void res.write('{');
      }
      const answer = () =>
        path === '/api/v1/status/report' ? json(res, 200, JSON.stringify(memberReport(name))) : json(res, 404, '{}');
      if (name === 'hog') return answer();
      setTimeout(answer, 100);
    };
    const { cache, stored } = memoryCache();
    const r = await poller(cache, { memberTimeoutMs: 1_500 }).cycle(members(['a', 'b', 'hog']));
    expect(r).toMatchObject({ ok: 3, failed: 0 });
    expect(stored.get('a')?.attempt).toMatchObject({ ok: true, error: null });
    expect(stored.get('b')?.attempt).toMatchObject({ ok: true, error: null });
    expect(stored.get('hog')?.attempt.error).toMatch(/snapshot not read.*answer too large/);
  });
});

describe('review: members that send headers and a byte, then stall, without a Content-Length', () => {
  it('three of them on all three endpoints leave the healthy members OK (the default 64 MiB budget)', async () => {
    const stalled = new Set(['s1', 's2', 's3']);
    handler = (name, path, _req, res) => {
      if (stalled.has(name)) {
        res.writeHead(200, { 'content-type': 'application/json' });
        return void res.write('{');
      }
      // Started first (config order), so their member timeouts come before the stalled ones': answered 300 ms late,
      // after the stalled members' headers, they must not wait for those to time out.
      setTimeout(() => {
        if (path === '/api/v1/status/report') return json(res, 200, JSON.stringify(memberReport(name)));
        if (path === '/api/v1/system/snapshot/current') return json(res, 200, snapshot(name));
        json(res, 404, '{}');
      }, 300);
    };
    const { cache, stored } = memoryCache();
    const r = await poller(cache, { memberTimeoutMs: 1_500 }).cycle(members(['a', 'b', 's1', 's2', 's3']));
    expect(r).toMatchObject({ ok: 2, failed: 3 });
    for (const n of ['a', 'b']) {
      expect(stored.get(n)?.attempt).toMatchObject({ ok: true, error: null });
      expect(stored.get(n)?.good?.snapshot?.site).toBe(n);
    }
    for (const n of stalled)
      expect(stored.get(n)?.attempt.error).toContain('no answer within 1500 ms (member timeout)');
  });
});

describe('status reports have a share of the budget that big snapshots cannot fill', () => {
  /** Resolves once `ok()` holds, looked at each 5 ms (a state of the leader's budget, not a time). */
  const until = async (ok: () => boolean) => {
    while (!ok()) await new Promise((r) => setTimeout(r, 5));
  };

  it('members whose snapshots fill the budget leave another member’s late report read: it is not made STALE', async () => {
    // A budget of 8 MiB (7 MiB for snapshots and flow). big1 and big2 send 3.5 MiB of snapshot less 100 bytes each and
    // stall; then big3 sends 1 MiB less 100 bytes of snapshot and stalls; only then does `late` answer its report.
    // Without a share kept for reports the snapshots hold all but 300 bytes of the budget, and the report — smaller
    // than any snapshot, and what the member's health is read from — fails: `late` read as unreachable.
    let budget: ByteBudget | undefined;
    let big3Closed = false;
    const held = () => budget?.heldBytes ?? 0;
    const stallWith = (res: ServerResponse, bytes: number) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{' + ' '.repeat(bytes - 1));
    };
    handler = (name, path, _req, res) => {
      // Some 2 KB, as a site's report with its components' versions.
      const components = Array.from({ length: 40 }, (_, i) => ({ component: `component-${i}`, version: '1.2.3' }));
      const report = () => json(res, 200, JSON.stringify({ ...memberReport(name), components }));
      if (name === 'late') {
        if (path !== '/api/v1/status/report') return json(res, 404, '{}');
        // After big3's snapshot was taken whole (the budget all but full) or refused (its connection closed).
        return void until(() => held() === 8 * MiB - 300 || big3Closed).then(report);
      }
      if (path === '/api/v1/status/report') return report();
      if (path !== '/api/v1/system/snapshot/current') return json(res, 404, '{}');
      if (name !== 'big3') return stallWith(res, 3.5 * MiB - 100);
      res.on('close', () => (big3Closed = true));
      void until(() => held() === 7 * MiB - 200).then(() => stallWith(res, MiB - 100));
    };
    const { cache, stored } = memoryCache();
    const dispatcher = createMemberAgent();
    const p = new FleetPoller(
      cache,
      sites,
      { concurrency: 50, timeoutMs: 10_000, memberTimeoutMs: 3_000, maxInflightBytes: 8 * MiB },
      (m, s, minutes, heldSnapshot, b) => {
        budget = b;
        return pollMember(m, s, minutes, { dispatcher, heldSnapshot, budget: b });
      },
    );
    try {
      const r = await p.cycle(members(['big1', 'big2', 'big3', 'late']));
      expect(stored.get('late')?.attempt).toMatchObject({ ok: true, error: null });
      expect(stored.get('late')?.good?.report?.site).toBe('late');
      expect(stored.get('late')?.good?.report?.components).toHaveLength(40);
      expect(r).toMatchObject({ ok: 4, failed: 0 });
      expect(r.peakInflightBytes).toBeLessThanOrEqual(8 * MiB);
      expect(stored.get('big3')?.attempt.error).toMatch(
        /^snapshot not read \(the last one kept\): .*8388608 bytes, FLEET_POLL_MAX_INFLIGHT_BYTES; 7340032 of them for snapshots and flow, the rest kept for status reports\) is full/,
      );
    } finally {
      await dispatcher.close();
    }
  });

  it('a member streaming a huge report slowly cannot fill the reports’ share: another member’s report is read at once', async () => {
    // A budget of 8 MiB: 7 MiB for snapshots and flow, 1 MiB kept for reports, 256 KiB the most one report holds.
    // big1 and big2 fill the snapshots' share and stall; then `huge` streams its report, 16 KiB every 5 ms, up to all
    // but 1,000 bytes of the budget and stalls there (a slow link; its member timeout is seconds away). `late` answers
    // its 2 KB report once that report is that far, or was cut off. Without a limit per report, `huge` held the whole
    // share until its member timeout and `late`'s report failed on a full budget: `late` read as unreachable.
    let budget: ByteBudget | undefined;
    let hugeClosed = false;
    let lateAnswered = 0;
    let lateDone = 0;
    const held = () => budget?.heldBytes ?? 0;
    const snapshotsHeld = 7 * MiB - 200;
    const hugeReport = 8 * MiB - 1000 - snapshotsHeld;
    handler = (name, path, _req, res) => {
      const components = Array.from({ length: 40 }, (_, i) => ({ component: `component-${i}`, version: '1.2.3' }));
      const report = () => json(res, 200, JSON.stringify({ ...memberReport(name), components }));
      if (name === 'late') {
        if (path !== '/api/v1/status/report') return json(res, 404, '{}');
        return void until(() => held() === 8 * MiB - 1000 || hugeClosed).then(() => {
          lateAnswered = performance.now();
          report();
        });
      }
      if (name === 'huge') {
        if (path !== '/api/v1/status/report') return json(res, 404, '{}');
        res.on('close', () => (hugeClosed = true));
        return void until(() => held() === snapshotsHeld).then(() => {
          res.writeHead(200, { 'content-type': 'application/json' });
          let sent = 0;
          const drip = setInterval(() => {
            const n = Math.min(16 * 1024, hugeReport - sent);
            if (n <= 0 || res.destroyed) return clearInterval(drip);
            res.write(sent === 0 ? '{' + ' '.repeat(n - 1) : ' '.repeat(n));
            sent += n;
          }, 5);
          res.on('close', () => clearInterval(drip));
        });
      }
      if (path === '/api/v1/status/report') return report();
      if (path !== '/api/v1/system/snapshot/current') return json(res, 404, '{}');
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{' + ' '.repeat(3.5 * MiB - 101));
    };
    const { cache, stored } = memoryCache();
    const dispatcher = createMemberAgent();
    const p = new FleetPoller(
      cache,
      sites,
      { concurrency: 50, timeoutMs: 10_000, memberTimeoutMs: 3_000, maxInflightBytes: 8 * MiB },
      (m, s, minutes, heldSnapshot, b) => {
        budget = b;
        const poll = pollMember(m, s, minutes, { dispatcher, heldSnapshot, budget: b });
        if (m.name === 'late') void poll.finally(() => (lateDone = performance.now())).catch(() => undefined);
        return poll;
      },
    );
    try {
      const r = await p.cycle(members(['big1', 'big2', 'huge', 'late']));
      expect(stored.get('late')?.attempt).toMatchObject({ ok: true, error: null });
      expect(stored.get('late')?.good?.report?.components).toHaveLength(40);
      // Read as soon as it was sent: not held back until `huge` gave up (its member timeout, 3 s).
      expect(lateDone - lateAnswered).toBeLessThan(1_000);
      expect(stored.get('huge')?.attempt.error).toMatch(/the status report exceeded 262144 bytes/);
      expect(r).toMatchObject({ ok: 3, failed: 1 });
      expect(r.peakInflightBytes).toBeLessThanOrEqual(8 * MiB);
    } finally {
      await dispatcher.close();
    }
  });

  it('a report announcing more than one report’s limit is refused unread, saying so', async () => {
    handler = (name, path, _req, res) => {
      if (path !== '/api/v1/status/report') return json(res, 404, '{}');
      if (name !== 'huge') return json(res, 200, JSON.stringify(memberReport(name)));
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': 8 * MiB });
      res.write('{');
    };
    const { cache, stored } = memoryCache();
    const r = await poller(cache, { memberTimeoutMs: 3_000 }).cycle(members(['a', 'huge']));
    expect(r).toMatchObject({ ok: 1, failed: 1 });
    expect(stored.get('a')?.attempt).toMatchObject({ ok: true, error: null });
    expect(stored.get('huge')?.attempt.error).toMatch(
      /GET \/api\/v1\/status\/report: the status report exceeded 1048576 bytes/,
    );
  });
});
