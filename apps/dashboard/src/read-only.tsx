import type { ReactNode } from 'react';
import { useCanWrite } from './session';

/**
 * An edit form's fields and buttons, read only for a user who may not write (a viewer): every control disabled (a
 * disabled fieldset) and a line saying why — instead of a form filled in and then refused with a 403 on Save.
 */
export function WriteGate({ children }: { children: ReactNode }) {
  const canWrite = useCanWrite();
  return (
    <>
      {!canWrite && (
        <p className="fw-muted" data-testid="read-only">
          Read only: operators and admins change this.
        </p>
      )}
      <fieldset className="fw-stack fw-fieldset--plain" disabled={!canWrite}>
        {children}
      </fieldset>
    </>
  );
}
