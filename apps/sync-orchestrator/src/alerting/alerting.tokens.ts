/** The SecretSealer channel secrets are sealed with, or null when FLEETWATCH_ENCRYPTION_KEY is not set. */
export const CHANNEL_SEALER = Symbol('fleetwatch.sync.ChannelSealer');
/** This site's name (the Prometheus export leaves out rules for other sites only). */
export const SITE_NAME = Symbol('fleetwatch.sync.SiteName');
/** Whether the shipped default alert rules are seeded on first start (FLEETWATCH_DEFAULT_ALERT_RULES). */
export const SEED_DEFAULT_RULES = Symbol('fleetwatch.sync.SeedDefaultRules');
/** How often the re-sealer looks for secrets sealed under an earlier key (ms; SecretResealer). */
export const RESEAL_INTERVAL_MS = Symbol('fleetwatch.sync.ResealIntervalMs');
