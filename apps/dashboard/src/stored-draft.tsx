import { Fragment, useState, type Dispatch, type ReactNode, type SetStateAction } from 'react';
import { useParams } from 'react-router';

/**
 * An edit form's draft over a stored item: it starts from the item's first answer, then belongs to the person typing.
 * A refetch (the window's focus, the socket's resync, a 10 s poll) never replaces it — it used to, and what was being
 * typed was lost; `base`, the item the draft started from, names the version the save sends as If-Match, so a change
 * made meanwhile elsewhere is a 409, not overwritten by a save built on the newer one. While an existing item's first
 * answer has not come, `base` is undefined: there is nothing to save yet.
 */
export function useStoredDraft<T, D>(
  stored: T | undefined,
  toDraft: (item: T) => D,
  initial: D | (() => D),
): [D, Dispatch<SetStateAction<D>>, T | undefined] {
  const [draft, setDraft] = useState<D>(initial);
  const [base, setBase] = useState<T | undefined>(undefined);
  if (stored !== undefined && base === undefined) {
    // Set while rendering (React renders again at once): no frame shows the empty form with the item's title.
    setBase(stored);
    setDraft(toDraft(stored));
  }
  return [draft, setDraft, base];
}

/**
 * Mounts its page afresh for each `:id`. React Router keeps a page mounted when only its id changes (Back two entries,
 * from item B's form straight to A's): a form's draft, errors and base would carry B's over to A's address.
 */
export function PerId({ children }: { children: ReactNode }) {
  return <Fragment key={useParams()['id'] ?? ''}>{children}</Fragment>;
}
