import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { z } from 'zod';
import { JsonStateFile, watcherStateFile } from './state-file';

// The watchers' state file (the Docker watcher's ledger, the Kubernetes watcher's pods). Reading and writing are
// covered through their users (sent-ledger.spec, pod-watcher.spec); here, what they share, and what a crash or power
// cut can leave of the file (written here as such a crash leaves it: power cannot be cut in a test).

/** File-system calls: `sync <file>`, `rename <from> > <to>`, `sync dir` (temporary names shortened). */
const mockEvents: string[] = [];
/** What the directory's fsync fails with (a platform that refuses it, a failing disk). */
const mockDirSync: { error?: NodeJS.ErrnoException } = {};
jest.mock('node:fs/promises', () => {
  const actual = jest.requireActual<typeof import('node:fs/promises')>('node:fs/promises');
  const name = (p: unknown) => basename(String(p)).replace(/\.[0-9a-f]{12}\.tmp$/, '.N.tmp');
  return {
    ...actual,
    open: async (path: string, flags?: string, mode?: number) => {
      const fh = await actual.open(path, flags, mode);
      const dir = (await fh.stat()).isDirectory();
      const sync = fh.sync.bind(fh);
      fh.sync = async () => {
        mockEvents.push(`sync ${dir ? 'dir' : name(path)}`);
        if (dir && mockDirSync.error) throw mockDirSync.error;
        return sync();
      };
      return fh;
    },
    rename: (from: string, to: string) => {
      mockEvents.push(`rename ${name(from)} > ${name(to)}`);
      return actual.rename(from, to);
    },
  };
});

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
  mockEvents.length = 0;
  delete mockDirSync.error;
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

  it('is written durably: the temporary file synced, renamed over the old one, then the directory synced', async () => {
    const file = join(dir, 'state.json');
    await new JsonStateFile(file, schema, () => ({ version: 1 as const, n: 1 }), log).flush();
    expect(mockEvents).toEqual(['sync state.json.N.tmp', 'rename state.json.N.tmp > state.json', 'sync dir']);
    expect(JSON.parse(await readFile(file, 'utf8'))).toEqual({ version: 1, n: 1 });
    expect(lines).toEqual([]);
  });

  it.each(['EISDIR', 'EINVAL', 'EPERM'])(
    'a directory fsync the platform refuses (%s) is skipped: written, nothing logged',
    async (code) => {
      mockDirSync.error = Object.assign(new Error(code), { code });
      const file = join(dir, 'state.json');
      await new JsonStateFile(file, schema, () => ({ version: 1 as const, n: 2 }), log).flush();
      expect(JSON.parse(await readFile(file, 'utf8'))).toEqual({ version: 1, n: 2 });
      expect(lines).toEqual([]);
    },
  );

  it('a directory fsync that fails otherwise (EIO) is a failed write, logged: the rename may not survive', async () => {
    mockDirSync.error = Object.assign(new Error('EIO'), { code: 'EIO' });
    const fields: object[] = [];
    const file = join(dir, 'state.json');
    await new JsonStateFile(file, schema, () => ({ version: 1 as const, n: 3 }), {
      ...log,
      warn: (m: string, f?: object) => (log.warn(m), fields.push(f ?? {})),
    }).flush();
    expect(lines).toEqual([['warn', 'watcher state file not written (not logged again until a write works)']]);
    // Not "not written" alone: the new file is in place, only its rename may not survive a power cut.
    expect(fields).toEqual([{ file, error: expect.stringMatching(/^written, but its directory not synced.*EIO/) }]);
    expect(JSON.parse(await readFile(file, 'utf8'))).toEqual({ version: 1, n: 3 });
  });

  it.each([
    ['empty (renamed before its data reached the disk)', ''],
    ['NUL bytes (size written, data not)', '\0'.repeat(20)],
    ['cut short', '{"version":1,"n'],
    ['an older version', '{"version":0,"count":4}'],
    ['a newer version', '{"version":2,"n":4,"more":[]}'],
  ])('%s: logged, the watcher starts without it, and the next write replaces it', async (_why, content) => {
    const file = join(dir, 'state.json');
    await writeFile(file, content);
    const state = new JsonStateFile(file, schema, () => ({ version: 1 as const, n: 5 }), log);
    expect(await state.load()).toBeUndefined();
    expect(lines).toEqual([['warn', 'watcher state file not understood: starting without it']]);
    await state.flush();
    expect(await state.load()).toEqual({ version: 1, n: 5 });
  });

  it('missing: no state, nothing logged; a temporary file a crash left beside it is not read', async () => {
    const file = join(dir, 'state.json');
    await writeFile(`${file}.0123456789ab.tmp`, '{"version":1,"n":9}');
    expect(await new JsonStateFile(file, schema, () => ({ version: 1 as const, n: 0 }), log).load()).toBeUndefined();
    expect(lines).toEqual([]);
    expect(await readdir(dir)).toEqual(['state.json.0123456789ab.tmp']);
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
