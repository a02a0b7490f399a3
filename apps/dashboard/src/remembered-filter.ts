import { useEffect, useLayoutEffect, useMemo, useState } from 'react';
import { useSearchParamsEditor, type EditSearchParams } from './search-params';

export interface RememberedFilter<F> {
  /** The filter the address says (or, on the first render of an address without a query, the one used last). */
  filter: F;
  /** The address's query, and its editor (for what a page keeps beside the filter, such as a page cursor). */
  params: URLSearchParams;
  editParams: EditSearchParams;
  /**
   * Changes the filter the address has now — not the one this render shows, so two clicks before the first one's
   * navigation has rendered both count. What the page keeps beside the filter in the query (`after`) is dropped:
   * a new filter starts from the first page.
   */
  setFilter: (change: (f: F) => F, replace?: boolean) => void;
}

/**
 * A list page's filter, kept in the URL (shareable, the back button) and remembered in localStorage under
 * `storageKey`: an address without a query opens the filter used last — from the first paint on (until the restore
 * has put it in the URL, the address the page opened with shows it), so nothing renders, fetches or is read with the
 * empty filter for a moment. Only that first address: an empty filter chosen later ("All", Clear) is empty. `parse`
 * and `toParams` are the page's (module-level functions).
 */
export function useRememberedFilter<F>(
  storageKey: string,
  parse: (params: URLSearchParams) => F,
  toParams: (filter: F) => URLSearchParams,
): RememberedFilter<F> {
  const [params, editParams] = useSearchParamsEditor();
  const [opened] = useState(() => ({ params, stored: params.size === 0 ? localStorage.getItem(storageKey) : null }));
  const filter = useMemo(
    () => parse(params === opened.params && opened.stored ? new URLSearchParams(opened.stored) : params),
    [params, opened, parse],
  );
  const setFilter = (change: (f: F) => F, replace = false) =>
    editParams((current) => toParams(change(parse(current))), { replace });
  // The restore, before the first paint (a layout effect): a click on a filter can never land before it and be undone.
  useLayoutEffect(() => {
    const stored = opened.stored;
    if (stored) editParams(() => new URLSearchParams(stored), { replace: true });
  }, []);
  useEffect(() => localStorage.setItem(storageKey, toParams(filter).toString()), [filter]);
  return { filter, params, editParams, setFilter };
}
