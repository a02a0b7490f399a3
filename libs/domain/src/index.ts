// Pure rules of the product: no database, Redis, bus or framework imports.
export * from './errors';
export * from './status/lifecycle';
export * from './status/consensus';
export * from './status/transitions';
export * from './history/rollup';
export * from './ingest/limits';
