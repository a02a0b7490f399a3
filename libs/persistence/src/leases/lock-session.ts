import { Client } from 'pg';

export interface LockSessionOptions {
  databaseUrl: string;
  applicationName: string;
  connectTimeoutMs?: number;
  /** A query slower than this fails (the caller then gives its locks up). Default 5 s. */
  queryTimeoutMs?: number;
}

/**
 * The dedicated Postgres session that holds advisory locks (AdvisoryLease, AdvisoryLockSet).
 * Keep-alives on both sides: a half-open socket must not leave the holder believing it
 * still holds its locks, nor the server keeping a vanished holder's session — and its
 * locks — for the OS keep-alive's two hours. `onGone` is called when the session errors or
 * ends. Resolves once connected; rejects if it cannot connect.
 */
export async function openLockSession(
  options: LockSessionOptions,
  onGone: (client: Client, reason: string) => void,
): Promise<Client> {
  const client = new Client({
    connectionString: options.databaseUrl,
    connectionTimeoutMillis: options.connectTimeoutMs ?? 3000,
    application_name: options.applicationName.slice(0, 63),
    keepAlive: true,
    keepAliveInitialDelayMillis: 5000,
    options: '-c tcp_keepalives_idle=5 -c tcp_keepalives_interval=2 -c tcp_keepalives_count=3',
    query_timeout: options.queryTimeoutMs ?? 5000,
  });
  client.on('error', (e: Error) => onGone(client, e.message));
  client.on('end', () => onGone(client, 'connection ended'));
  await client.connect();
  return client;
}
