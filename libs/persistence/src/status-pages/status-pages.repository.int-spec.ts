import { Client } from 'pg';
import { TargetKind, TargetStatus as S } from '@fleetwatch/contracts';
import {
  applyObservation,
  incidentsOf,
  type Observation,
  type StatusEventDraft,
  type TargetSnapshot,
} from '@fleetwatch/domain';
import { createIsolatedDatabase, type IsolatedDatabase } from '@fleetwatch/testing';
import { closeSqlPool, createSqlPool, runInSqlTransaction, type SqlPool } from '../sql/sql-pool';
import { StatusEventsRepository } from '../status-events/status-events.repository';
import { StatusPagesRepository } from './status-pages.repository';

// A public status page's reads of consensus status events (changesSince), on a real database.

let isolated: IsolatedDatabase;
let pool: SqlPool;
let pg: Client;
let repo: StatusPagesRepository;

beforeAll(async () => {
  isolated = await createIsolatedDatabase();
  pool = createSqlPool(isolated.databaseUrl, { max: 2 });
  pg = new Client({ connectionString: isolated.databaseUrl });
  await pg.connect();
  repo = new StatusPagesRepository(pool);
});
afterAll(async () => {
  await pg?.end();
  if (pool) await closeSqlPool(pool);
  await isolated?.dispose();
});

const FROM = Date.UTC(2026, 10, 1);
const SEC = 1000;

/** Stores events as given: [location, to, at (ms), sequence]. */
async function store(targetId: string, events: [string | null, S, number, number][]): Promise<void> {
  for (const [location, to, at, sequence] of events)
    await pg.query(
      `INSERT INTO status_events (target_id, location, to_status, occurred_at, sequence)
       VALUES ($1, $2, $3::target_status, $4, $5)`,
      [targetId, location, to, new Date(at), sequence],
    );
}

