export * from './dead-letter-message';
export * from './dead-letter-admin';
export * from './errors';
