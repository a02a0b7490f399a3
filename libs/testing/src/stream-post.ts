import { request as httpRequest } from 'node:http';

export interface StreamedAnswer {
  status: number;
  connection: string | undefined;
  body: string;
}

/**
 * POSTs `bytes` of body to `url` in 64 KiB writes, as a client that sends its whole
 * body before it reads the answer (most do). A connection reset while it is still
 * sending (EPIPE, ECONNRESET) fails: such a client never sees the answer.
 */
export function streamPost(
  url: string,
  bytes: number,
  options: { authorization?: string; chunked?: boolean; contentType?: string } = {},
): Promise<StreamedAnswer> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = { 'content-type': options.contentType ?? 'application/json' };
    if (options.authorization) headers['authorization'] = options.authorization;
    if (!options.chunked) headers['content-length'] = bytes;
    const req = httpRequest(url, { method: 'POST', headers, agent: false });
    let sent = 0;
    let sentAll = false;
    let answer: StreamedAnswer | null = null;
    const settle = (): void => {
      if (sentAll && answer) resolve(answer);
    };
    req.on('error', (e: NodeJS.ErrnoException) =>
      reject(new Error(`connection failed after ${sent} of ${bytes} bytes: ${e.code ?? e.message}`)),
    );
    req.on('response', (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => {
        answer = { status: res.statusCode ?? 0, connection: res.headers.connection, body };
        settle();
      });
      res.on('error', reject);
    });
    const chunk = Buffer.alloc(64 * 1024, 'a');
    const write = (): void => {
      while (sent < bytes) {
        const n = Math.min(chunk.length, bytes - sent);
        sent += n;
        if (!req.write(n === chunk.length ? chunk : chunk.subarray(0, n))) return void req.once('drain', write);
      }
      req.end(() => {
        sentAll = true;
        settle();
      });
    };
    write();
  });
}
