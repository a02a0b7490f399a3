/** Nest injection token of the DatabaseClient that PersistenceModule provides. */
export const DATABASE_CLIENT = Symbol.for('fleetwatch.persistence.DatabaseClient');
/** Nest injection token of the PersistenceOptions given to forRoot. */
export const PERSISTENCE_OPTIONS = Symbol.for('fleetwatch.persistence.options');
