import { PassThrough, type Readable } from 'node:stream';
import { createGunzip, createInflate } from 'node:zlib';
import { InvalidError, PayloadTooLargeError } from '@fleetwatch/domain';

/** The content codings a status update body may be sent in (besides none, or `identity`). */
export type BodyEncoding = 'gzip' | 'deflate';
export const ACCEPTED_ENCODINGS = 'gzip, deflate or identity';

/**
 * The coding a request's `Content-Encoding` names: null for none (absent, empty or `identity`), `unsupported` for
 * any other coding, or several (`gzip, br`: one coding per body is all a pusher needs).
 */
export function bodyEncodingOf(header: string | string[] | undefined): BodyEncoding | null | 'unsupported' {
  if (header === undefined) return null;
  if (Array.isArray(header)) return 'unsupported';
  const coding = header.trim().toLowerCase();
  if (coding === '' || coding === 'identity') return null;
  if (coding === 'gzip' || coding === 'x-gzip') return 'gzip';
  if (coding === 'deflate') return 'deflate';
  return 'unsupported';
}

/** A stream as Fastify's body reader reads it: `receivedEncodedLength` is checked against Content-Length. */
type DecodedStream = PassThrough & { receivedEncodedLength: number };

/**
 * The request body decoded, for Fastify's preParsing hook. What it yields is bounded by `limit` (a body that
 * inflates past it fails with PayloadTooLargeError as soon as it does, so a small bomb is never inflated whole);
 * bytes that are not the coding named fail with InvalidError. On either failure the raw request is left to the
 * server's discard of unread bodies (destroying it would lose the answer), and inflating stops.
 */
export function decodedBody(payload: Readable, encoding: BodyEncoding, limit: number): Readable {
  const inflate = encoding === 'gzip' ? createGunzip() : createInflate();
  const out = new PassThrough() as DecodedStream;
  out.receivedEncodedLength = 0;
  // Fastify may stop reading `out` before it ends (a declared length over the limit is refused before reading, an
  // encoded length over it mid-way) while the rest of the body is still read off the socket for the answer: a
  // failure then has no listener of Fastify's, and an 'error' nobody listens to would stop the process.
  out.on('error', () => undefined);
  let decoded = 0;
  let failed = false;
  const countIn = (chunk: Buffer): void => {
    out.receivedEncodedLength += chunk.length;
  };
  const fail = (error: Error): void => {
    if (failed) return;
    failed = true;
    payload.off('data', countIn);
    payload.unpipe(inflate);
    inflate.destroy();
    out.destroy(error);
  };
  payload.on('data', countIn);
  payload.on('error', (e) => fail(e));
  inflate.on('error', (e: Error) =>
    fail(
      new InvalidError(`body: not valid ${encoding} data (${e.message})`, [
        { path: '(body)', message: `not valid ${encoding} data, as Content-Encoding says` },
      ]),
    ),
  );
  inflate.on('data', (chunk: Buffer) => {
    decoded += chunk.length;
    if (decoded > limit)
      return fail(
        new PayloadTooLargeError(
          `request body is larger than the limit (${limit} bytes) once decoded from ${encoding}; nothing was accepted`,
        ),
      );
    out.write(chunk);
  });
  inflate.on('end', () => {
    if (!failed) out.end();
  });
  payload.pipe(inflate);
  return out;
}
