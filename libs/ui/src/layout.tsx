import type { ReactNode } from 'react';

/** The page frame: a navigation column (links given by the app) and the main area. */
export function AppShell({ nav, footer, children }: { nav: ReactNode; footer?: ReactNode; children: ReactNode }) {
  return (
    <div className="fw-shell">
      <nav className="fw-shell__nav" aria-label="Main">
        <div className="fw-shell__brand">Fleetwatch</div>
        {nav}
        {footer && <div className="fw-shell__footer">{footer}</div>}
      </nav>
      <main className="fw-shell__main">{children}</main>
    </div>
  );
}

/** A page's heading row with its actions. */
export function PageHeader({ title, children }: { title: string; children?: ReactNode }) {
  return (
    <header className="fw-shell__header">
      <h1>{title}</h1>
      {children}
    </header>
  );
}
