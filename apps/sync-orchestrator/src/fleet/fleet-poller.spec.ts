import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FlowMetrics, FlowPoint, MemberPollRecord, MemberReport, MemberSnapshotView } from '@fleetwatch/contracts';
import { FleetPollFencedError, type FleetSitesRepository } from '@fleetwatch/persistence';
import { FleetPoller, mergeFlow, type MemberRecordStore } from './fleet-poller';
import { loadLeaderConfig } from './leader-config';
import { RecordJson } from './member-record-store';

const point = (minute: number, count: number): FlowPoint => ({
  at: new Date(Date.UTC(2026, 0, 1, 0, minute)).toISOString(),
  ingress: { count, bytes: null },
  egress: { count, bytes: null },
  stored: { count, bytes: null },
  deleted: { count: null, bytes: null },
});
const flow = (points: FlowPoint[]): FlowMetrics => ({
  site: 's',
  minutes: points.length,
  stepSeconds: 60,
  points,
  sources: {},
});
const counts = (f: FlowMetrics) => f.points.map((p) => p.ingress.count);

/** A member cache that reads as empty and keeps what each cycle writes (`written()`: the last write). */
function writtenCache(): { cache: MemberRecordStore; written: () => Map<string, MemberPollRecord> } {
  let last = new Map<string, MemberPollRecord>();
  return {
    cache: {
      getMany: () => Promise.resolve(new Map()),
      setMany: (records) => {
        last = new Map(records);
        return Promise.resolve();
      },
    },
    written: () => last,
  };
}

describe('mergeFlow', () => {
  it.each([
    ['nothing held', undefined, [point(5, 1)], 60, [1]],
    [
      'appends new minutes, the newer answer winning a shared minute',
      [point(1, 1), point(2, 2)],
      [point(2, 9), point(3, 3)],
      60,
      [1, 9, 3],
    ],
    ['keeps the window', [point(1, 1), point(2, 2), point(3, 3)], [point(4, 4)], 3, [2, 3, 4]],
    ['orders by time whatever the order received', [point(1, 1)], [point(3, 3), point(2, 2)], 60, [1, 2, 3]],
    // The member's clock ran ahead when 4 and 5 were stamped, and is right again: its newest minute is 3.
    [
      'drops held minutes after the newest the member answers',
      [point(1, 1), point(4, 4), point(5, 5)],
      [point(2, 2), point(3, 3)],
      60,
      [1, 2, 3],
    ],
    [
      'drops a point whose time does not read',
      [point(1, 1)],
      [{ ...point(2, 2), at: 'not a time' }, point(3, 3)],
      60,
      [1, 3],
    ],
  ])('%s', (_n, held, fresh, window, expected) => {
    const merged = mergeFlow(held ? flow(held) : undefined, flow(fresh), window);
    expect(counts(merged)).toEqual(expected);
    expect(merged.minutes).toBe(window);
  });
});

describe('mergeFlow keeps the held object when nothing changed (its cached JSON is then reused)', () => {
  const held = mergeFlow(undefined, flow([point(1, 1), point(2, 2), point(3, 3)]), 3);
  it.each([
    ['the same points again', [point(2, 2), point(3, 3)], true],
    ['a point older than the full window held', [point(0, 7), point(3, 3)], true],
    ['the current minute grew', [point(3, 4)], false],
    ['a new minute', [point(3, 3), point(4, 4)], false],
    ['a figure changed (null → 0)', [{ ...point(3, 3), deleted: { count: 0, bytes: null } }], false],
  ])('%s', (_n, fresh, same) => {
    const merged = mergeFlow(held, flow(fresh), 3);
    expect(merged === held).toBe(same);
    if (!same) expect(merged.points.map((p) => p.at)).toEqual([...merged.points.map((p) => p.at)].sort());
  });

  it('not when a held minute is after the newest the member answers (its clock ran ahead)', () => {
    const ahead = mergeFlow(undefined, flow([point(3, 3), point(9, 9)]), 3);
    const merged = mergeFlow(ahead, flow([point(3, 3)]), 3);
    expect(merged).not.toBe(ahead);
    expect(counts(merged)).toEqual([3]);
  });

  it('not when the source changed', () => {
    expect(mergeFlow(held, { ...flow([point(3, 3)]), sources: { ingress: 'other' } }, 3)).not.toBe(held);
  });
});