describe('StatusPagesRepository.changesSince', () => {
  it('gives each target its changes in sequence order, not time order (times stored before they were kept in order)', async () => {
    // Two locations UP; eu DOWN at +100 s, us DOWN at +90 s (a slow probe started earlier, folded later), eu UP at
    // +110 s, us UP at +105 s: the target ends UP, its consensus events dated by their causes.
    await store('check:inverted', [
      [null, S.Up, FROM - 3600 * SEC, 2],
      ['eu', S.Down, FROM + 100 * SEC, 3],
      [null, S.Partial, FROM + 100 * SEC, 4],
      ['us', S.Down, FROM + 90 * SEC, 5],
      [null, S.Down, FROM + 90 * SEC, 6],
      ['eu', S.Up, FROM + 110 * SEC, 7],
      [null, S.Partial, FROM + 110 * SEC, 8],
      ['us', S.Up, FROM + 105 * SEC, 9],
      [null, S.Up, FROM + 105 * SEC, 10],
    ]);
    const { initial, changes } = await repo.changesSince(['check:inverted'], FROM, 100);
    expect(initial.get('check:inverted')).toBe(S.Up);
    expect(changes.map((c) => [c.to, (c.at - FROM) / SEC])).toEqual([
      [S.Partial, 100],
      [S.Down, 90],
      [S.Partial, 110],
      [S.Up, 105],
    ]);
    // The page's incidents: none left open for a target that is UP.
    const spans = incidentsOf(initial.get('check:inverted') ?? null, changes, FROM);
    expect(spans.filter((s) => s.end === null)).toEqual([]);
  });

  it("the status at the window's start is the last change in sequence before the window's first", async () => {
    await store('check:before', [
      [null, S.Up, FROM - 200 * SEC, 1],
      [null, S.Partial, FROM - 50 * SEC, 2],
      // Dated before the PARTIAL it follows: by time the PARTIAL was last, and the page started the window degraded.
      [null, S.Up, FROM - 60 * SEC, 3],
      ['eu', S.Down, FROM - 10 * SEC, 4],
    ]);
    let read = await repo.changesSince(['check:before'], FROM, 100);
    expect(read.initial.get('check:before')).toBe(S.Up);
    expect(read.changes).toEqual([]);
    await store('check:before', [[null, S.Down, FROM + 10 * SEC, 5]]);
    read = await repo.changesSince(['check:before'], FROM, 100);
    expect(read.initial.get('check:before')).toBe(S.Up);
    expect(read.changes.map((c) => c.to)).toEqual([S.Down]);
  });

  it("a change dated before the window's start that followed one inside it is read too (not lost at the seam)", async () => {
    // UP for an hour; DOWN at +10 s; UP again, its cause (a slow probe) dated 5 s before the window's start. By time the
    // UP lies before the window, by sequence after its first change: read by time alone it fell between the two reads,
    // and the page kept the target DOWN from +10 s on (an outage going on for a target that is UP).
    await store('check:seam', [
      [null, S.Up, FROM - 3600 * SEC, 1],
      [null, S.Down, FROM + 10 * SEC, 2],
      ['eu', S.Up, FROM - 5 * SEC, 3],
      [null, S.Up, FROM - 5 * SEC, 4],
    ]);
    for (const perTarget of [100, 1]) {
      const { initial, changes } = await repo.changesSince(['check:seam'], FROM, perTarget);
      // perTarget 1: its last change only (the bound holds), cut.
      expect(changes.map((c) => c.to)).toEqual(perTarget === 1 ? [S.Up] : [S.Down, S.Up]);
      expect(incidentsOf(initial.get('check:seam') ?? null, changes, FROM).filter((s) => s.end === null)).toEqual([]);
    }
  });

  it("keeps a target's last change at the seam, and no more than perTarget changes, when more lie there", async () => {
    // DOWN at +10 s; then UP and DOWN again, both dated before the window's start (slow probes): the target ends DOWN.
    await store('check:seam-many', [
      [null, S.Up, FROM - 3600 * SEC, 1],
      [null, S.Down, FROM + 10 * SEC, 2],
      [null, S.Up, FROM - 5 * SEC, 3],
      [null, S.Down, FROM - 4 * SEC, 4],
    ]);
    for (const perTarget of [100, 2, 1]) {
      const { initial, changes } = await repo.changesSince(['check:seam-many'], FROM, perTarget);
      expect(changes.at(-1)?.to).toBe(S.Down);
      expect(changes.length).toBeLessThanOrEqual(perTarget);
      // Cut: nothing known before its first change kept, which takes effect no earlier than the window's first (+10 s).
      if (perTarget < 4) expect(initial.has('check:seam-many')).toBe(false);
      if (perTarget < 4) expect(changes[0]?.at).toBeGreaterThanOrEqual(FROM + 10 * SEC);
    }
  });

  it('keeps the newest perTarget changes of each target; one cut has no status at the start', async () => {
    await store('check:flap', [
      [null, S.Up, FROM - 100 * SEC, 1],
      [null, S.Down, FROM + 10 * SEC, 2],
      [null, S.Up, FROM + 20 * SEC, 3],
      [null, S.Down, FROM + 30 * SEC, 4],
    ]);
    await store('check:calm', [
      [null, S.Down, FROM - 100 * SEC, 1],
      [null, S.Up, FROM + 5 * SEC, 2],
    ]);
    const { initial, changes } = await repo.changesSince(['check:flap', 'check:calm', 'check:none'], FROM, 2);
    expect(initial.has('check:flap')).toBe(false);
    expect(initial.get('check:calm')).toBe(S.Down);
    expect(initial.has('check:none')).toBe(false);
    expect(changes.filter((c) => c.targetId === 'check:flap').map((c) => [c.to, (c.at - FROM) / SEC])).toEqual([
      [S.Up, 20],
      [S.Down, 30],
    ]);
    expect(changes.filter((c) => c.targetId === 'check:calm').map((c) => c.to)).toEqual([S.Up]);
  });

  it('a target with exactly perTarget changes in the window is not cut: its status at the start is known', async () => {
    // UP for months, then one short outage (two changes) on a page whose budget is two changes a target: nothing
    // was left out, so the days before the outage are up, not "no data".
    await store('check:exact', [
      [null, S.Up, FROM - 30 * 86_400 * SEC, 1],
      [null, S.Down, FROM + 10 * SEC, 2],
      [null, S.Up, FROM + 20 * SEC, 3],
    ]);
    const { initial, changes } = await repo.changesSince(['check:exact'], FROM, 2);
    expect(initial.get('check:exact')).toBe(S.Up);
    expect(changes.map((c) => c.to)).toEqual([S.Down, S.Up]);
    // One more change in the window is more than the budget: cut to the newest two, nothing known before them.
    await store('check:exact', [[null, S.Down, FROM + 30 * SEC, 4]]);
    const cut = await repo.changesSince(['check:exact'], FROM, 2);
    expect(cut.initial.has('check:exact')).toBe(false);
    expect(cut.changes.map((c) => [c.to, (c.at - FROM) / SEC])).toEqual([
      [S.Up, 20],
      [S.Down, 30],
    ]);
  });

  it('events written by the fold (a slow probe folded after a faster one) read as the status the target holds', async () => {
    const policy = { downQuorumPct: 100 };
    const obs = (location: string, status: S, at: number): Observation => ({
      targetId: 'check:folded',
      kind: TargetKind.Check,
      name: 'folded',
      location,
      at,
      status,
      reason: 'result',
    });
    let target: TargetSnapshot | undefined;
    const drafts: StatusEventDraft[] = [];
    for (const o of [
      obs('eu', S.Up, FROM - 3600 * SEC),
      obs('us', S.Up, FROM - 3600 * SEC),
      obs('eu', S.Down, FROM + 100 * SEC),
      obs('us', S.Down, FROM + 90 * SEC),
      obs('eu', S.Up, FROM + 110 * SEC),
      obs('us', S.Up, FROM + 105 * SEC),
    ]) {
      const r = applyObservation(target, o, policy);
      target = r.target;
      drafts.push(...r.events);
    }
    expect(target?.status).toBe(S.Up);
    await runInSqlTransaction(pool, (tx) => new StatusEventsRepository(pool).insertMany(tx, drafts));
    const { initial, changes } = await repo.changesSince(['check:folded'], FROM, 100);
    // In sequence order (the stored times keep each observation's own: here they go back and forth).
    expect(changes.at(-1)?.to).toBe(S.Up);
    expect(changes.map((c) => c.to)).toEqual([S.Partial, S.Down, S.Partial, S.Up]);
    expect(incidentsOf(initial.get('check:folded') ?? null, changes, FROM)).toEqual([
      { state: 'outage', start: FROM + 100 * SEC, end: FROM + 110 * SEC },
    ]);
  });
});

