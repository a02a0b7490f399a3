import { Fragment, useCallback, useState, type Dispatch, type ReactNode, type SetStateAction } from 'react';
import { useParams } from 'react-router';

/**
 * An edit form's draft over a stored item: it follows the item's answers until the person first changes it, then
 * belongs to the person typing.
 * - Until then each new answer (same id: `PerId` mounts the form afresh per id) replaces draft and base: the first
 *   answer may be stale cached data (the item was paused from the list, or changed elsewhere, since its form was last
 *   open) and the refetch that follows brings the current version — kept on the old one, the form showed it and an
 *   untouched Save named it in If-Match: a 409 for a change nobody made here.
 * - From the first change on, a refetch (the window's focus, the socket's resync, a 10 s poll) never replaces it — it
 *   used to, and what was being typed was lost; `base`, the item the draft was built from, names the version the save
 *   sends as If-Match, so a change made meanwhile elsewhere is a 409, not overwritten by a save built on the newer one.
 * While an existing item's first answer has not come, `base` is undefined: there is nothing to save yet.
 */
export function useStoredDraft<T, D>(
  stored: T | undefined,
  toDraft: (item: T) => D,
  initial: D | (() => D),
): [D, Dispatch<SetStateAction<D>>, T | undefined] {
  const [draft, setDraft] = useState<D>(initial);
  const [base, setBase] = useState<T | undefined>(undefined);
  const [changed, setChanged] = useState(false);
  if (stored !== undefined && stored !== base && (base === undefined || !changed)) {
    // Set while rendering (React renders again at once): no frame shows the empty form with the item's title, nor
    // the stale version once the current one is in.
    setBase(stored);
    setDraft(toDraft(stored));
  }
  const change = useCallback<Dispatch<SetStateAction<D>>>((next) => {
    setChanged(true);
    setDraft(next);
  }, []);
  return [draft, change, base];
}

/**
 * Mounts its page afresh for each `:id`. React Router keeps a page mounted when only its id changes (Back two entries,
 * from item B's form straight to A's): a form's draft, errors and base would carry B's over to A's address.
 */
export function PerId({ children }: { children: ReactNode }) {
  return <Fragment key={useParams()['id'] ?? ''}>{children}</Fragment>;
}
