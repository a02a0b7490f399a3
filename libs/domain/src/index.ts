// Pure rules of the product: no database, Redis, bus or framework imports.
export * from './errors';
export * from './status/lifecycle';
export * from './status/consensus';
export * from './status/transitions';
export * from './status/target-state';
export * from './status/heartbeat';
export * from './status/expiry';
export * from './history/rollup';
export * from './ingest/limits';
export * from './auth/roles';
export * from './status/up-value';
export * from './status/fold';
export * from './checks/target-policy';
export * from './checks/literal-ip';
export * from './checks/conditions';
export * from './checks/prometheus-text';
export * from './checks/json-path';
