import type { ButtonHTMLAttributes } from 'react';

export interface ButtonProps extends ButtonHTMLAttributes<HTMLButtonElement> {
  variant?: 'default' | 'primary' | 'danger';
  size?: 'normal' | 'small';
}

/** A button; `type` defaults to "button" so that it never submits a form by accident. */
export function Button({ variant = 'default', size = 'normal', className, type = 'button', ...rest }: ButtonProps) {
  const classes = ['fw-button'];
  if (variant !== 'default') classes.push(`fw-button--${variant}`);
  if (size === 'small') classes.push('fw-button--small');
  if (className) classes.push(className);
  return <button type={type} className={classes.join(' ')} {...rest} />;
}
