import { randomBytes, randomUUID } from 'node:crypto';
import { Agent as HttpAgent, STATUS_CODES } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import type { LookupFunction } from 'node:net';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { failureReasonOf, resolveAllowed } from '../net';
import type { Probe, ProbeContext, ProbeOutcome } from '../probe';
import { elapsedMs, MetricBag, redactSecrets } from './service-metrics';
import { deadlineSignal } from './connect-target';

// s3 (issue 16): S3-compatible storage health with @aws-sdk/client-s3 — HeadBucket, then
// (unless roundTrip is false) a 64-byte object put under `prefix`, read back and compared,
// and deleted. Each step's time is a figure; the first step that fails fails the run.
//
// The target policy: the endpoint's host is resolved and checked once per run, and the
// SDK's agent is given a lookup that answers with exactly that address, so every
// connection of the run goes where the policy allowed (no second resolution, no rebinding).
// One agent per run without keep-alive, destroyed after. Checksums only where S3 requires
// them (the SDK's newer default, aws-chunked uploads with trailers, is not understood by
// many S3-compatible servers).

function failed(
  failureReason: string,
  latencyMs: number | null = null,
  metrics: MetricBag = new MetricBag(),
): ProbeOutcome {
  return { ok: false, latencyMs, failureReason, facts: { metrics: metrics.samples() }, metrics: metrics.toArray() };
}

/** How long the clean-up DELETE may take once the run's time is up (within the runner's grace after its abort). */
const CLEANUP_BUDGET_MS = 500;

/** Bytes of the object read back at most: the probe put 64; a server sending more is not read to its end. */
const READ_BACK_MAX_BYTES = 4096;

/** The body as text, or an error once it passes `max` bytes (the rest is never downloaded). */
export async function readAtMost(body: AsyncIterable<Uint8Array>, max: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.length;
    if (size > max) {
      (body as { destroy?: () => void }).destroy?.();
      throw new Error(`the object read back is larger than ${max} bytes (the probe put 64)`);
    }
    chunks.push(Buffer.from(chunk));
  }
  return Buffer.concat(chunks, size).toString('utf8');
}

/** A lookup that answers every name with the address the policy allowed. */
function pinnedLookup(address: string, family: 4 | 6): LookupFunction {
  return ((_host: string, options: { all?: boolean }, callback: (...args: unknown[]) => void) => {
    if (options?.all) callback(null, [{ address, family }]);
    else callback(null, address, family);
  }) as unknown as LookupFunction;
}

/**
 * Why a 200 to HeadBucket is not S3's answer, or undefined when it may be. HeadBucket's 200 has no body, and the SDK
 * took any 200 for the bucket: a captive portal or a proxy's page (200, text/html) read as UP. S3 and the servers that
 * speak its API (MinIO, Ceph RGW, R2, IBM COS, …) never answer it with an HTML page, and most send x-amz-* headers
 * (x-amz-request-id, x-amz-id-2, x-amz-bucket-region); not every one does (Tencent COS: x-cos-*, GCS: x-goog-*, small
 * emulators: none), so a missing header alone fails nothing: an HTML answer without any x-amz-* header does.
 */
export function notS3Answer(headers: Record<string, string | undefined>): string | undefined {
  const lower = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
  if (Object.keys(lower).some((k) => k.startsWith('x-amz-'))) return undefined;
  const type = (lower['content-type'] ?? '').split(';')[0].trim().toLowerCase();
  if (type === 'text/html' || type === 'application/xhtml+xml')
    return `HeadBucket: 200 with ${type} and no x-amz-* header is no S3 answer (a captive portal or proxy page?)`;
  return undefined;
}

/** What an S3 error says, briefly: `HeadBucket: 404 NotFound`. */
export function s3Reason(step: string, err: unknown, fallback: (e: unknown) => string): string {
  if (err instanceof S3ServiceException) {
    const status = err.$metadata?.httpStatusCode;
    const hint = status === 404 ? ' (no such bucket or key)' : status === 403 ? ' (access denied)' : '';
    // An error answer to HEAD has no body to name the error: the SDK calls it "Unknown".
    const name = err.name === 'Unknown' && status !== undefined ? (STATUS_CODES[status] ?? err.name) : err.name;
    return `${step}: ${status ?? ''} ${name}${hint}`.replace(/\s+/g, ' ');
  }
  return `${step}: ${fallback(err)}`;
}

