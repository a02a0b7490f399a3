// Request/response over the bus (SPEC §3, issue 15): RpcClient (caller), RpcServer (owner), Nest modules.
export * from './rpc-error';
export * from './rpc-client';
export * from './rpc-server';
export * from './rpc.module';
