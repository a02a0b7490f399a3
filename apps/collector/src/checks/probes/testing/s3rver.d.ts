// s3rver 3.7.1 (a dev dependency: a local S3-compatible server for the s3 probe's tests) ships no types.
// Only what the tests use. It signs nothing itself; it accepts the access key S3RVER (secret S3RVER).
declare module 's3rver' {
  import type { Server } from 'node:http';
  interface S3rverOptions {
    port?: number;
    address?: string;
    silent?: boolean;
    directory: string;
    resetOnClose?: boolean;
    allowMismatchedSignatures?: boolean;
    configureBuckets?: { name: string; configs?: (string | Buffer)[] }[];
  }
  class S3rver {
    constructor(options: S3rverOptions);
    /** Creates the configured buckets and listens; resolves to the bound address. */
    run(): Promise<{ address: string; family: string; port: number }>;
    close(): Promise<void>;
    httpServer?: Server;
  }
  export = S3rver;
}
