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
