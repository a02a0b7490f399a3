import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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
});
