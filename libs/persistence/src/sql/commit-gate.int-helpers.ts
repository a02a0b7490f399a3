import { Pool } from 'pg';
import type { SqlPool } from './sql-pool';

/**
 * A real pool whose transactions can be held at their COMMIT: `hold()` makes the next COMMIT on it wait (its statements
 * have run, their row locks and writes are in place, not yet visible to others) until `release()`. For races that
 * need one transaction to be open at a known point while another runs (two replicas' claims at the same instant).
 */
export interface CommitGate {
  pool: SqlPool;
  /** Holds the next COMMIT; resolves when a transaction has reached it. */
  hold(): Promise<void>;
  /** Lets the held COMMIT go. */
  release(): void;
  close(): Promise<void>;
}

export function commitGatedPool(databaseUrl: string): CommitGate {
  const pg = new Pool({ connectionString: databaseUrl, max: 2 });
  pg.on('error', () => undefined);
  let held: { reached: () => void; released: Promise<void> } | null = null;
  let release = (): void => undefined;
  pg.on('connect', (client) => {
    const c = client as unknown as { query: (...args: unknown[]) => unknown };
    const query = c.query.bind(client);
    c.query = (...args: unknown[]) => {
      if (args[0] !== 'COMMIT' || !held) return query(...args);
      const gate = held;
      held = null;
      gate.reached();
      return gate.released.then(() => query(...args));
    };
  });
  return {
    pool: pg as unknown as SqlPool,
    hold: () =>
      new Promise<void>((reached) => {
        held = { reached, released: new Promise<void>((r) => (release = r)) };
      }),
    release: () => release(),
    close: () => pg.end(),
  };
}
