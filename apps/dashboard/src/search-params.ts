import { useCallback, useRef } from 'react';
import { type NavigateOptions, useNavigate, useSearchParams } from 'react-router';

/** Changes the query given (or returns the one to use instead); the navigation follows. */
export type EditSearchParams = (
  edit: (next: URLSearchParams) => URLSearchParams | void,
  options?: NavigateOptions,
) => void;

/**
 * The address's query with edits that build on each other.
 *
 * React Router's setter starts from the params of the render it was made in, and its navigation reaches a render only
 * after a transition: two changes made before that render (two pickers changed in quick succession) kept only the
 * second. Here an edit starts from the address as it is now, not as the last render saw it: the browser's (a route
 * that loads nothing, as every route here, has moved it before `navigate` returns, and the back button moves it
 * before any handler runs), or the query of this hook's own navigation while that is still under way (a route with a
 * loader moves the address only once it has loaded). Unlike comparing the render's params with the ones an edit was
 * made from, this holds also when navigations render one at a time, and when the back button lands, before anything
 * rendered, on the query the page showed.
 */
export function useSearchParamsEditor(): [URLSearchParams, EditSearchParams] {
  const [params] = useSearchParams();
  const navigate = useNavigate();
  const underway = useRef<URLSearchParams | null>(null);
  const edit = useCallback<EditSearchParams>(
    (change, options) => {
      const base = new URLSearchParams(underway.current ?? window.location.search);
      const next = change(base) ?? base;
      underway.current = next;
      void Promise.resolve(navigate(`?${next.toString()}`, options)).finally(() => {
        if (underway.current === next) underway.current = null;
      });
    },
    [navigate],
  );
  return [params, edit];
}
