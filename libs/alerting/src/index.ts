// Alert rules as pure functions (SPEC §7): selection, conditions, the per-alert state machine, grouping,
// silences, maintenance windows, templates and the Prometheus export. No database, Redis, bus or
// framework: the aggregator feeds it observations and stores what it returns.
export * from './selector';
export * from './series';
export * from './rule';
export * from './engine';
export * from './fleet';
export * from './grouping';
export * from './silences';
export * from './maintenance';
export * from './templates';
export * from './prometheus-export';
export * from './mute';
export * from './validate';
export * from './channels';
export * from './subscriptions';
