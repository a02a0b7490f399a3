import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// The heap summary of bench:memory on a real snapshot of a small process: one object
// that holds a known amount must come out as the biggest retainer, by its constructor.

interface Summary {
  reachableMb: number;
  classes: Array<{ name: string; count: number; self: number; retained: number }>;
  dominators: Array<{ what: string; retainedMb: number; chain: string }>;
}

describe('heap-summary', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'fw-heap-summary-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('names what holds the memory: retained size per constructor and the biggest retainer', () => {
    // 50,000 small objects (one number field each) held by one BigHolder, plus a Leaf nested in another Leaf.
    const program = `
      class BigHolder { constructor() { this.items = Array.from({ length: 50000 }, (_, i) => ({ i: i + 0.5 })); } }
      class Leaf { constructor(inner) { this.inner = inner; this.pad = new Array(1000).fill(1.5); } }
      globalThis.kept = new BigHolder();
      globalThis.leaf = new Leaf(new Leaf(null));
      require('v8').writeHeapSnapshot(${JSON.stringify(join(dir, 'small.heapsnapshot'))});
    `;
    execFileSync(process.execPath, ['-e', program], { stdio: 'pipe' });
    expect(readdirSync(dir)).toEqual(['small.heapsnapshot']);
    const out = execFileSync(
      process.execPath,
      [join(__dirname, 'heap-summary.mjs'), join(dir, 'small.heapsnapshot'), '--json'],
      { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 },
    );
    const summary = JSON.parse(out) as Summary;

    const holder = summary.classes.find((c) => c.name === 'BigHolder');
    // 50,000 objects of at least 24 bytes each, their heap numbers and the array of 50,000 slots.
    expect(holder?.count).toBe(1);
    expect(holder?.retained).toBeGreaterThan(1.5);
    expect(holder?.retained).toBeLessThan(summary.reachableMb);
    expect(summary.dominators[0]?.what).toBe('BigHolder');
    // Nested instances of one constructor count once in its retained size (as DevTools does).
    const leaf = summary.classes.find((c) => c.name === 'Leaf');
    expect(leaf?.count).toBe(2);
    // Two 8 KB pads and two small Leafs: ~16 KB; counting the inner Leaf again would give ~24 KB.
    const leafBytes = (leaf?.retained ?? 0) * 1024 * 1024;
    expect(leafBytes).toBeGreaterThan(16_000);
    expect(leafBytes).toBeLessThan(20_000);
  });
});
