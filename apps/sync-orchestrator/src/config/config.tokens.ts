/** The TargetPolicy checks are saved under (FLEETWATCH_CHECK_DENY_NETWORKS). */
export const CHECK_TARGET_POLICY = Symbol('fleetwatch.sync.CheckTargetPolicy');
/** How often the config.changed relay looks for rows left in the outbox (ms). */
export const CONFIG_RELAY_INTERVAL_MS = Symbol('fleetwatch.sync.ConfigRelayIntervalMs');
/** How often a config version stores the whole snapshot rather than its changes (default SNAPSHOT_EVERY). */
export const CONFIG_SNAPSHOT_EVERY = Symbol('fleetwatch.sync.ConfigSnapshotEvery');
