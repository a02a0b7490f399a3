import fc from 'fast-check';
import { chooseMounts, mountDepth } from './mount-choice';

// Which mounts a host sample reports when there are more than it may (256 in the sampler; small limits here).

const segment = fc.constantFrom('a', 'b', 'c', 'var', 'log', 'pods', 'x1');
const path = fc.array(segment, { maxLength: 6 }).map((parts) => `/${parts.join('/')}`);
const mounts = fc.array(path, { maxLength: 40 }).map((paths) => paths.map((mount) => ({ mount })));
const limit = fc.integer({ min: 0, max: 25 });

describe('mountDepth', () => {
  it('counts path components', () => {
    expect(['/', '/var', '/var/log', '/var/lib/kubelet/pods/u/volumes'].map(mountDepth)).toEqual([0, 1, 2, 6]);
  });
});

describe('chooseMounts', () => {
  it('keeps at most the limit, each mount once, every mount shallower than the shallowest left out, all when there is room', () => {
    fc.assert(
      fc.property(mounts, limit, fc.array(path, { maxLength: 20 }), (given, max, before) => {
        const { kept, leftOut, dropped } = chooseMounts(given, max, new Set(before));
        const distinct = new Set(given.map((m) => m.mount));
        const keptPaths = kept.map((m) => m.mount);
        expect(kept.length).toBeLessThanOrEqual(max);
        expect(new Set(keptPaths).size).toBe(kept.length);
        expect(kept.length).toBe(Math.min(max, distinct.size));
        expect(leftOut).toBe(distinct.size - kept.length);
        expect(dropped).toHaveLength(leftOut);
        expect(keptPaths.every((m) => distinct.has(m))).toBe(true);
        if (leftOut > 0) {
          const shallowestDropped = Math.min(...dropped.map((m) => mountDepth(m.mount)));
          for (const m of distinct) if (mountDepth(m) < shallowestDropped) expect(keptPaths).toContain(m);
          // No mount left out is shallower than one kept.
          expect(Math.max(...keptPaths.map(mountDepth), -1)).toBeLessThanOrEqual(shallowestDropped);
        }
        // The order given is kept.
        expect(keptPaths).toEqual([...distinct].filter((m) => keptPaths.includes(m)));
      }),
    );
  });

  it('is stable: a kept mount stays kept when others come no shallower than it, or when mounts left out go', () => {
    fc.assert(
      fc.property(mounts, mounts, limit, (given, more, max) => {
        const first = chooseMounts(given, max).kept.map((m) => m.mount);
        const deepest = Math.max(...first.map(mountDepth), -1);
        const firstSet = new Set(first);
        // Newcomers at the depth of the deepest kept or deeper (a pod's volumes, coming).
        const came = more.filter((m) => mountDepth(m.mount) >= deepest);
        expect(chooseMounts([...came, ...given], max, firstSet).kept.map((m) => m.mount)).toEqual(
          expect.arrayContaining(first),
        );
        // The same mounts again: the same choice.
        expect(chooseMounts(given, max, firstSet).kept.map((m) => m.mount)).toEqual(first);
        // Mounts left out going away changes nothing.
        const fewer = given.filter((m, i) => firstSet.has(m.mount) || i % 2 === 0);
        expect(chooseMounts(fewer, max, firstSet).kept.map((m) => m.mount)).toEqual(first);
      }),
    );
  });

  it('the same mounts in any order give the same set', () => {
    fc.assert(
      fc.property(mounts, limit, (given, max) => {
        const a = chooseMounts(given, max).kept.map((m) => m.mount);
        const b = chooseMounts([...given].reverse(), max).kept.map((m) => m.mount);
        expect(new Set(b)).toEqual(new Set(a));
      }),
    );
  });
});
