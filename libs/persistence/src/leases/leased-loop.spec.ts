import { LeasedLoop, type Lease, type LeasedJob } from './leased-loop';

/** A lease held while `free` says so (the real one, AdvisoryLease, is tested against Postgres in leased-loop.int-spec.ts). */
class SwitchLease implements Lease {
  free = true;
  isHeld = false;
  released = 0;
  async tryAcquire(): Promise<boolean> {
    this.isHeld = this.free;
    return this.isHeld;
  }
  async release(): Promise<void> {
    this.isHeld = false;
    this.released++;
  }
}

function recorder(log: string[], name: string, fail = false): LeasedJob {
  return {
    name,
    run: async (now: number) => {
      log.push(`${name}@${now}`);
      if (fail) throw new Error(`${name} broke`);
    },
  };
}

describe('LeasedLoop', () => {
  it('runs its jobs in order, once per tick, only while it holds the lease', async () => {
    const lease = new SwitchLease();
    const log: string[] = [];
    const loop = new LeasedLoop({
      lease,
      intervalMs: 60_000,
      jobs: [recorder(log, 'rebuild'), recorder(log, 'expire'), recorder(log, 'relay')],
    });
    expect(await loop.tick(1)).toBe(true);
    lease.free = false;
    expect(await loop.tick(2)).toBe(false);
    lease.free = true;
    expect(await loop.tick(3)).toBe(true);
    expect(log).toEqual(['rebuild@1', 'expire@1', 'relay@1', 'rebuild@3', 'expire@3', 'relay@3']);
  });

  it('a failing job is reported and does not keep the others from running', async () => {
    const log: string[] = [];
    const errors: string[] = [];
    const loop = new LeasedLoop({
      lease: new SwitchLease(),
      intervalMs: 60_000,
      jobs: [recorder(log, 'rebuild', true), recorder(log, 'expire'), recorder(log, 'relay')],
      onJobError: (job, err) => errors.push(`${job}: ${(err as Error).message}`),
    });
    await loop.tick(1);
    expect(log).toEqual(['rebuild@1', 'expire@1', 'relay@1']);
    expect(errors).toEqual(['rebuild: rebuild broke']);
  });

  it('ticks never overlap: a tick asked for during another runs after it', async () => {
    let active = 0;
    let maxActive = 0;
    const slow: LeasedJob = {
      name: 'slow',
      run: async () => {
        maxActive = Math.max(maxActive, ++active);
        await new Promise((r) => setTimeout(r, 20));
        active--;
      },
    };
    const loop = new LeasedLoop({ lease: new SwitchLease(), intervalMs: 60_000, jobs: [slow] });
    await Promise.all([loop.tick(), loop.tick(), loop.tick()]);
    expect(maxActive).toBe(1);
  });

  it('runs on its own every interval once started; stop waits for the tick in progress and releases the lease', async () => {
    const lease = new SwitchLease();
    const log: string[] = [];
    let release: () => void = () => undefined;
    const gate: LeasedJob = { name: 'gate', run: () => new Promise<void>((r) => (release = r)) };
    const loop = new LeasedLoop({ lease, intervalMs: 10, jobs: [recorder(log, 'a'), gate, recorder(log, 'b')] });
    loop.start();
    await new Promise((r) => setTimeout(r, 30));
    expect(log).toHaveLength(1); // the first tick waits in `gate`
    const stopping = loop.stop();
    release();
    await stopping;
    // The job after the one in progress was skipped; nothing ran after stop.
    expect(log).toHaveLength(1);
    expect(lease.released).toBe(1);
    await new Promise((r) => setTimeout(r, 30));
    expect(log).toHaveLength(1);
    expect(await loop.tick()).toBe(false);
  });

  it('keeps ticking after a tick in which the lease was not held', async () => {
    const lease = new SwitchLease();
    lease.free = false;
    const log: string[] = [];
    const loop = new LeasedLoop({ lease, intervalMs: 5, jobs: [recorder(log, 'job')] });
    loop.start();
    await new Promise((r) => setTimeout(r, 30));
    expect(log).toEqual([]);
    lease.free = true;
    await new Promise((r) => setTimeout(r, 40));
    await loop.stop();
    expect(log.length).toBeGreaterThan(1);
  });
});