describe('RecordJson', () => {
  const report = { site: 's', role: 'member', status: { UP: 1 } } as unknown as MemberReport;
  const snapshot = { schemaVersion: 1, site: 's', hash: 'h', areas: { checks: [] } } as unknown as MemberSnapshotView;
  const f = flow([point(1, 1), point(2, 2)]);
  const attempt = { at: '2026-01-01T00:00:00.000Z', ok: true, error: null, durationMs: 12 };
  const records: [string, MemberPollRecord][] = [
    ['never reached', { attempt: { ...attempt, ok: false, error: 'GET /x: "quoted" é' }, good: null }],
    ['everything', { attempt, good: { at: attempt.at, report, flow: f, snapshot } }],
    ['an older member', { attempt, good: { at: attempt.at, report, flow: null, snapshot: null } }],
    ['no report', { attempt, good: { at: attempt.at, report: null, flow: f, snapshot: null } }],
    [
      'a snapshot and flow not read this time',
      {
        attempt: { ...attempt, error: 'snapshot not read (the last one kept): too large' },
        good: {
          at: attempt.at,
          report,
          flow: f,
          snapshot,
          flowAt: '2025-12-31T23:00:00.000Z',
          snapshotAt: '2025-12-31T22:00:00.000Z',
        },
      },
    ],
  ];
  it.each(records)('%s: the same JSON as JSON.stringify', (_n, r) => {
    const json = new RecordJson();
    expect(JSON.parse(json.serialise(r).toString('utf8'))).toEqual(JSON.parse(JSON.stringify(r)));
    // Twice: the second time from the pieces kept.
    expect(json.serialise(r).toString('utf8')).toBe(json.serialise(r).toString('utf8'));
  });

  it('a new flow object is serialised anew', () => {
    const json = new RecordJson();
    const good = { at: attempt.at, report, flow: f, snapshot };
    json.serialise({ attempt, good });
    const grown = flow([point(1, 1), point(2, 2), point(3, 3)]);
    const back = JSON.parse(
      json.serialise({ attempt, good: { ...good, flow: grown } }).toString('utf8'),
    ) as MemberPollRecord;
    expect(back.good?.flow?.points).toHaveLength(3);
  });
});

describe('FleetPoller and the cache it starts from', () => {
  it('a cache it cannot read fails the cycle (tried again next tick), never erasing the last good data there', async () => {
    const good = { at: '2026-01-01T00:00:00.000Z', report: null, flow: null, snapshot: null };
    const attempt = { at: good.at, ok: true, error: null, durationMs: 5 };
    const stored = new Map<string, MemberPollRecord>([['eu', { attempt, good }]]);
    let readFails = true;
    const cache: MemberRecordStore = {
      getMany: (names) =>
        readFails
          ? Promise.reject(new Error('cache away'))
          : Promise.resolve(new Map([...stored].filter(([n]) => names.includes(n)))),
      setMany: (records) => {
        for (const [n, r] of records) stored.set(n, r);
        return Promise.resolve();
      },
    };
    const sites = { recordPolls: () => Promise.resolve() } as unknown as FleetSitesRepository;
    const poller = new FleetPoller(cache, sites, { concurrency: 1, timeoutMs: 1_000 }, () =>
      Promise.reject(new Error('member away')),
    );
    const members = loadLeaderConfig(JSON.stringify([{ name: 'eu', url: 'http://127.0.0.1:1' }]), {});

    await expect(poller.cycle(members)).rejects.toThrow('cache away');
    expect(stored.get('eu')?.good).toEqual(good);
    readFails = false;
    expect(await poller.cycle(members)).toMatchObject({ ok: 0, failed: 1 });
    expect(stored.get('eu')).toEqual({ attempt: expect.objectContaining({ ok: false, error: 'member away' }), good });
  });
});

