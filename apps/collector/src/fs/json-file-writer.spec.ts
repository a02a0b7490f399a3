import * as fsp from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type JsonFileFs, writeJsonFile } from './json-file-writer';

let dir: string;
beforeEach(async () => (dir = await fsp.mkdtemp(join(tmpdir(), 'fw-json-file-'))));
afterEach(() => fsp.rm(dir, { recursive: true, force: true }));

const errno = (code: string) => Object.assign(new Error(code), { code });

/** The real file system, every call recorded; `fail` makes a call throw instead. */
function spyFs(fail: { rename?: Error; dirSync?: Error; dirOpen?: Error } = {}) {
  const calls: string[] = [];
  const fs: JsonFileFs = {
    mkdir: (p, o) => fsp.mkdir(p, o),
    open: async (p, flags, mode) => {
      const what = flags === 'r' ? 'dir' : 'tmp';
      calls.push(`open ${what}`);
      if (what === 'dir' && fail.dirOpen) throw fail.dirOpen;
      const fh = await fsp.open(p, flags, mode);
      return {
        writeFile: (data: string) => fh.writeFile(data),
        sync: async () => {
          calls.push(`sync ${what}`);
          if (what === 'dir' && fail.dirSync) throw fail.dirSync;
          await fh.sync();
        },
        close: () => fh.close(),
      } as Awaited<ReturnType<JsonFileFs['open']>>;
    },
    rename: async (a, b) => {
      calls.push('rename');
      if (fail.rename) throw fail.rename;
      await fsp.rename(a, b);
    },
    unlink: async (p) => {
      calls.push('unlink');
      await fsp.unlink(p);
    },
  };
  return { fs, calls };
}

describe('writeJsonFile', () => {
  it('replaces the file whole (directory made), leaving no temporary file', async () => {
    const path = join(dir, 'nested', 'x.json');
    await writeJsonFile(path, { n: 1 });
    await writeJsonFile(path, { n: 2, s: 'two' });
    expect(JSON.parse(await fsp.readFile(path, 'utf8'))).toEqual({ n: 2, s: 'two' });
    expect(await fsp.readdir(join(dir, 'nested'))).toEqual(['x.json']);
  });

  it('makes the file readable by its owner only (the assignment carries credential headers), replacing one that was not', async () => {
    const path = join(dir, 'x.json');
    await fsp.writeFile(path, '{}', { mode: 0o644 });
    await fsp.chmod(path, 0o644);
    await writeJsonFile(path, { n: 1 });
    expect((await fsp.stat(path)).mode & 0o777).toBe(0o600);
    await fsp.rm(path);
    await writeJsonFile(path, { n: 2 });
    expect((await fsp.stat(path)).mode & 0o777).toBe(0o600);
  });

  it('fsyncs the file before the rename and the directory after it', async () => {
    const { fs, calls } = spyFs();
    await writeJsonFile(join(dir, 'x.json'), { n: 1 }, fs);
    expect(calls).toEqual(['open tmp', 'sync tmp', 'rename', 'open dir', 'sync dir']);
  });

  it('removes the temporary file and keeps the old one when the write fails', async () => {
    const path = join(dir, 'x.json');
    await writeJsonFile(path, { n: 1 });
    const { fs, calls } = spyFs({ rename: errno('EXDEV') });
    await expect(writeJsonFile(path, { n: 2 }, fs)).rejects.toThrow('EXDEV');
    expect(calls).toContain('unlink');
    expect(await fsp.readdir(dir)).toEqual(['x.json']);
    expect(JSON.parse(await fsp.readFile(path, 'utf8'))).toEqual({ n: 1 });
  });

  it.each(['EISDIR', 'EINVAL', 'EPERM'])('skips a directory fsync the platform refuses (%s)', async (code) => {
    const path = join(dir, 'x.json');
    await writeJsonFile(path, { n: 1 }, spyFs({ dirSync: errno(code) }).fs);
    await writeJsonFile(path, { n: 2 }, spyFs({ dirOpen: errno(code) }).fs);
    expect(JSON.parse(await fsp.readFile(path, 'utf8'))).toEqual({ n: 2 });
  });

  it('throws any other failure of the directory fsync (the rename may not be durable)', async () => {
    const path = join(dir, 'x.json');
    await expect(writeJsonFile(path, { n: 1 }, spyFs({ dirSync: errno('EIO') }).fs)).rejects.toThrow('EIO');
  });

  it('says so when the directory fsync failed after the rename: the new file is in place, its code kept', async () => {
    const path = join(dir, 'x.json');
    await writeJsonFile(path, { n: 1 });
    const failed = await writeJsonFile(path, { n: 2 }, spyFs({ dirSync: errno('EIO') }).fs).catch((e: unknown) => e);
    expect(failed).toMatchObject({
      code: 'EIO',
      message: expect.stringMatching(/written, but its directory not synced/),
    });
    expect(JSON.parse(await fsp.readFile(path, 'utf8'))).toEqual({ n: 2 });
  });

  it('two collectors sharing a directory (pid 1 in each container) never pick the same temporary file', async () => {
    // Two processes: two instances of the module (each its own state), the same pid.
    const load = () => {
      let m: typeof import('./json-file-writer') | undefined;
      jest.isolateModules(() => (m = jest.requireActual<typeof import('./json-file-writer')>('./json-file-writer')));
      return m as typeof import('./json-file-writer');
    };
    const tmps: string[] = [];
    const fs: JsonFileFs = { ...spyFs().fs, open: (p, flags, mode) => (tmps.push(p), fsp.open(p, flags, mode)) };
    const path = join(dir, 'last-stamp.json');
    await load().writeJsonFile(path, { stamp: 1 }, fs);
    await load().writeJsonFile(path, { stamp: 2 }, fs);
    const names = tmps.filter((p) => p.endsWith('.tmp'));
    expect(names).toHaveLength(2);
    expect(names[0]).not.toBe(names[1]);
  });

  it("never opens over a temporary file that exists (another writer's): fails, leaving it and the file as they were", async () => {
    const path = join(dir, 'x.json');
    await writeJsonFile(path, { n: 1 });
    const theirs = '{"theirs":"being written"}';
    // Another writer creates the very name this one picked just before it opens it.
    const fs: JsonFileFs = {
      ...spyFs().fs,
      open: async (p, flags, mode) => {
        if (p.endsWith('.tmp')) await fsp.writeFile(p, theirs);
        return fsp.open(p, flags, mode);
      },
    };
    await expect(writeJsonFile(path, { n: 2 }, fs)).rejects.toMatchObject({ code: 'EEXIST' });
    const tmp = (await fsp.readdir(dir)).filter((f) => f.endsWith('.tmp'));
    expect(tmp).toHaveLength(1);
    expect(await fsp.readFile(join(dir, tmp[0]), 'utf8')).toBe(theirs);
    expect(JSON.parse(await fsp.readFile(path, 'utf8'))).toEqual({ n: 1 });
  });
});
