import { afterEach, describe, expect, it, vi } from 'vitest';
import type { TargetListResponse, TargetView } from '@fleetwatch/contracts';
import { fetchAllTargets } from './queries';
import { EMPTY_FILTER } from '../pages/targets/target-filter';

// The paging of fetchAllTargets against a list served the way the gateway pages it (by id, cursor = last id).
const TOTAL = 2_450;
const all = Array.from({ length: TOTAL }, (_, i) => ({ id: `instance:t-${String(i).padStart(5, '0')}` }) as TargetView);
const asked: URL[] = [];

function serve(): void {
  vi.stubGlobal('fetch', async (path: string) => {
    const url = new URL(path, 'http://dash.test');
    asked.push(url);
    const limit = Number(url.searchParams.get('limit'));
    const cursor = url.searchParams.get('cursor');
    const from = cursor ? all.findIndex((t) => t.id === cursor) + 1 : 0;
    const items = all.slice(from, from + limit);
    const body: TargetListResponse = {
      items,
      nextCursor: from + limit < TOTAL ? items[items.length - 1].id : null,
      total: TOTAL,
    };
    return new Response(JSON.stringify(body), { status: 200, headers: { 'content-type': 'application/json' } });
  });
}

afterEach(() => {
  vi.unstubAllGlobals();
  asked.length = 0;
});

describe('fetchAllTargets', () => {
  it('pages by 1,000 and returns every target once, in order', async () => {
    serve();
    const got = await fetchAllTargets(EMPTY_FILTER);
    expect(got.map((t) => t.id)).toEqual(all.map((t) => t.id));
    expect(asked.map((u) => u.searchParams.get('limit'))).toEqual(['1000', '1000', '1000']);
  });

  it('with a page listener: a small first page, then the targets so far after each page but the last', async () => {
    serve();
    const heard: [number, number][] = [];
    const got = await fetchAllTargets(EMPTY_FILTER, undefined, (soFar, total) => heard.push([soFar.length, total]));
    expect(asked.map((u) => u.searchParams.get('limit'))).toEqual(['200', '1000', '1000', '1000']);
    expect(heard).toEqual([
      [200, TOTAL],
      [1200, TOTAL],
      [2200, TOTAL],
    ]);
    expect(got).toHaveLength(TOTAL);
  });

  it('tells nothing more once cancelled', async () => {
    serve();
    const abort = new AbortController();
    const heard: number[] = [];
    await fetchAllTargets(EMPTY_FILTER, abort.signal, (soFar) => {
      heard.push(soFar.length);
      abort.abort();
    });
    expect(heard).toEqual([200]);
  });
});
