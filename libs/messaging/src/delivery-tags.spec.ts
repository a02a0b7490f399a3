import { ChannelGeneration, HandledWatermark, PendingTags, publishedAtOf } from './delivery-tags';

describe('PendingTags.settle', () => {
  const withTags = (...tags: number[]): PendingTags => {
    const p = new PendingTags();
    for (const t of tags) p.add(t);
    return p;
  };

  it('uses one multiple-ack when the tags are every pending tag up to their maximum', () => {
    const p = withTags(1, 2, 3, 4, 5);
    expect(p.settle([3, 1, 2])).toEqual({ upTo: 3, count: 3 });
    expect(p.size).toBe(2);
    expect(p.settle([4, 5])).toEqual({ upTo: 5, count: 2 });
    expect(p.size).toBe(0);
  });

  it('settles one by one when another delivery is still pending below the maximum', () => {
    const p = withTags(1, 2, 3, 4);
    expect(p.settle([1, 2, 4])).toEqual({ each: [1, 2, 4] });
    expect(p.size).toBe(1);
    expect(p.settle([3])).toEqual({ upTo: 3, count: 1 });
  });

  it('ignores tags it does not hold (already settled, or from another channel)', () => {
    const p = withTags(7, 8);
    expect(p.settle([7, 99])).toEqual({ upTo: 7, count: 1 });
    expect(p.settle([7])).toEqual({ each: [] });
    expect(p.settle([8, 8])).toEqual({ upTo: 8, count: 1 });
  });

  it('keeps order when tags arrive out of order', () => {
    const p = withTags(5, 3, 4);
    expect(p.settle([3, 4, 5])).toEqual({ upTo: 5, count: 3 });
  });
});

describe('ChannelGeneration', () => {
  it('drops settlements once retired (the broker requeued them already)', () => {
    const g = new ChannelGeneration(1);
    g.track(1);
    g.track(2);
    expect(g.plan([1])).toEqual({ upTo: 1, count: 1 });
    g.retire();
    expect(g.isLive).toBe(false);
    expect(g.plan([2])).toBeNull();
    expect(g.pending).toBe(0);
  });

  it('tags of a new generation are independent of the old one', () => {
    const old = new ChannelGeneration(1);
    old.track(1);
    old.retire();
    const next = new ChannelGeneration(2);
    next.track(1);
    expect(old.plan([1])).toBeNull();
    expect(next.plan([1])).toEqual({ upTo: 1, count: 1 });
  });
});

describe('DeliveryMark', () => {
  const generation = (...tags: number[]): ChannelGeneration => {
    const g = new ChannelGeneration(1);
    for (const t of tags) g.track(t);
    return g;
  };

  it('covers what was received until it closed, and is settled once that is, whatever keeps arriving', () => {
    const g = generation(1, 2);
    const mark = g.mark();
    g.track(3);
    expect(mark.state).toBe('open');
    mark.close();
    g.track(4);
    expect(mark.state).toBe('pending');
    g.plan([1, 2]);
    g.track(5);
    expect(mark.state).toBe('pending');
    g.plan([3]);
    // 4 and 5 came after the close: still in flight, and they do not count.
    expect(g.pending).toBe(2);
    expect(mark.state).toBe('settled');
    mark.close();
    expect(mark.state).toBe('settled');
  });

  it('is settled at once when nothing is pending at its close', () => {
    const g = generation(1);
    g.plan([1]);
    const mark = g.mark();
    mark.close();
    expect(mark.state).toBe('settled');
  });

  it('is settled out of order: a later delivery settled first does not count for an earlier one', () => {
    const g = generation(1, 2, 3);
    const mark = g.mark();
    mark.close();
    g.plan([2, 3]);
    expect(mark.state).toBe('pending');
    g.plan([1]);
    expect(mark.state).toBe('settled');
  });

  it('breaks when a delivery it covers goes back to the queue (while open: any), not for one after it', () => {
    const g = generation(1, 2);
    const open = g.mark();
    g.track(3);
    g.returned(3);
    expect(open.state).toBe('broken');

    const closed = g.mark();
    closed.close();
    g.track(4);
    g.returned(4);
    expect(closed.state).toBe('pending');
    g.returned(2);
    expect(closed.state).toBe('broken');
    g.plan([1, 2, 3, 4]);
    expect(closed.state).toBe('broken');
  });

  it('breaks when its channel closes (the broker took the unsettled deliveries back)', () => {
    const g = generation(1);
    const mark = g.mark();
    mark.close();
    g.retire();
    expect(mark.state).toBe('broken');
  });

  it('no longer hears of returns once released', () => {
    const g = generation(1);
    const mark = g.mark();
    mark.close();
    mark.release();
    g.returned(1);
    expect(mark.state).toBe('pending');
  });
});

