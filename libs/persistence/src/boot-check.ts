import { Client } from 'pg';
import { pingDatabase, type DatabaseClient } from './database';

/** Postgres error codes that retrying cannot fix. */
const PERMANENT_CODES = new Set(['28P01', '28000', '3D000', '42501']);

/**
 * The database check a service runs before taking work (observability's
 * BootDependency shape): a short connection and `SELECT 1`. A wrong password or
 * a missing database is permanent; refused connections are retried until the
 * boot timeout.
 */
export function databaseBootCheck(databaseUrl: string, variable = 'DATABASE_URL') {
  const url = new URL(databaseUrl);
  if (url.password) url.password = '***';
  return {
    variable,
    describe: `PostgreSQL at ${url.toString()}`,
    check: async (): Promise<void> => {
      const client = new Client({ connectionString: databaseUrl, connectionTimeoutMillis: 3000, query_timeout: 5000 });
      client.on('error', () => undefined);
      try {
        await client.connect();
        await client.query('SELECT 1');
      } catch (e) {
        const err = e as Error & { code?: string };
        if (err.code === '3D000')
          throw Object.assign(new Error(`${err.message} (create it and apply migrations: npm run db:migrate)`), {
            code: err.code,
          });
        throw err;
      } finally {
        await client.end().catch(() => undefined);
      }
    },
    isPermanent: (e: unknown): boolean => PERMANENT_CODES.has(String((e as { code?: string }).code)),
  };
}

/** The /readyz check (observability's ReadinessCheck shape) over a service's DatabaseClient. */
export function databaseReadinessCheck(db: DatabaseClient, name = 'database') {
  return {
    name,
    check: async (): Promise<void> => {
      // pingDatabase never throws: turn its answer into the check's outcome.
      const ping = await pingDatabase(db);
      // The error's text is logged; /readyz shows the word read from its code or cause (else `unavailable`).
      if (!ping.ok)
        throw Object.assign(new Error(`PostgreSQL: ${ping.error ?? 'no answer'}`), {
          ...(ping.reason ? { readinessReason: ping.reason } : {}),
        });
    },
  };
}
