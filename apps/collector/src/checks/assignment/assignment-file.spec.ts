import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Spool } from '../spool/spool';
import type { LockHolder } from '../spool/spool-lock';
import { AssignmentFile } from './assignment-file';

let dir: string;
beforeEach(async () => (dir = await mkdtemp(join(tmpdir(), 'fw-assignment-'))));
afterEach(() => rm(dir, { recursive: true, force: true }));

const sample = (version: number) => ({
  location: 'lab-1',
  version,
  hash: 'a'.repeat(64),
  receivedAt: new Date().toISOString(),
  checks: [{ id: 'x', version }],
});

describe('AssignmentFile', () => {
  it('round-trips, replaces the previous copy whole, and leaves no temporary file', async () => {
    const f = new AssignmentFile(join(dir, 'nested', 'assignment.json'));
    expect(await f.load()).toBeUndefined();
    await f.save(sample(1));
    await f.save(sample(2));
    expect(await f.load()).toMatchObject({ version: 2, checks: [{ id: 'x', version: 2 }] });
    expect(await readdir(join(dir, 'nested'))).toEqual(['assignment.json']);
  });

  it('refuses a file that is not an assignment (a torn copy is never produced, but a hand edit can be)', async () => {
    const path = join(dir, 'assignment.json');
    await writeFile(path, '{"location":"lab-1","version":1,"hash"');
    await expect(new AssignmentFile(path).load()).rejects.toThrow();
    await writeFile(path, '{"location":"lab-1"}');
    await expect(new AssignmentFile(path).load()).rejects.toThrow(/not an assignment file/);
    expect(JSON.parse(await readFile(path, 'utf8'))).toEqual({ location: 'lab-1' });
  });

  it('a collector whose spool lock was taken over does not store its assignment over the new holder’s', async () => {
    const container = (host: string): LockHolder => ({ host, pid: 1, nonce: randomUUID(), pidns: 'pid:[1]' });
    const fast = { heartbeatMs: 100, staleAfterMs: 1_500 };
    const a = await Spool.open({ dir, maxBytes: 1024 * 1024, lock: { self: container('container-a'), ...fast } });
    const path = join(dir, 'assignment.json');
    const fileA = new AssignmentFile(path, () => a.ownsDir());
    await fileA.save(sample(1));
    // container-b's clock says a's heartbeat is an hour old: it takes the directory and stores a newer assignment.
    const b = await Spool.open({
      dir,
      maxBytes: 1024 * 1024,
      lock: { self: container('container-b'), ...fast, now: () => Date.now() + 3_600_000 },
    });
    await new AssignmentFile(path, () => b.ownsDir()).save(sample(3));
    // a (frozen, now stopping) gets a late answer before it saw that its lock is gone.
    await fileA.save(sample(2));
    expect(await new AssignmentFile(path).load()).toMatchObject({ version: 3 });
    await a.close();
    await b.close();
  });

  it('at load, removes the temporary files a crash left beside a file outside the spool directory; nothing else', async () => {
    const elsewhere = join(dir, 'etc');
    await mkdir(elsewhere);
    const path = join(elsewhere, 'lab.json');
    const f = new AssignmentFile(path);
    await f.save(sample(1));
    const leftovers = ['lab.json.0123456789ab.tmp'];
    const fresh = 'lab.json.ba9876543210.tmp';
    // A directory shared with other tools (/etc): `<name>.<pid>.tmp` may be theirs, so only our writer's form goes.
    const notOurs = [
      'lab.json.tmp',
      'lab.json.17.3.tmp',
      'lab.json.17.tmp',
      'other.json.0123456789ab.tmp',
      'labXjson.0123456789ab.tmp',
      'lab.json.bak',
    ];
    const hourAgo = (Date.now() - 3_600_000) / 1000;
    for (const n of [...leftovers, fresh, ...notOurs]) {
      await writeFile(join(elsewhere, n), '{"location":"lab-1"');
      if (n !== fresh) await utimes(join(elsewhere, n), hourAgo, hourAgo);
    }
    expect(await f.load()).toMatchObject({ version: 1 });
    expect((await readdir(elsewhere)).sort()).toEqual(['lab.json', fresh, ...notOurs].sort());
  });
});