export const s3Probe: Probe<'s3'> = async (check, ctx: ProbeContext): Promise<ProbeOutcome> => {
  const signal = AbortSignal.any([ctx.signal, deadlineSignal(ctx.timeoutMs)]);
  const accessKeyId = ctx.env[check.accessKeyIdEnv];
  const secretAccessKey = ctx.env[check.secretAccessKeyEnv];
  const reasonOf = (err: unknown) =>
    redactSecrets(failureReasonOf(err, { signal, timeoutMs: ctx.timeoutMs }), secretAccessKey);
  for (const [name, v] of [
    [check.accessKeyIdEnv, accessKeyId],
    [check.secretAccessKeyEnv, secretAccessKey],
  ] as const)
    if (v === undefined) return failed(`environment variable ${name} is not set on this collector`);

  const url = new URL(check.endpoint);
  const hostname = url.hostname.replace(/^\[|\]$/g, '');
  let address: string;
  let family: 4 | 6;
  try {
    ({ address, family } = await resolveAllowed(hostname, ctx.policy, { signal, resolver: ctx.dnsServers }));
  } catch (err) {
    return failed(reasonOf(err));
  }
  const lookup = pinnedLookup(address, family);
  const httpAgent = new HttpAgent({ keepAlive: false, lookup });
  const httpsAgent = new HttpsAgent({ keepAlive: false, lookup, rejectUnauthorized: check.tlsVerify });
  const client = new S3Client({
    endpoint: check.endpoint,
    region: check.region,
    forcePathStyle: check.forcePathStyle,
    credentials: { accessKeyId: accessKeyId as string, secretAccessKey: secretAccessKey as string },
    maxAttempts: 1,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    requestHandler: { httpAgent, httpsAgent, connectionTimeout: ctx.timeoutMs, requestTimeout: ctx.timeoutMs },
  });
  const bag = new MetricBag();
  const started = performance.now();
  const step = async <T>(name: string, metric: string, run: () => Promise<T>): Promise<T> => {
    const t = performance.now();
    try {
      const out = await run();
      bag.add(metric, elapsedMs(t));
      return out;
    } catch (err) {
      throw new Error(redactSecrets(s3Reason(name, err, reasonOf), secretAccessKey));
    }
  };
  let latencyMs: number | null = null;
  try {
    const head = new HeadBucketCommand({ Bucket: check.bucket });
    let headHeaders: Record<string, string> = {};
    head.middlewareStack.add(
      (next) => async (args) => {
        const out = await next(args);
        headHeaders = (out.response as { headers?: Record<string, string> } | undefined)?.headers ?? {};
        return out;
      },
      { step: 'deserialize', name: 'fleetwatchHeadBucketHeaders' },
    );
    await step('HeadBucket', 's3_head_bucket_ms', () => client.send(head, { abortSignal: signal }));
    latencyMs = elapsedMs(started);
    const notS3 = notS3Answer(headHeaders);
    if (notS3 !== undefined) return failed(notS3, latencyMs, bag);
    bag.add('s3_up', 1);
    if (check.roundTrip) {
      const key = `${check.prefix}${randomUUID()}`;
      const body = randomBytes(48).toString('base64');
      let failure: { err: unknown } | undefined;
      try {
        await step('PutObject', 's3_put_ms', () =>
          client.send(new PutObjectCommand({ Bucket: check.bucket, Key: key, Body: body, ContentType: 'text/plain' }), {
            abortSignal: signal,
          }),
        );
        const got = await step('GetObject', 's3_get_ms', async () => {
          const res = await client.send(new GetObjectCommand({ Bucket: check.bucket, Key: key }), {
            abortSignal: signal,
          });
          return res.Body ? await readAtMost(res.Body as AsyncIterable<Uint8Array>, READ_BACK_MAX_BYTES) : '';
        });
        if (got !== body) throw new Error('GetObject: the object read back differs from the one put');
      } catch (err) {
        failure = { err };
      }
      // Deleted whatever the put or the read said (a put cut off may have stored it): the probe leaves nothing behind.
      // Once the run's signal has ended (a GET past the timeout), under a short budget of its own: sent with the
      // ended signal, the DELETE never left, the object stayed in the bucket, and its "timed out" replaced the
      // step that failed. The first failure is the reason.
      try {
        await step('DeleteObject', 's3_delete_ms', () =>
          client.send(new DeleteObjectCommand({ Bucket: check.bucket, Key: key }), {
            abortSignal: signal.aborted ? deadlineSignal(CLEANUP_BUDGET_MS) : signal,
          }),
        );
      } catch (err) {
        failure ??= { err };
      }
      if (failure) throw failure.err;
      bag.add('s3_round_trip_ok', 1);
    }
    return {
      ok: true,
      latencyMs,
      facts: { result: { bucket: check.bucket, roundTrip: check.roundTrip }, metrics: bag.samples() },
      metrics: bag.toArray(),
    };
  } catch (err) {
    if (check.roundTrip && latencyMs !== null) bag.add('s3_round_trip_ok', 0);
    return failed(String((err as Error).message), latencyMs, bag);
  } finally {
    client.destroy();
    httpAgent.destroy();
    httpsAgent.destroy();
  }
};
