import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InstanceFloors } from '@fleetwatch/pusher';
import { SentLedger } from './sent-ledger';

const logs: string[] = [];
const log = { info: () => undefined, warn: (m: string) => void logs.push(m), error: (m: string) => void logs.push(m) };
let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fw-ledger-'));
  logs.length = 0;
});
afterEach(() => rm(dir, { recursive: true, force: true }));

describe('SentLedger', () => {
  it('keeps accepted states across a restart, the latest last, removals forgotten', async () => {
    const file = join(dir, 'sub', 'state.json');
    const a = new SentLedger(file, log, 10);
    await a.load();
    a.accepted('c1', 'running', 'web-1', 'nginx');
    a.accepted('c1', 'paused', 'web-1', 'nginx');
    a.accepted('c1', 'running', 'web-1', 'nginx');
    a.accepted('c2', 'exited', 'db-1');
    a.forget('c2');
    await a.flush();
    const b = new SentLedger(file, log);
    await b.load();
    expect([...b.all]).toEqual([['c1', { history: ['paused', 'running'], name: 'web-1', image: 'nginx' }]]);
  });

  it('keeps each container`s last sent date across a restart: set as accepted, moved as sent, kept when not told', async () => {
    const file = join(dir, 'state.json');
    const a = new SentLedger(file, log, 10);
    await a.load();
    a.dated('c0', 5); // nothing accepted for it yet: no entry
    a.accepted('c1', 'running', 'web-1', 'nginx', 1_000);
    a.dated('c1', 2_000); // a later update sent, not yet accepted
    a.accepted('c2', 'exited', 'db-1', undefined, 3_000);
    a.accepted('c2', 'running', 'db-1'); // no date told: the one kept stays
    await a.flush();
    const b = new SentLedger(file, log);
    await b.load();
    expect([...b.all]).toEqual([
      ['c1', { history: ['running'], name: 'web-1', image: 'nginx', at: 2_000 }],
      ['c2', { history: ['exited', 'running'], name: 'db-1', at: 3_000 }],
    ]);
  });

  it('keeps each pushed instance`s last sent date across a restart, whichever container it was about; old ones forgotten', async () => {
    const file = join(dir, 'state.json');
    const now = Date.now();
    const a = new SentLedger(file, log, 10);
    a.keepInstanceFloors(new InstanceFloors(3_600_000));
    await a.load();
    a.instanceDated('web-1', now - 2_000, true);
    a.instanceDated('web-1', now - 5_000, true); // earlier than the one kept: the later stays
    a.instanceDated('db-1', now - 7_200_000, true); // older than the horizon: can date nothing
    await a.flush();
    expect(JSON.parse(await readFile(file, 'utf8'))).toEqual({
      version: 1,
      containers: {},
      instances: { 'web-1': now - 2_000 },
    });
    const floors = new InstanceFloors(3_600_000);
    const b = new SentLedger(file, log);
    b.keepInstanceFloors(floors);
    await b.load();
    expect(floors.get('web-1')).toBe(now - 2_000);
    expect(floors.get('db-1')).toBeUndefined();
    // A ledger read without them (the version before drops what it does not know): its containers all the same.
    const c = new SentLedger(file, log);
    await c.load();
    expect([...c.all]).toEqual([]);
    expect(logs).toEqual([]);
  });

  it('reads a ledger written before dates were kept (no `at`): its entries, no date, nothing logged', async () => {
    const file = join(dir, 'state.json');
    await writeFile(
      file,
      JSON.stringify({
        version: 1,
        containers: { c: { history: ['paused', 'running'], name: 'web-1', image: 'nginx' } },
      }),
    );
    const a = new SentLedger(file, log);
    await a.load();
    expect(logs).toEqual([]);
    expect([...a.all]).toEqual([['c', { history: ['paused', 'running'], name: 'web-1', image: 'nginx' }]]);
    a.dated('c', 7_000);
    await a.flush();
    expect(JSON.parse(await readFile(file, 'utf8')).containers.c).toEqual({
      history: ['paused', 'running'],
      name: 'web-1',
      image: 'nginx',
      at: 7_000,
    });
  });

  it('bounds each history to its last 32 states', async () => {
    const file = join(dir, 'state.json');
    const a = new SentLedger(file, log);
    for (let i = 0; i < 40; i++) a.accepted('c', `s${i}`, 'n');
    await a.flush();
    const b = new SentLedger(file, log);
    await b.load();
    expect(b.all.get('c')?.history).toEqual(Array.from({ length: 32 }, (_, i) => `s${i + 8}`));
  });

  it('writes floors raised by refreshes alone at most once every 30 s; a container`s acceptance and the stop write them', async () => {
    // Refreshes are dated now, each raising its instance's floor: written at each (every 5 s), a fleet where nothing
    // changed rewrote and synced the file all day.
    const file = join(dir, 'state.json');
    const now = Date.now();
    const a = new SentLedger(file, log, 10);
    a.keepInstanceFloors(new InstanceFloors(3_600_000));
    await a.load();
    const onDisk = async () =>
      (JSON.parse(await readFile(file, 'utf8').catch(() => '{}')) as { instances?: Record<string, number> }).instances;
    a.instanceDated('web-1', now - 10_000, true); // the first: written
    await new Promise((r) => setTimeout(r, 100));
    expect(await onDisk()).toEqual({ 'web-1': now - 10_000 });
    for (let i = 1; i <= 5; i++) a.instanceDated('web-1', now - 10_000 + i * 1_000, true); // refreshes: not yet
    await new Promise((r) => setTimeout(r, 100));
    expect(await onDisk()).toEqual({ 'web-1': now - 10_000 });
    a.accepted('c', 'x', 'web-1', undefined, now - 4_000); // a container's update: written, floors and all
    await new Promise((r) => setTimeout(r, 100));
    expect(await onDisk()).toEqual({ 'web-1': now - 5_000 });
    a.instanceDated('web-1', now - 3_000, true);
    await a.flush(); // the stop
    expect(await onDisk()).toEqual({ 'web-1': now - 3_000 });
  });

  it('writes within the debounce without a flush', async () => {
    const file = join(dir, 'state.json');
    const a = new SentLedger(file, log, 20);
    a.accepted('c', 'x', 'n');
    await new Promise((r) => setTimeout(r, 200));
    expect(JSON.parse(await readFile(file, 'utf8'))).toEqual({
      version: 1,
      containers: { c: { history: ['x'], name: 'n' } },
    });
  });

  it.each([
    ['not JSON', '{"version":1,'],
    ['another shape', '{"version":2,"containers":{}}'],
    [
      'a history too long',
      JSON.stringify({ version: 1, containers: { c: { history: Array(33).fill('x'), name: 'n' } } }),
    ],
  ])('a file with %s is ignored, said once, and replaced at the next write', async (_what, text) => {
    const file = join(dir, 'state.json');
    await writeFile(file, text);
    const a = new SentLedger(file, log);
    await a.load();
    expect(a.all.size).toBe(0);
    expect(logs).toEqual(['watcher state file not understood: starting without it']);
    a.accepted('c', 'x', 'n');
    await a.flush();
    expect(JSON.parse(await readFile(file, 'utf8')).containers.c.history).toEqual(['x']);
  });

  it('without a file it keeps nothing on disk and never fails', async () => {
    const a = new SentLedger(undefined, log);
    await a.load();
    a.accepted('c', 'x', 'n');
    await a.flush();
    expect(a.all.get('c')?.history).toEqual(['x']);
    expect(logs).toEqual([]);
  });
});
