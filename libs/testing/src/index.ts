// Test infrastructure: which servers to use, per-run isolation on them, and tools
// for fault tests. Integration tests (*.int-spec.ts) only; see README.md.
export { resolveServers, type Servers, type ServerSource } from './servers';
export { testEnv, maybeTestEnv, type TestEnv } from './test-env';
export { createIsolatedVhost, createIsolatedDatabase, type IsolatedVhost, type IsolatedDatabase } from './isolation';
export { setUpTestRun, tearDownTestRun } from './run-resources';
export { TcpProxy, type TcpProxyOptions } from './tcp-proxy';
export { waitFor, type WaitForOptions } from './wait-for';
export { freePortBlock, type FreePortOptions } from './free-ports';
export { newRunId, runIdTime, STALE_AFTER_MS } from './run-id';
export { streamPost, type StreamedAnswer } from './stream-post';
export { copyBuiltDist, copyBuiltDistAsync, type DistCopyOptions } from './dist-copy';
export { spawnBuiltService, type BuiltService, type BuiltServiceOptions } from './built-service';
export { canonicalJson, jsonValueArbitrary, storeHostileText, storeHostileUnit } from './arbitraries';
export { assertConcurrently, type ConcurrentAssertOptions } from './concurrent-property';
