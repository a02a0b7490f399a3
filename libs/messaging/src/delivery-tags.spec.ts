import { ChannelGeneration, PendingTags } from './delivery-tags';

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
