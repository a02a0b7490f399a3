import { ownerOf, planShards, type ShardView } from './assignment';

const base = (over: Partial<ShardView>): ShardView => ({
  me: 'a',
  members: ['a'],
  count: 8,
  held: new Map(),
  freeSince: new Map(),
  now: 100_000,
  orphanGraceMs: 2000,
  minHoldMs: 5000,
  ...over,
});

describe('ownerOf (rendezvous)', () => {
  it('gives every shard to one of the members, the same whatever their order', () => {
    for (let s = 0; s < 64; s++) {
      const o = ownerOf(s, ['r1', 'r2', 'r3']);
      expect(['r1', 'r2', 'r3']).toContain(o);
      expect(ownerOf(s, ['r3', 'r1', 'r2'])).toBe(o);
    }
    expect(ownerOf(0, [])).toBeUndefined();
  });

  it('moves only the leaving member’s shards when one leaves', () => {
    const before = Array.from({ length: 256 }, (_, s) => ownerOf(s, ['r1', 'r2', 'r3']));
    const after = Array.from({ length: 256 }, (_, s) => ownerOf(s, ['r1', 'r3']));
    before.forEach((o, s) => {
      if (o !== 'r2') expect(after[s]).toBe(o);
      else expect(['r1', 'r3']).toContain(after[s]);
    });
  });

  it('spreads shards roughly evenly', () => {
    const counts = new Map<string, number>();
    for (let s = 0; s < 1000; s++) {
      const o = ownerOf(s, ['a', 'b']) as string;
      counts.set(o, (counts.get(o) ?? 0) + 1);
    }
    expect(counts.get('a')).toBeGreaterThan(400);
    expect(counts.get('b')).toBeGreaterThan(400);
  });
});

describe('planShards', () => {
  it('a lone replica takes every shard', () => {
    expect(planShards(base({})).acquire).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
  });

  it('takes only its own shards while the others’ owner is alive', () => {
    const plan = planShards(base({ members: ['a', 'b'] }));
    const mine = [0, 1, 2, 3, 4, 5, 6, 7].filter((s) => ownerOf(s, ['a', 'b']) === 'a');
    expect(plan.acquire).toEqual(mine);
    expect(plan.release).toEqual([]);
  });

  it('hands over a held shard another live replica owns, once held long enough', () => {
    const theirs = [0, 1, 2, 3, 4, 5, 6, 7].filter((s) => ownerOf(s, ['a', 'b']) === 'b');
    const heldLong = new Map([0, 1, 2, 3, 4, 5, 6, 7].map((s) => [s, 0] as [number, number]));
    expect(planShards(base({ members: ['a', 'b'], held: heldLong })).release).toEqual(theirs);
    const heldNow = new Map([0, 1, 2, 3, 4, 5, 6, 7].map((s) => [s, 99_000] as [number, number]));
    expect(planShards(base({ members: ['a', 'b'], held: heldNow })).release).toEqual([]);
  });

  it('takes a shard left free past the grace even when a live member owns it', () => {
    const theirs = [0, 1, 2, 3, 4, 5, 6, 7].find((s) => ownerOf(s, ['a', 'b']) === 'b') as number;
    const fresh = planShards(base({ members: ['a', 'b'], freeSince: new Map([[theirs, 99_000]]) }));
    expect(fresh.acquire).not.toContain(theirs);
    const stale = planShards(base({ members: ['a', 'b'], freeSince: new Map([[theirs, 97_000]]) }));
    expect(stale.acquire).toContain(theirs);
  });

  it('without a membership view keeps what it holds and takes only orphans', () => {
    const plan = planShards(
      base({
        members: undefined,
        held: new Map([[1, 0]]),
        freeSince: new Map([
          [2, 97_000],
          [3, 99_500],
        ]),
      }),
    );
    expect(plan).toEqual({ acquire: [2], release: [] });
  });

  it('counts itself a member even when the registry has not listed it yet', () => {
    expect(planShards(base({ members: [] })).acquire).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
  });
});
