// eslint-disable-next-line no-restricted-imports -- a monitored target's server, not Fleetwatch's database (the rule's concern)
import { Client } from 'pg';
import { servername, type Target } from './connect-target';

/**
 * One pg connection for one attempt, to the target's address, under a server-side
 * statement_timeout; its socket is destroyed when the attempt's signal aborts. `unwire()` when done.
 * With `maxReadBytes`, the socket is destroyed once the server has sent more than that (`exceeded()` says so).
 */
export function pgClient(
  check: { host: string; port: number; user: string; database: string; ssl?: boolean },
  target: Target<string | undefined>,
  timeoutMs: number,
  maxReadBytes = Infinity,
): { client: Client; unwire(): void; exceeded(): Error | undefined } {
  const { password } = target;
  const client = new Client({
    host: target.address,
    port: check.port,
    user: check.user,
    database: check.database,
    // A function, never a missing password: pg would otherwise fall back to the
    // collector's own PGPASSWORD or ~/.pgpass and hand it to whatever host a check names.
    password: () => {
      if (password === undefined) throw new Error('the server asks for a password: give the check a passwordEnv');
      return password;
    },
    ssl: check.ssl ? { servername: servername(check.host), rejectUnauthorized: true } : false,
    statement_timeout: Math.max(1, Math.ceil(timeoutMs)),
    application_name: 'fleetwatch-check',
    keepAlive: false,
  });
  // Failures surface through the pending connect/query; an idle 'error' must not crash the collector.
  client.on('error', () => undefined);
  const destroy = () => client.connection.stream.destroy();
  target.signal.addEventListener('abort', destroy, { once: true });
  // pg holds a message until its last byte, whatever length its header claims: a server (or the check's query: one
  // row of `repeat('x', 500000000)`) made the collector hold as much as arrived before the timeout.
  let exceeded: Error | undefined;
  if (Number.isFinite(maxReadBytes)) {
    let read = 0;
    const count = (stream: typeof client.connection.stream): void => {
      stream.on('data', (chunk: Buffer) => {
        read += chunk.length;
        if (read <= maxReadBytes || exceeded) return;
        exceeded = new Error(`the server's answers exceeded ${maxReadBytes} bytes`);
        stream.destroy(exceeded);
      });
    };
    count(client.connection.stream);
    // With `ssl`, pg moves to a TLS socket over the first one after the server's 'S'.
    client.connection.on('sslconnect', () => count(client.connection.stream));
  }
  return {
    client,
    unwire: () => target.signal.removeEventListener('abort', destroy),
    exceeded: () => exceeded,
  };
}
