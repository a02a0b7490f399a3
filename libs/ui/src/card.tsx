import type { HTMLAttributes, ReactNode } from 'react';

export function Card({
  title,
  actions,
  children,
  className,
  ...rest
}: { title?: ReactNode; actions?: ReactNode } & HTMLAttributes<HTMLElement>) {
  return (
    <section className={className ? `fw-card ${className}` : 'fw-card'} {...rest}>
      {(title || actions) && (
        <div className="fw-row">
          {title && <h2 className="fw-card__title">{title}</h2>}
          <span className="fw-spacer" />
          {actions}
        </div>
      )}
      {children}
    </section>
  );
}

/** A message for a failed request, announced to screen readers. */
export function ErrorNote({ error }: { error: unknown }) {
  if (!error) return null;
  const message = error instanceof Error ? error.message : String(error);
  return (
    <p className="fw-alert" role="alert">
      {message}
    </p>
  );
}
