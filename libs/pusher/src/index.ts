// The HTTP push client that outside daemons (the Docker and Kubernetes watchers) use to
// send status updates to status-ingest: validation, batching, retries with backoff.
export * from './backoff';
export * from './status-pusher';
export * from './daemon';
export * from './pusher-config';
export * from './state-file';
export * from './dated-in-order';
