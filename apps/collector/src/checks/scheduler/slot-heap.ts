/** What the heap orders: by planned instant. `heapIndex` is the heap's bookkeeping (−1: not in it). */
export interface HeapItem {
  plannedAt: number;
  heapIndex: number;
}

/**
 * A binary min-heap on `plannedAt` with positions kept in the items, so one check's
 * entry can be moved or removed in O(log n) when its interval changes or it leaves the
 * assignment. 10,000 checks cost ~14 comparisons per run.
 */
export class SlotHeap<T extends HeapItem> {
  private readonly items: T[] = [];

  get size(): number {
    return this.items.length;
  }

  peek(): T | undefined {
    return this.items[0];
  }

  push(item: T): void {
    item.heapIndex = this.items.length;
    this.items.push(item);
    this.up(item.heapIndex);
  }

  /** Re-establishes order after `item.plannedAt` changed. */
  update(item: T): void {
    if (item.heapIndex < 0) return this.push(item);
    this.up(item.heapIndex);
    this.down(item.heapIndex);
  }

  remove(item: T): void {
    const i = item.heapIndex;
    if (i < 0) return;
    const last = this.items.pop() as T;
    item.heapIndex = -1;
    if (last === item) return;
    this.items[i] = last;
    last.heapIndex = i;
    this.up(i);
    this.down(i);
  }

  private up(i: number): void {
    const items = this.items;
    const item = items[i];
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (items[parent].plannedAt <= item.plannedAt) break;
      items[i] = items[parent];
      items[i].heapIndex = i;
      i = parent;
    }
    items[i] = item;
    item.heapIndex = i;
  }

  private down(i: number): void {
    const items = this.items;
    const n = items.length;
    const item = items[i];
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const child = r < n && items[r].plannedAt < items[l].plannedAt ? r : l;
      if (items[child].plannedAt >= item.plannedAt) break;
      items[i] = items[child];
      items[i].heapIndex = i;
      i = child;
    }
    items[i] = item;
    item.heapIndex = i;
  }
}
