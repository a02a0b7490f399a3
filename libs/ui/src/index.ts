// Dashboard components shared across pages.
export * from './status-badge';
