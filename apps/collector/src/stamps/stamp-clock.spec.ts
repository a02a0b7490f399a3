import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { loadCollectorConfig } from '../config';
import { MAX_RIDE_OUT_MS, StampClock, type StepEvent, type TimeSources } from './stamp-clock';
import { STAMP_FILE, StampService } from './stamp.service';

/** A wall clock and a monotonic one that move when told: `pass(ms)` moves both, `step(ms)` the wall clock alone. */
class SteppedTime implements TimeSources {
  private w: number;
  private m = 5_000.25;
  constructor(start: number) {
    this.w = start;
  }
  wall(): number {
    return Math.floor(this.w);
  }
  monotonic(): number {
    return this.m;
  }
  pass(ms: number): void {
    this.w += ms;
    this.m += ms;
  }
  step(ms: number): void {
    this.w += ms;
  }
}

const T0 = Date.UTC(2025, 0, 1, 12);
const MIN = 60_000;

describe('StampClock', () => {
  it('follows the wall clock while it runs forward', () => {
    const time = new SteppedTime(T0);
    const clock = new StampClock({ time });
    expect(clock.now()).toBe(T0);
    time.pass(1_000);
    expect(clock.now()).toBe(T0 + 1_000);
    expect(clock.last).toBe(T0 + 1_000);
  });

  it('rides out a step back: stamps go on from the last one, at half pace, until the wall clock passes them', () => {
    const time = new SteppedTime(T0);
    const events: StepEvent[] = [];
    const clock = new StampClock({ time, onStep: (e) => events.push(e) });
    expect(clock.now()).toBe(T0);
    time.pass(30_000);
    expect(clock.now()).toBe(T0 + 30_000);
    time.step(-10 * MIN); // NTP steps the clock back 10 min
    const stamps: number[] = [];
    for (let s = 0; s < 20 * 60; s++) {
      stamps.push(clock.now());
      time.pass(1_000);
    }
    // Never backwards, half a second apart (RIDE_OUT_PACE) while the wall clock is behind: it gains 10 min in 20…
    expect(stamps[0]).toBe(T0 + 30_000);
    for (let i = 1; i < stamps.length; i++) expect(stamps[i]).toBe(stamps[i - 1] + 500);
    expect(stamps.at(-1)).toBeGreaterThan(time.wall() - 1_000);
    // …and the wall clock's again once it has caught up.
    time.pass(1_000);
    expect(clock.now()).toBe(time.wall());
    time.pass(1_000);
    expect(clock.now()).toBe(time.wall());
    expect(events).toEqual([{ kind: 'riding', ms: 10 * MIN }, { kind: 'caught-up' }]);
  });

  it('follows a step forward at once', () => {
    const time = new SteppedTime(T0);
    const clock = new StampClock({ time });
    clock.now();
    time.pass(1_000);
    time.step(5 * MIN);
    expect(clock.now()).toBe(T0 + 1_000 + 5 * MIN);
  });

  it('loses no time when stamped many times a millisecond while riding out a step', () => {
    const time = new SteppedTime(T0);
    const clock = new StampClock({ time });
    clock.now();
    time.step(-MIN);
    let last = 0;
    for (let i = 0; i < 100_000; i++) {
      time.pass(0.3);
      last = clock.now();
    }
    expect(last).toBe(T0 + 15_000); // 30 s at half pace
  });

  it('follows a step back of more than MAX_RIDE_OUT_MS (the clock was that wrong before), and says so', () => {
    const time = new SteppedTime(T0);
    const events: StepEvent[] = [];
    const clock = new StampClock({ time, onStep: (e) => events.push(e) });
    clock.now();
    time.step(-MAX_RIDE_OUT_MS - 1);
    expect(clock.now()).toBe(T0 - MAX_RIDE_OUT_MS - 1);
    expect(events).toEqual([{ kind: 'followed', ms: MAX_RIDE_OUT_MS + 1 }]);
  });

  it("starts from a floor (the previous process's last stamp) when the wall clock is behind it; not from one far ahead", () => {
    const time = new SteppedTime(T0 - 10 * MIN); // rebooted with a slow clock
    const clock = new StampClock({ time, floor: T0 });
    expect(clock.floor).toBe(T0);
    expect(clock.now()).toBe(T0);
    time.pass(2_000);
    expect(clock.now()).toBe(T0 + 1_000);

    const events: StepEvent[] = [];
    const far = new StampClock({
      time: new SteppedTime(T0),
      floor: T0 + MAX_RIDE_OUT_MS + 1,
      onStep: (e) => events.push(e),
    });
    expect(far.floor).toBeUndefined();
    expect(far.now()).toBe(T0);
    expect(events).toEqual([{ kind: 'followed', ms: MAX_RIDE_OUT_MS + 1 }]);
  });
});

