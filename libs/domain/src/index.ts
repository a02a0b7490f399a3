// Pure rules of the product: no database, Redis, bus or framework imports.
export * from './errors';