describe('StatusPagesRepository.selectTargets: deleted targets keep their history', () => {
  // A deleted check's row stays as a tombstone (tags kept) and its status events are kept: the page read only live
  // targets, and a delete took the target's past outages off the bars and incidents.
  const DAY = 86_400 * SEC;
  beforeAll(async () => {
    await pg.query(
      `INSERT INTO target_states (target_id, kind, name, status, tags, seq, deleted_at) VALUES
        ('check:sel-live', 'check', 'live', 'UP', ARRAY['sel'], 1, NULL),
        ('check:sel-a-gone', 'check', 'gone', 'UNKNOWN', ARRAY['sel'], 4, $1),
        ('check:sel-b-long-gone', 'check', 'long gone', 'UNKNOWN', ARRAY['sel'], 4, $2),
        ('check:sel-c-live', 'check', 'live too', 'DOWN', ARRAY['sel'], 1, NULL)`,
      [new Date(FROM + DAY), new Date(FROM - DAY)],
    );
  });

  it('with historySince: those deleted since then too, after every live one — in no current status', async () => {
    const sel = { tags: ['sel'], ids: [] };
    const r = await repo.selectTargets(sel, 200, undefined, FROM);
    expect(r.sample.map((t) => t.targetId)).toEqual(['check:sel-c-live', 'check:sel-live', 'check:sel-a-gone']);
    expect(r.sample[2]).toEqual({ targetId: 'check:sel-a-gone', status: S.Unknown, tags: ['sel'], deleted: true });
    expect(r.sample.map((t) => t.deleted)).toEqual([false, false, true]);
    expect([...r.statuses].sort()).toEqual([S.Down, S.Up]);
    expect(r.covered).toEqual([]);
    // The live ones first: a full sample leaves the deleted out, never a live one.
    expect((await repo.selectTargets(sel, 2, undefined, FROM)).sample.map((t) => t.targetId)).toEqual([
      'check:sel-c-live',
      'check:sel-live',
    ]);
    // Listed by id, deleted: still after the live ones.
    const byId = await repo.selectTargets(
      { tags: [], ids: ['check:sel-a-gone', 'check:sel-live'] },
      200,
      undefined,
      FROM,
    );
    expect(byId.sample.map((t) => t.targetId)).toEqual(['check:sel-live', 'check:sel-a-gone']);
  });

  it('without it: the live targets only, as before', async () => {
    const r = await repo.selectTargets({ tags: ['sel'], ids: [] }, 200);
    expect(r.sample.map((t) => t.targetId)).toEqual(['check:sel-c-live', 'check:sel-live']);
  });
});
