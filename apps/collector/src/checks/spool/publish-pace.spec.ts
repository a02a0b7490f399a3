import { MAX_TIMEOUT_FACTOR, PublishPace } from './publish-pace';

describe('PublishPace (how the spool drain sizes batches and their confirm timeout)', () => {
  it('starts at the configured batch and timeout, and stays there while batches are confirmed quickly', () => {
    const p = new PublishPace(500, 5_000);
    p.confirmed(40);
    p.confirmed(3_000);
    expect([p.batchSize, p.timeoutMs]).toEqual([500, 5_000]);
  });

  it.each([
    ['half of what was confirmed in time', 300, 150],
    ['a quarter of the batch when nothing was', 0, 125],
    ['never under one message', 1, 1],
  ])('a timeout: the next batch is %s, the timeout doubles', (_name, confirmed, next) => {
    const p = new PublishPace(500, 5_000);
    p.timedOut(confirmed);
    expect([p.batchSize, p.timeoutMs]).toEqual([next, 10_000]);
  });

  it('repeated timeouts: the batch goes down to one, the timeout up to its cap', () => {
    const p = new PublishPace(500, 5_000);
    for (let i = 0; i < 20; i++) p.timedOut(0);
    expect([p.batchSize, p.timeoutMs]).toEqual([1, 5_000 * MAX_TIMEOUT_FACTOR]);
  });

  it('after a timeout, whole confirms double the batch back and bring the timeout to 4× what batches take', () => {
    const p = new PublishPace(500, 1_000);
    p.timedOut(0); // 125, 2 s
    p.timedOut(0); // 31, 4 s
    p.confirmed(800);
    expect([p.batchSize, p.timeoutMs]).toEqual([62, 3_200]);
    p.confirmed(900);
    expect([p.batchSize, p.timeoutMs]).toEqual([124, 3_200]);
    p.confirmed(100);
    p.confirmed(100);
    p.confirmed(100);
    expect([p.batchSize, p.timeoutMs]).toEqual([500, 1_000]);
  });
});
