import type { Probe, ProbeContext, ProbeOutcome } from '../probe';
import { connectTarget } from './connect-target';
import { pgClient } from './pg-client';
import { elapsedMs, MetricBag } from './service-metrics';

// postgres-stats (issue 16): one connection per run to the address the target policy
// allowed; fixed catalogue queries in one READ ONLY transaction under a server-side
// statement_timeout:
//  - connections of client backends by state (pg_stat_activity) and max_connections;
//  - database sizes (the largest `maxDatabases` the user may connect to);
//  - replication: on a primary, each replica's replay/write/flush lag in seconds and its
//    replay position behind in bytes (pg_stat_replication); on a standby, how far replay
//    is behind: seconds since the last replayed transaction when WAL is still waiting to be
//    replayed, else 0 (pg_last_xact_replay_timestamp; no figure while the standby has replayed
//    no transaction since it started: unknown is not zero), and the bytes received but not yet
//    replayed. Seeing other sessions' states and replicas needs pg_monitor (or superuser);
//    without it the counts are those the user may see.
// What the session reads is bounded (MAX_READ_BYTES, in all): pg holds a message until its last byte, so a server
// streaming a huge row or notice grew the collector by whatever it sent before the timeout.

const MAX_REPLICAS = 50;
/**
 * What one run reads at most: the session's start and the fixed queries' answers — at most 200 database names and 50
 * replicas, a few tens of kB. A server sending more is cut off and the check is DOWN, saying so.
 */
export const MAX_READ_BYTES = 1024 * 1024;

function failed(failureReason: string, latencyMs: number | null = null): ProbeOutcome {
  return { ok: false, latencyMs, failureReason, facts: {}, metrics: [] };
}

const n = (v: unknown): number | undefined => (v === null || v === undefined ? undefined : Number(v));

export const postgresStatsProbe: Probe<'postgres-stats'> = async (check, ctx: ProbeContext): Promise<ProbeOutcome> => {
  const target = await connectTarget(check, ctx, undefined);
  if ('failure' in target) return failed(target.failure);
  const { reasonOf } = target;
  const { client, unwire, exceeded } = pgClient(check, target, ctx.timeoutMs, MAX_READ_BYTES);

  const started = performance.now();
  let graceful = false;
  try {
    await client.connect();
    const latencyMs = elapsedMs(started);
    await client.query('BEGIN TRANSACTION READ ONLY');
    const meta = (
      await client.query<{ version: string; recovery: boolean; max: number }>(
        "SELECT current_setting('server_version') AS version, pg_is_in_recovery() AS recovery, current_setting('max_connections')::int AS max",
      )
    ).rows[0];
    const bag = new MetricBag();
    bag.add('pg_up', 1);
    bag.add('pg_in_recovery', meta.recovery ? 1 : 0);
    bag.add('pg_max_connections', meta.max);

    const states = await client.query<{ state: string; n: number }>(
      `SELECT coalesce(state, 'unknown') AS state, count(*)::int AS n
         FROM pg_stat_activity WHERE backend_type = 'client backend' GROUP BY 1 ORDER BY 1`,
    );
    let total = 0;
    for (const r of states.rows) {
      total += r.n;
      bag.add('pg_connections', r.n, { state: r.state });
    }
    bag.add('pg_connections_total', total);

    const sizes = await client.query<{ datname: string; bytes: number }>(
      `SELECT datname, pg_database_size(oid)::float8 AS bytes FROM pg_database
        WHERE datallowconn AND has_database_privilege(oid, 'CONNECT') ORDER BY 2 DESC, 1 LIMIT $1`,
      [check.maxDatabases],
    );
    for (const r of sizes.rows) bag.add('pg_database_size_bytes', r.bytes, { database: r.datname });

    let replicas = 0;
    if (meta.recovery) {
      const lag = (
        await client.query<{ seconds: number | null; bytes: number | null }>(
          `SELECT CASE WHEN pg_last_wal_receive_lsn() IS NULL OR pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
                       ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8 END AS seconds,
                  pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())::float8 AS bytes`,
        )
      ).rows[0];
      bag.add('pg_standby_lag_seconds', n(lag.seconds));
      bag.add('pg_standby_lag_bytes', n(lag.bytes));
    } else {
      const rows = (
        await client.query<{
          replica: string;
          replay: number | null;
          write: number | null;
          flush: number | null;
          bytes: number | null;
        }>(
          `SELECT coalesce(nullif(application_name, ''), client_addr::text, 'local') || ':' || pid AS replica,
                  extract(epoch FROM replay_lag)::float8 AS replay, extract(epoch FROM write_lag)::float8 AS write,
                  extract(epoch FROM flush_lag)::float8 AS flush,
                  pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::float8 AS bytes
             FROM pg_stat_replication ORDER BY 1 LIMIT $1`,
          [MAX_REPLICAS],
        )
      ).rows;
      replicas = rows.length;
      bag.add('pg_replicas', replicas);
      for (const r of rows) {
        const labels = { replica: r.replica };
        // A replica that is fully caught up reports a null lag: nothing to wait for.
        bag.add('pg_replica_lag_seconds', n(r.replay) ?? 0, labels);
        bag.add('pg_replica_write_lag_seconds', n(r.write) ?? 0, labels);
        bag.add('pg_replica_flush_lag_seconds', n(r.flush) ?? 0, labels);
        bag.add('pg_replica_lag_bytes', n(r.bytes), labels);
      }
    }
    await client.query('ROLLBACK');
    graceful = true;
    const result = {
      serverVersion: meta.version,
      inRecovery: meta.recovery,
      connections: total,
      databases: sizes.rows.length,
      replicas,
    };
    return { ok: true, latencyMs, facts: { result, metrics: bag.samples() }, metrics: bag.toArray() };
  } catch (err) {
    const code = (err as { code?: string }).code;
    const cut = exceeded();
    if (cut) return failed(reasonOf(cut));
    return failed(`${reasonOf(err)}${code && /^[0-9A-Z]{5}$/.test(code) ? ` (SQLSTATE ${code})` : ''}`);
  } finally {
    unwire();
    if (graceful) {
      let t: NodeJS.Timeout | undefined;
      await Promise.race([client.end().catch(() => undefined), new Promise<void>((r) => (t = setTimeout(r, 1000)))]);
      clearTimeout(t);
    }
    client.connection.stream.destroy();
  }
};