describe('FleetPoller: a cache that refuses the cycle’s records', () => {
  const members = loadLeaderConfig(JSON.stringify([{ name: 'eu', url: 'http://127.0.0.1:1' }]), {});

  function pollerWith(setMany: MemberRecordStore['setMany']) {
    const recorded: unknown[][] = [];
    const cache: MemberRecordStore = { getMany: () => Promise.resolve(new Map()), setMany };
    const sites = {
      recordPolls: (outcomes: unknown[]) => {
        recorded.push(outcomes);
        return Promise.resolve();
      },
    } as unknown as FleetSitesRepository;
    const poller = new FleetPoller(cache, sites, { concurrency: 1, timeoutMs: 1_000 }, () =>
      Promise.reject(new Error('member away')),
    );
    return { poller, recorded };
  }

  it('Redis away or slow: the attempts still go to Postgres, then the cycle fails with the cache’s error', async () => {
    const { poller, recorded } = pollerWith(() => Promise.reject(new Error('Command timed out')));
    await expect(poller.cycle(members, Date.now, { lease: 'fleet-poll', epoch: 3 })).rejects.toThrow(
      'Command timed out',
    );
    expect(recorded).toEqual([[expect.objectContaining({ name: 'eu', ok: false, error: 'member away' })]]);
  });

  it('refused by a newer lease holder: nothing goes to Postgres either', async () => {
    const { poller, recorded } = pollerWith(() => Promise.reject(new FleetPollFencedError('taken (epoch 4)')));
    await expect(poller.cycle(members, Date.now, { lease: 'fleet-poll', epoch: 3 })).rejects.toBeInstanceOf(
      FleetPollFencedError,
    );
    expect(recorded).toEqual([]);
  });
});

describe('FleetPoller: the flow hour on a member clock that is not the leader’s', () => {
  const report = { site: 's' } as unknown as MemberReport;
  const at = (ms: number, n: number): FlowPoint => ({
    at: new Date(ms).toISOString(),
    ingress: { count: n, bytes: null },
    egress: { count: n, bytes: null },
    stored: { count: n, bytes: null },
    deleted: { count: null, bytes: null },
  });
  const sites = { recordPolls: () => Promise.resolve() } as unknown as FleetSitesRepository;
  const members = loadLeaderConfig(JSON.stringify([{ name: 'eu', url: 'http://127.0.0.1:1' }]), {});

  /** A member answering `minutes` points up to its own minute (leader time + skew); `down`: unreachable. */
  function rig() {
    const s = { leaderNow: Date.UTC(2026, 0, 1, 12, 0, 30), skew: 0, down: false, asked: [] as number[] };
    const { cache, written } = writtenCache();
    const poller = new FleetPoller(cache, sites, { concurrency: 1, timeoutMs: 25_000 }, (_m, _s, minutes) => {
      if (s.down) return Promise.reject(new Error('unreachable'));
      s.asked.push(minutes);
      const minute = Math.floor((s.leaderNow + s.skew) / 60_000) * 60_000;
      const points = Array.from({ length: minutes }, (_, i) => at(minute - (minutes - 1 - i) * 60_000, 1));
      return Promise.resolve({ report, flow: { ...flow(points), site: 's' }, snapshot: null });
    });
    const cycle = () => poller.cycle(members, () => s.leaderNow);
    const held = () => (written().get('eu')?.good?.flow?.points ?? []).map((p) => Date.parse(p.at));
    return { s, cycle, held };
  }

  it('a member 5 minutes ahead, unreachable for 10 minutes: the hour has no hole after it answers again', async () => {
    const { s, cycle, held } = rig();
    s.skew = 5 * 60_000;
    await cycle();
    s.down = true;
    for (let i = 0; i < 20; i++) {
      s.leaderNow += 30_000;
      await cycle();
    }
    s.down = false;
    s.leaderNow += 30_000;
    await cycle();
    const times = held();
    expect(times).toHaveLength(60);
    expect(
      times
        .slice(1)
        .map((t, i) => t - times[i])
        .every((d) => d === 60_000),
    ).toBe(true);
    expect(s.asked.at(-1)).toBeGreaterThanOrEqual(11);
  });

  it('each attempt says by when a next is to have ended: two whole cycles (delay + overall timeout) later', async () => {
    const { cache, written } = writtenCache();
    const t = Date.UTC(2026, 0, 1, 12, 0, 0);
    const poller = new FleetPoller(cache, sites, { concurrency: 1, timeoutMs: 25_000, intervalMs: 30_000 }, () =>
      Promise.reject(new Error('member away')),
    );
    await poller.cycle(members, () => t);
    expect(written().get('eu')?.attempt).toMatchObject({
      at: new Date(t).toISOString(),
      nextBy: new Date(t + 110_000).toISOString(),
    });
  });

  it('a member clock 2 hours ahead, then corrected: the hour follows the corrected clock at once', async () => {
    const { s, cycle, held } = rig();
    s.skew = 2 * 3_600_000;
    await cycle();
    s.skew = 0;
    s.leaderNow += 30_000;
    await cycle();
    const times = held();
    expect(Math.max(...times)).toBeLessThanOrEqual(s.leaderNow);
    expect(Math.max(...times)).toBe(Math.floor(s.leaderNow / 60_000) * 60_000);
  });
});