describe('ChannelGeneration.oldestPendingPublishedAt', () => {
  it('is the earliest publish time among the unsettled deliveries, whatever their tags', () => {
    const g = new ChannelGeneration(1);
    expect(g.oldestPendingPublishedAt).toBeUndefined();
    g.track(1, 5_000);
    g.track(2, 6_000);
    // A fresh copy of an old message arrives behind newer ones.
    g.track(3, 1_000);
    expect(g.oldestPendingPublishedAt).toBe(1_000);
    g.plan([3]);
    expect(g.oldestPendingPublishedAt).toBe(5_000);
    g.plan([1, 2]);
    expect(g.oldestPendingPublishedAt).toBeUndefined();
    g.track(4, 7_000);
    g.retire();
    expect(g.oldestPendingPublishedAt).toBeUndefined();
  });
});

describe('HandledWatermark', () => {
  const drained = { ready: 0, consumers: 1 };
  /** Nothing in hand, registered; `queue`: what the broker answered at this look (null: no answer). */
  const idle = (queue: { ready: number; consumers: number } | null = drained, registration = 1) => ({
    registration,
    pending: 0,
    oldestPendingPublishedAt: undefined,
    queue: queue ?? undefined,
  });
  const busy = (oldest: number, registration: number | undefined = 1) => ({
    registration,
    pending: 3,
    oldestPendingPublishedAt: oldest,
  });

  it('with deliveries in hand: the publish time of the oldest of them', () => {
    const w = new HandledWatermark();
    expect(w.observe(10_000, busy(4_000))).toBe(4_000);
    // Intake paused for the budget (not registered): what is in hand still tells.
    expect(w.observe(11_000, busy(4_500, undefined))).toBe(4_500);
  });

  it('with nothing in hand: the previous look, once that look also found the queue with nothing ready', () => {
    const w = new HandledWatermark();
    expect(w.observe(10_000, idle())).toBeUndefined();
    expect(w.observe(11_000, idle())).toBe(10_000);
    expect(w.observe(12_000, idle())).toBe(11_000);
    // Busy at the last look: the next idle one alone is not enough (what the broker sends next may be unread).
    expect(w.observe(13_000, busy(12_500))).toBe(12_500);
    expect(w.observe(14_000, idle())).toBe(12_500);
    expect(w.observe(15_000, idle())).toBe(14_000);
  });

  it('nothing in hand is not caught up while the queue holds ready messages (a quorum queue slow to deliver after acks), another consumer is on it, or the broker did not answer', () => {
    const w = new HandledWatermark();
    expect(w.observe(10_000, busy(9_000))).toBe(9_000);
    expect(w.observe(11_000, idle({ ready: 40, consumers: 1 }))).toBe(9_000);
    expect(w.observe(12_000, idle({ ready: 40, consumers: 1 }))).toBe(9_000);
    expect(w.observe(13_000, idle({ ready: 0, consumers: 2 }))).toBe(9_000);
    expect(w.observe(14_000, idle(null))).toBe(9_000);
    expect(w.observe(15_000, idle())).toBe(9_000);
    expect(w.observe(16_000, idle(null))).toBe(15_000);
  });

  it('a new registration (channel reopened, intake resumed) starts the looks over; no channel keeps what it knew', () => {
    const w = new HandledWatermark();
    w.observe(10_000, idle(drained, 1));
    expect(w.observe(11_000, idle(drained, 1))).toBe(10_000);
    expect(w.observe(12_000, { registration: undefined, pending: 0, oldestPendingPublishedAt: undefined })).toBe(
      10_000,
    );
    expect(w.observe(13_000, idle(drained, 2))).toBe(10_000);
    expect(w.observe(14_000, idle(drained, 2))).toBe(13_000);
  });

  it('a delivery given back holds it at its publish time until it is received again', () => {
    const w = new HandledWatermark();
    w.observe(10_000, idle());
    w.returned('m1', 3_000, 10_500);
    expect(w.observe(11_000, busy(9_000))).toBe(3_000);
    expect(w.observe(12_000, busy(9_500))).toBe(3_000);
    w.received('m1');
    expect(w.observe(13_000, busy(9_500))).toBe(9_500);
  });

  it('one given back without a message id holds it until the consumer was found caught up since', () => {
    const w = new HandledWatermark();
    w.observe(10_000, idle());
    w.returned(undefined, 3_000, 10_500);
    expect(w.observe(11_000, idle())).toBe(3_000);
    expect(w.observe(12_000, idle())).toBe(11_000);
  });

  it('is never later than now (a publisher clock ahead)', () => {
    expect(new HandledWatermark().observe(10_000, busy(60_000))).toBe(10_000);
  });
});

describe('publishedAtOf', () => {
  it('reads the AMQP timestamp (seconds) as epoch ms; none or nonsense is unknown', () => {
    expect(publishedAtOf(1_700_000_000)).toBe(1_700_000_000_000);
    for (const v of [undefined, 0, -1, Number.NaN, '1700000000', null]) expect(publishedAtOf(v)).toBeUndefined();
  });
});
