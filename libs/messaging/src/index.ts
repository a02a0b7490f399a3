// The bus (SPEC §3): connection with reconnect, topology, confirming publisher,
// acking consumer, idempotency, metrics; a thin Nest module on top (nest/).
// See docs/bus.md.
export * from './errors';
export * from './backoff';
export * from './logger';
export * from './metrics';
export * from './connection';
export * from './connections';
export * from './topology';
export * from './shards';
export * from './confirm-sender';
export * from './publisher';
export * from './delivery-tags';
export * from './batcher';
export * from './intake-window';
export * from './delivery';
export * from './consumer';
export * from './settlement';
export * from './subscription';
export * from './set-aside';
export * from './idempotency';
export * from './router';
export * from './bus';
export * from './nest/consume-queue.decorator';
export * from './nest/messaging.module';
export * from './boot-check';
export * from './dead-letters';
export * from './rpc';
export * from './event-follower';
export * from './config-changed.follower';