describe('StampService: the last stamp kept in the spool directory across restarts', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fw-stamps-'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  function service(time: TimeSources, lines: string[] = []) {
    const config = loadCollectorConfig({
      FLEETWATCH_SITE: 'test-site',
      FLEETWATCH_LOCATION: 'lab',
      COLLECTOR_SPOOL_DIR: dir,
    });
    const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(line) });
    return new StampService(config, logger, time);
  }

  it('a process restarted with its clock 10 min behind stamps after the last stamp of the one before', async () => {
    const before = new SteppedTime(T0);
    const first = service(before);
    await first.onModuleInit();
    first.onApplicationBootstrap();
    first.now();
    before.pass(4_000);
    expect(first.now()).toBe(T0 + 4_000);
    await first.onApplicationShutdown();
    expect(JSON.parse(await readFile(join(dir, STAMP_FILE), 'utf8'))).toMatchObject({ stamp: T0 + 4_000 });

    const after = new SteppedTime(T0 + 60_000 - 10 * MIN); // a minute later, the clock 10 min slow
    const lines: string[] = [];
    const second = service(after, lines);
    await second.onModuleInit();
    const stamps = [second.now()];
    after.pass(1_000);
    stamps.push(second.now());
    expect(stamps).toEqual([T0 + 4_000, T0 + 4_500]);
    expect(lines.some((l) => l.includes('wall clock behind the last stamp'))).toBe(true);
    // Written again as it moves on (each STAMP_SAVE_MS, and at shutdown).
    await second.save();
    expect(JSON.parse(await readFile(join(dir, STAMP_FILE), 'utf8'))).toMatchObject({ stamp: T0 + 4_500 });
    await second.onApplicationShutdown();
  });

  it('a step back of more than an hour, followed, is written too: a restart an hour later does not take the old stamp as its floor', async () => {
    // The clock ran 90 min ahead (stamps saved there), then NTP corrected it: stamps follow the wall clock back.
    const time = new SteppedTime(T0 + 90 * MIN);
    const first = service(time);
    await first.onModuleInit();
    first.now();
    await first.save();
    expect(JSON.parse(await readFile(join(dir, STAMP_FILE), 'utf8'))).toMatchObject({ stamp: T0 + 90 * MIN });
    time.step(-90 * MIN);
    expect(first.now()).toBe(T0);
    time.pass(31 * MIN);
    expect(first.now()).toBe(T0 + 31 * MIN);
    await first.save();
    expect(JSON.parse(await readFile(join(dir, STAMP_FILE), 'utf8'))).toMatchObject({ stamp: T0 + 31 * MIN });

    // A crash and a restart 31 min after the correction, the clock right: stamps follow it, not 59 min ahead of it.
    const second = service(new SteppedTime(T0 + 31 * MIN + 1_000));
    await second.onModuleInit();
    expect(second.now()).toBe(T0 + 31 * MIN + 1_000);
    await second.onApplicationShutdown();
  });

  it('an unreadable stamp file is said and stamps start from the wall clock', async () => {
    await writeFile(join(dir, STAMP_FILE), 'not json');
    const lines: string[] = [];
    const s = service(new SteppedTime(T0), lines);
    await s.onModuleInit();
    expect(s.now()).toBe(T0);
    expect(lines.some((l) => l.includes('stamp file not read'))).toBe(true);
    await s.onApplicationShutdown();
    expect(JSON.parse(await readFile(join(dir, STAMP_FILE), 'utf8'))).toMatchObject({ stamp: T0 });
  });
});
