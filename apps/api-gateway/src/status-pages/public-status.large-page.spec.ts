import { largePage, turnsDuring } from './public-status.spec-helpers';

// A page of thousands of targets: its build (the changes read grouped per target, which windows cover each and its
// non-UP stretches, each target's day bars and incidents, each component's merge) held the gateway's event loop
// 0.56–0.68 s in one go at 5,000 targets (1.15–1.18 s with windows covering some of them) — every other request and
// WebSocket message waited. Only the maintenance walk yielded. Now every part yields each sliceMs.

describe('PublicStatusService: a page of 5,000 targets is built a slice at a time', () => {
  const now = Date.UTC(2026, 11, 7, 12);
  const targets = 25 * 200;

  it('yields at every chance with sliceMs 0 — each target in each per-target pass — and answers as a build in one go does', async () => {
    const page = largePage(25, 200, now);
    const inOneGo = await turnsDuring(() => page.service({ now: () => now, sliceMs: Infinity }).view('big'));
    const sliced = await turnsDuring(() => page.service({ now: () => now, sliceMs: 0 }).view('big'));
    // Two passes over the targets for their maintenance (today and yesterday first, then the rest), one for their
    // bars, one for their incidents: a turn before each target's share of each, besides the walk's own.
    expect(sliced.turns).toBeGreaterThanOrEqual(inOneGo.turns + 4 * targets);
    expect(sliced.result).toEqual(inOneGo.result);
    // The page is not trivial: outages and degraded days, incidents, and the windows excused some time (without
    // them the same history reads otherwise).
    const states = new Set(sliced.result.page.components.flatMap((c) => c.days.map((d) => d.state)));
    expect([...states].sort()).toEqual(['degraded', 'outage']);
    expect(sliced.result.page.incidents).toHaveLength(25); // 200 targets of a component: one incident going on
    const noWindows = await page.service({ now: () => now, sliceMs: Infinity, windows: false }).view('big');
    expect(noWindows.page.components.map((c) => c.uptime)).not.toEqual(
      sliced.result.page.components.map((c) => c.uptime),
    );
  }, 60_000);

  it('with the default slice: the event loop gets turns throughout, never waiting long against the build', async () => {
    const page = largePage(25, 200, now);
    const started = performance.now();
    const { result, turns, longest } = await turnsDuring(() => page.service({ now: () => now }).view('big'));
    const took = performance.now() - started;
    console.info(
      `${targets} targets: build ${Math.round(took)} ms, longest synchronous stretch ${Math.round(longest)} ms`,
    );
    expect(result.page.components).toHaveLength(25);
    // Not an absolute time (the box is shared): the build was cut in pieces, none a large part of it (10 ms slices of
    // a 0.6 s build here; in one go it is the whole build).
    expect(turns).toBeGreaterThan(5);
    expect(longest).toBeLessThan(took / 3);
  }, 60_000);

  it('builds interleaving: one per cache period whatever the yields, and an older build does not replace a newer', async () => {
    const clock = { now };
    const page = largePage(5, 200, now);
    const s = page.service({ now: () => clock.now, sliceMs: 0 });
    const first = s.view('big');
    // The first build is under way (it yields at every chance): a request now shares it.
    for (let i = 0; i < 50; i++) await new Promise((r) => setImmediate(r));
    const second = s.view('big');
    // Past the cache period, the history changed (every target UP all along): the next request builds anew, while the
    // first build has not finished.
    clock.now += 15_000;
    page.data.changes = [];
    const third = s.view('big');
    let firstDone = false;
    void first.then(() => (firstDone = true));
    await new Promise((r) => setImmediate(r));
    expect(firstDone).toBe(false);
    const [a, b, c] = await Promise.all([first, second, third]);
    expect(page.data.changesSinceCalls).toBe(2);
    expect(b.page).toBe(a.page);
    expect(a.page.incidents).not.toEqual([]);
    expect(c.page.incidents).toEqual([]);
    expect(c.page.components.map((x) => x.uptime)).toEqual([1, 1, 1, 1, 1]);
    // The cache holds the newer build: asked again, no read, the newer page.
    expect((await s.view('big')).page).toBe(c.page);
    expect(page.data.changesSinceCalls).toBe(2);
  }, 60_000);
});
