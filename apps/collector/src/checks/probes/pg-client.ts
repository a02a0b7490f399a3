// eslint-disable-next-line no-restricted-imports -- a monitored target's server, not Fleetwatch's database (the rule's concern)
import { Client } from 'pg';
import { servername, type Target } from './connect-target';

/**
 * One pg connection for one attempt, to the target's address, under a server-side
 * statement_timeout; its socket is destroyed when the attempt's signal aborts. `unwire()` when done.
 */
export function pgClient(
  check: { host: string; port: number; user: string; database: string; ssl?: boolean },
  target: Target<string | undefined>,
  timeoutMs: number,
): { client: Client; unwire(): void } {
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
  return { client, unwire: () => target.signal.removeEventListener('abort', destroy) };
}