describe('pollMember: a call that fails ends the poll only once the others have', () => {
  it('a report failing fast while the snapshot hangs: nothing is left open, and close() does not wait', async () => {
    let open = 0;
    const server = createServer((req: IncomingMessage, res: ServerResponse) => {
      if (req.url?.startsWith('/api/v1/status/report')) return void res.writeHead(500).end('boom');
      if (req.url?.startsWith('/api/v1/metrics/flow')) return void res.writeHead(404).end();
      open++; // the snapshot hangs
      req.socket.on('close', () => open--);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const { port } = server.address() as AddressInfo;
      const members = loadLeaderConfig(JSON.stringify([{ name: 'eu', url: `http://127.0.0.1:${port}` }]), {});
      const cache: MemberRecordStore = { getMany: () => Promise.resolve(new Map()), setMany: () => Promise.resolve() };
      const sites = { recordPolls: () => Promise.resolve() } as unknown as FleetSitesRepository;
      const poller = new FleetPoller(cache, sites, { concurrency: 4, timeoutMs: 5_000, memberTimeoutMs: 3_000 });
      for (let i = 0; i < 3; i++) {
        const started = Date.now();
        expect(await poller.cycle(members)).toMatchObject({ ok: 0, failed: 1 });
        // The report's 500 ends the poll at once (the hanging snapshot is cancelled, not waited for to its timeout).
        expect(Date.now() - started).toBeLessThan(2_000);
      }
      await new Promise((r) => setTimeout(r, 200));
      expect(open).toBe(0);
      const closing = Date.now();
      await poller.close();
      expect(Date.now() - closing).toBeLessThan(1_000);
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });
});

describe('FleetPoller: members that hang early in the list', () => {
  const report = { site: 's' } as unknown as MemberReport;
  const sites = { recordPolls: () => Promise.resolve() } as unknown as FleetSitesRepository;

  /** `names` in config order; those starting with "dead" hang until their signal aborts. */
  function rig(names: string[], concurrency: number) {
    const members = loadLeaderConfig(
      JSON.stringify(names.map((name) => ({ name, url: `http://${name}.invalid` }))),
      {},
    );
    const started = new Set<string>();
    const { cache, written } = writtenCache();
    // Overall timeout 200 ms (polling cut at 180), member timeout 100: two members a worker at most, a cycle.
    const poller = new FleetPoller(cache, sites, { concurrency, timeoutMs: 200, memberTimeoutMs: 100 }, (m, signal) => {
      started.add(m.name);
      return m.name.startsWith('dead')
        ? new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason as Error)))
        : Promise.resolve({ report, flow: null, snapshot: null });
    });
    return { cycle: () => poller.cycle(members), started, last: written };
  }

  it('a healthy member after them is polled from the next cycle on, and every cycle after', async () => {
    const { cycle, last } = rig(['dead-1', 'dead-2', 'dead-3', 'dead-4', 'healthy'], 2);
    expect(await cycle()).toMatchObject({ notStarted: 1 });
    expect(last().get('healthy')?.attempt.ok).toBe(false);
    for (let i = 0; i < 3; i++) {
      await cycle();
      expect(last().get('healthy')?.attempt).toMatchObject({ ok: true, error: null });
      expect(last().get('healthy')?.good?.report).toBe(report);
    }
  });

  it('none is starved by many hanging ones: a round robin starts each within ⌈hanging / starts a cycle⌉ cycles', async () => {
    // One worker, two starts a cycle; ten hang. A first cut (not-started-twice first, config order within) went round
    // the first six for ever: the other four and the healthy one were never started.
    const dead = Array.from({ length: 10 }, (_, i) => `dead-${String(i + 1).padStart(2, '0')}`);
    const { cycle, started, last } = rig([...dead, 'healthy'], 1);
    for (let i = 0; i < 6; i++) await cycle();
    expect([...started].sort()).toEqual([...dead, 'healthy']);
    // Answered once, it is started first in every cycle after.
    for (let i = 0; i < 3; i++) {
      await cycle();
      expect(last().get('healthy')?.attempt).toMatchObject({ ok: true, error: null });
    }
  });

  it('none is starved: with every member hanging, each is started within a few cycles', async () => {
    const names = ['dead-1', 'dead-2', 'dead-3', 'dead-4', 'dead-5'];
    const { cycle, started } = rig(names, 1);
    for (let i = 0; i < 3; i++) await cycle();
    expect([...started].sort()).toEqual(names);
  });
});

