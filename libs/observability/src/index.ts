// Logging, health, readiness, metrics and shutdown: the one service bootstrap.
export * from './logger';
export * from './health';
export * from './error.filter';
export * from './bootstrap';
export * from './promtool-lint';
export * from './unread-body';
export * from './async-resource-bind';
