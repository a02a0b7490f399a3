/** The aggregator's validated configuration (AggregatorConfig). */
export const AGGREGATOR_CONFIG = Symbol('AGGREGATOR_CONFIG');
/** The sweeper's AdvisoryLease (singleton jobs across replicas). */
export const SWEEPER_LEASE = Symbol('AGGREGATOR_SWEEPER_LEASE');
/** The shard coordinator's replica registry and shard locks (ShardBackends). */
export const SHARD_BACKENDS = Symbol('AGGREGATOR_SHARD_BACKENDS');
