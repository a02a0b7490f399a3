import { describe, expect, it } from 'vitest';
import { sparklineRequests } from './queries';

describe('sparklineRequests', () => {
  it('asks for up to the server maximum of ids per request, in order', () => {
    const ids = Array.from({ length: 250 }, (_, i) => `check:${i}`);
    const reqs = sparklineRequests(ids);
    expect(reqs.map((q) => q.getAll('id').length)).toEqual([100, 100, 50]);
    expect(reqs.flatMap((q) => q.getAll('id'))).toEqual(ids);
  });

  it('keeps each query string bounded when ids are long (never a URL the server refuses)', () => {
    const ids = Array.from({ length: 40 }, (_, i) => `instance:${'x/'.repeat(250)}${i}`);
    const reqs = sparklineRequests(ids);
    expect(reqs.length).toBeGreaterThan(1);
    for (const q of reqs) expect(q.toString().length).toBeLessThanOrEqual(6000);
    expect(reqs.flatMap((q) => q.getAll('id'))).toEqual(ids);
  });

  it("counts characters as the query string writes them (!'()~ and spaces encoded too)", () => {
    const ids = Array.from({ length: 100 }, (_, i) => `instance:${"!'()~ ".repeat(20)}${i}`);
    const reqs = sparklineRequests(ids);
    for (const q of reqs) expect(q.toString().length).toBeLessThanOrEqual(6000);
    expect(reqs.flatMap((q) => q.getAll('id'))).toEqual(ids);
  });

  it('asks nothing for no ids', () => {
    expect(sparklineRequests([])).toEqual([]);
  });
});
