import { SerialLane } from './serial-lane';

const tick = () => new Promise((r) => setTimeout(r, 1));

function deferred() {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

describe('SerialLane', () => {
  it('runs one lane’s jobs one at a time, in order, while other lanes run beside them', async () => {
    const lane = new SerialLane();
    const log: string[] = [];
    const gate = deferred();
    const a1 = lane.runIn(1, async () => {
      log.push('a1 start');
      await gate.promise;
      log.push('a1 end');
    });
    const a2 = lane.runIn(1, async () => void log.push('a2'));
    const b1 = lane.runIn(2, async () => void log.push('b1'));
    await b1;
    expect(log).toEqual(['a1 start', 'b1']);
    gate.resolve();
    await Promise.all([a1, a2]);
    expect(log).toEqual(['a1 start', 'b1', 'a1 end', 'a2']);
  });

  it('an exclusive job waits for every lane and holds back what is queued after it', async () => {
    const lane = new SerialLane();
    const log: string[] = [];
    const gate = deferred();
    const a = lane.runIn(1, async () => {
      await gate.promise;
      log.push('a');
    });
    const x = lane.run(async () => {
      log.push('x start');
      await tick();
      log.push('x end');
    });
    const b = lane.runIn(2, async () => void log.push('b'));
    const c = lane.runIn(3, async () => void log.push('c (new lane)'));
    await tick();
    expect(log).toEqual([]);
    gate.resolve();
    await Promise.all([a, x, b, c]);
    expect(log.slice(0, 3)).toEqual(['a', 'x start', 'x end']);
    expect(log.slice(3).sort()).toEqual(['b', 'c (new lane)']);
  });

  it('a failing job rejects its caller only; the lane goes on', async () => {
    const lane = new SerialLane();
    await expect(lane.runIn(1, async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    await expect(lane.run(async () => Promise.reject(new Error('boom too')))).rejects.toThrow('boom too');
    await expect(lane.runIn(1, async () => 'ok')).resolves.toBe('ok');
    await lane.idle();
  });
});
