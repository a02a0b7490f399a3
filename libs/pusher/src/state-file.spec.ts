import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { JsonStateFile, watcherStateFile } from './state-file';

// The watchers' state file (the Docker watcher's ledger, the Kubernetes watcher's pods). Reading and writing are
// covered through their users (sent-ledger.spec, pod-watcher.spec); here, what they share.

const lines: Array<[string, string]> = [];
const log = {
  info: (m: string) => void lines.push(['info', m]),
  warn: (m: string) => void lines.push(['warn', m]),
  error: (m: string) => void lines.push(['error', m]),
};
let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fw-state-'));
  lines.length = 0;
});
afterEach(() => rm(dir, { recursive: true, force: true }));

const schema = z.object({ version: z.literal(1), n: z.number() });

describe('JsonStateFile', () => {
  it('a path it cannot write is logged once, not at every change, and once more when a write works again', async () => {
    // A file where its directory should be: every write fails.
    const blocker = join(dir, 'blocked');
    await writeFile(blocker, 'x');
    let n = 0;
    const state = new JsonStateFile(join(blocker, 'state.json'), schema, () => ({ version: 1 as const, n: ++n }), log);
    for (let i = 0; i < 5; i++) await state.flush();
    expect(lines.filter(([level]) => level === 'warn')).toHaveLength(1);
    expect(lines[0][1]).toMatch(/^watcher state file not written/);
    await rm(blocker);
    await state.flush();
    expect(lines.at(-1)).toEqual(['info', 'watcher state file written again']);
    expect(
      await new JsonStateFile(join(blocker, 'state.json'), schema, () => ({ version: 1, n: 0 }), log).load(),
    ).toEqual({
      version: 1,
      n: 6,
    });
  });

  it('one file per daemon and identity in ~/.fleetwatch; as set; none for off', () => {
    const a = watcherStateFile('k8s-watcher', undefined, ['https://a:6443', 'shop', '', '']);
    const b = watcherStateFile('k8s-watcher', undefined, ['https://b:6443', 'shop', '', '']);
    expect(a).toMatch(/\.fleetwatch\/k8s-watcher-[0-9a-f]{16}\.json$/);
    expect(a).not.toBe(b);
    expect(watcherStateFile('k8s-watcher', '/var/lib/x.json', ['a'])).toBe('/var/lib/x.json');
    expect(watcherStateFile('k8s-watcher', 'off', ['a'])).toBeUndefined();
  });
});
