import { afterEach, describe, expect, it, vi } from 'vitest';
import type { HostListResponse, HostSummaryView } from '@fleetwatch/contracts';
import { fetchFirstHosts, fetchHosts } from './queries';

// The hosts page lists every host: the gateway pages them by 1,000 at most (by id, cursor = last id). Only the
// first page was read: from the 1,001st host on, hosts were missing from the inventory while the header counted them.
const TOTAL = 2_345;
const all = Array.from({ length: TOTAL }, (_, i) => ({ id: `h-${String(i).padStart(5, '0')}` }) as HostSummaryView);
const asked: URL[] = [];

function serve(): void {
  vi.stubGlobal('fetch', async (path: string) => {
    const url = new URL(path, 'http://dash.test');
    asked.push(url);
    const limit = Number(url.searchParams.get('limit') ?? 100);
    const cursor = url.searchParams.get('cursor');
    const from = cursor ? all.findIndex((h) => h.id === cursor) + 1 : 0;
    const items = all.slice(from, from + Math.min(limit, 1000));
    const body: HostListResponse = {
      items,
      nextCursor: from + items.length < TOTAL ? items[items.length - 1].id : null,
      total: TOTAL,
    };
    return new Response(JSON.stringify(body), { status: 200, headers: { 'content-type': 'application/json' } });
  });
}

afterEach(() => {
  vi.unstubAllGlobals();
  asked.length = 0;
});

describe('fetchHosts', () => {
  it('reads every page: each host once, in order, and the total', async () => {
    serve();
    const got = await fetchHosts();
    expect(got.items.map((h) => h.id)).toEqual(all.map((h) => h.id));
    expect(got.total).toBe(TOTAL);
    expect(got.nextCursor).toBeNull();
    expect(asked.map((u) => u.searchParams.get('cursor'))).toEqual([null, 'h-00999', 'h-01999']);
  });
  it('fetchFirstHosts (the overview card) asks for one small page', async () => {
    serve();
    const got = await fetchFirstHosts(12);
    expect(got.items.map((h) => h.id)).toEqual(all.slice(0, 12).map((h) => h.id));
    expect(got.total).toBe(TOTAL);
    expect(asked).toHaveLength(1);
  });
});
