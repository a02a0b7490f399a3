import { useCallback, useRef } from 'react';
import { type NavigateOptions, useSearchParams } from 'react-router';

export type EditSearchParams = (edit: (next: URLSearchParams) => void, options?: NavigateOptions) => void;

/**
 * The address's query with edits that build on each other.
 *
 * React Router's setter starts from the params of the render it was made in, and its navigation reaches a render only
 * after a transition: two changes made before that render (two pickers changed in quick succession) kept only the
 * second. Here an edit whose navigation has not rendered yet is the base of the next one; once the address has moved
 * on (that navigation rendered, or the back button), the address is the base again.
 */
export function useSearchParamsEditor(): [URLSearchParams, EditSearchParams] {
  const [params, setParams] = useSearchParams();
  const pending = useRef<{ from: URLSearchParams; next: URLSearchParams } | null>(null);
  const edit = useCallback<EditSearchParams>(
    (change, options) => {
      const last = pending.current;
      const next = new URLSearchParams(last !== null && last.from === params ? last.next : params);
      change(next);
      pending.current = { from: params, next };
      setParams(next, options);
    },
    [params, setParams],
  );
  return [params, edit];
}