describe('FleetPoller: a member whose URL changed, or whose name is now another site’s', () => {
  const report = { site: 'old-eu' } as unknown as MemberReport;
  const sites = { recordPolls: () => Promise.resolve() } as unknown as FleetSitesRepository;
  const at = '2026-11-01T00:00:00.000Z';
  const attempt = { at, ok: true, error: null, durationMs: 5 };

  function rig(held: MemberPollRecord, answers: boolean) {
    const stored = new Map<string, MemberPollRecord>([['eu-1', held]]);
    const cache: MemberRecordStore = {
      getMany: (names) => Promise.resolve(new Map([...stored].filter(([n]) => names.includes(n)))),
      setMany: (records) => {
        for (const [n, r] of records) stored.set(n, r);
        return Promise.resolve();
      },
    };
    const heldSnapshots: unknown[] = [];
    const poller = new FleetPoller(cache, sites, { concurrency: 1, timeoutMs: 1_000 }, (_m, _s, _min, snap) => {
      heldSnapshots.push(snap);
      return answers
        ? Promise.resolve({ report: { site: 'new-eu' } as unknown as MemberReport, flow: null, snapshot: null })
        : Promise.reject(new Error('ECONNREFUSED'));
    });
    return { poller, stored, heldSnapshots };
  }
  const member = (url: string) => loadLeaderConfig(JSON.stringify([{ name: 'eu-1', url }]), {});
  const snapshot = { hash: 'h' } as unknown as MemberSnapshotView;

  it('the last good data read from the old URL is dropped, not kept as STALE', async () => {
    const old = { attempt, good: { at, report, flow: null, snapshot, url: 'https://old-eu.example' } };
    const { poller, stored, heldSnapshots } = rig(old, false);
    await poller.cycle(member('https://new-eu.example'));
    expect(heldSnapshots).toEqual([null]);
    expect(stored.get('eu-1')).toEqual({ attempt: expect.objectContaining({ ok: false }), good: null });
  });

  it('a good poll records the URL it read from; a failed one keeps the good data of the same URL', async () => {
    const { poller, stored } = rig({ attempt, good: null }, true);
    await poller.cycle(member('https://eu.example'));
    expect(stored.get('eu-1')?.good).toMatchObject({ url: 'https://eu.example', report: { site: 'new-eu' } });

    const kept = { attempt, good: { at, report, flow: null, snapshot, url: 'https://eu.example' } };
    const failing = rig(kept, false);
    await failing.poller.cycle(member('https://eu.example'));
    expect(failing.stored.get('eu-1')?.good).toEqual(kept.good);
  });
});
