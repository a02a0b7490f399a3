// Redis key families of live state and their operations. Only this lib knows key layouts.
export * from './redis';
export * from './keys';
export * from './live-state.store';
export * from './boot-check';
export * from './live-state.module';
export * from './rate-buckets';
export * from './replica-registry';
export * from './ingress-control';
export * from './fleet-cache';
