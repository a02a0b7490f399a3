import { describe, expect, it } from 'vitest';
import type { TargetView } from '@fleetwatch/contracts';
import { listSource } from './list-source';

const rows = (prefix: string, n: number) =>
  Array.from({ length: n }, (_, i) => ({ id: `${prefix}${i}` }) as TargetView);
const A = '["a"]';
const B = '["b"]';

describe('listSource', () => {
  it("shows the query's data whenever there is some, pages or not", () => {
    const data = rows('x', 3);
    expect(listSource(data, true, { key: A, items: rows('p', 200), total: 10_000 }, A)).toEqual({
      kind: 'list',
      items: data,
    });
  });

  it('shows the first pages of this list while its first load runs', () => {
    const items = rows('a', 200);
    expect(listSource(undefined, true, { key: A, items, total: 10_000 }, A)).toEqual({
      kind: 'pages',
      items,
      loaded: 200,
      total: 10_000,
    });
  });

  it("never shows another filter's pages", () => {
    expect(listSource(undefined, true, { key: A, items: rows('a', 200), total: 10_000 }, B)).toEqual({ kind: 'none' });
  });

  it('shows no pages once the load stopped without an answer (an error, a cancellation)', () => {
    expect(listSource(undefined, false, { key: A, items: rows('a', 200), total: 10_000 }, A)).toEqual({
      kind: 'none',
    });
  });
});
