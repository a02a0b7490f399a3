// eslint-disable-next-line no-restricted-imports -- a monitored target's server, not Fleetwatch's database (the rule's concern)
import { Query, types as pgTypes, type Client, type Connection, type CustomTypesConfig, type FieldDef } from 'pg';
import type { MetricSample, Probe, ProbeContext, ProbeOutcome } from '../probe';
import { connectTarget } from './connect-target';
import { pgClient } from './pg-client';

// One attempt at a Postgres server: connect to the address the target policy allowed,
// run the check's query (default `SELECT 1`) in a READ ONLY transaction, report its first
// row, the server version and whether the server is a standby, and expose the row's
// numeric columns as metrics (`select … as pg_lag_seconds` → `metric("pg_lag_seconds")`).
//
// The query is the check's author's, so it is fenced in: it goes over the extended
// protocol (one statement: no `COMMIT; DROP …` behind it), after the transaction has
// taken its snapshot (so `SET TRANSACTION READ WRITE` is refused), under a server-side
// statement_timeout (the server stops the work even when our socket is gone), and only
// its first row is fetched (Execute with a row limit, then Sync), so a query that
// matches a million rows does not bring them into the collector. None of this replaces
// giving the collector a read-only role.

/** Type OIDs whose values are numbers (int2, int4, int8, oid, float4, float8, numeric). */
const NUMERIC_TYPES = new Set([21, 23, 20, 26, 700, 701, 1700]);
/** Parsed by pg's own parsers: bool, int2, int4, oid, float4, float8, json, jsonb. */
const PARSED_BY_PG = new Set([16, 21, 23, 26, 700, 701, 114, 3802]);

/**
 * int8 and numeric as numbers when a double holds them exactly enough (safe integers;
 * at most 15 significant digits), else the exact text: a balance of
 * 12345678901234567890.5 must not turn into another number.
 */
export function exactNumber(text: string): number | string {
  const n = Number(text);
  if (!Number.isFinite(n)) return text;
  if (/^-?\d+$/.test(text)) return Number.isSafeInteger(n) ? n : text;
  const digits = text.replace(/^-/, '').replace('.', '').replace(/^0+/, '').replace(/e.*$/i, '');
  return digits.length <= 15 ? n : text;
}

/** Row values as JSON can carry them: text for what has no exact JSON form (dates, bytea, arrays, intervals). */
export const rowTypes: CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') => {
    if (oid === 20 || oid === 1700) return exactNumber;
    if (PARSED_BY_PG.has(oid)) return pgTypes.getTypeParser(oid, format ?? 'text');
    return (text: string) => text;
  }) as CustomTypesConfig['getTypeParser'],
};

/** The first row as a plain object (first column of a repeated name wins) and its numeric columns as metrics. */
export function rowFacts(
  fields: FieldDef[],
  values: unknown[],
): { row: Record<string, unknown>; metrics: MetricSample[] } {
  const row: Record<string, unknown> = {};
  const metrics: MetricSample[] = [];
  fields.forEach((f, i) => {
    if (Object.prototype.hasOwnProperty.call(row, f.name)) return;
    let v = values[i] ?? null;
    // NaN and ±Infinity (float columns) have no JSON form: their text, and no metric.
    if (typeof v === 'number' && !Number.isFinite(v)) v = String(v);
    row[f.name] = v;
    if (v !== null && NUMERIC_TYPES.has(f.dataTypeID)) {
      const n = Number(v);
      if (Number.isFinite(n)) metrics.push({ name: f.name, labels: {}, value: n });
    }
  });
  return { row, metrics };
}

// Fetches one row and stops: on PortalSuspended (more rows exist) it ends the portal
// with Sync instead of asking for the next batch as pg's Query does.
class FirstRowQuery extends Query {
  handlePortalSuspended(connection: Connection): void {
    (connection as unknown as { sync(): void }).sync();
  }
}

interface FirstRow {
  fields: FieldDef[];
  values: unknown[] | undefined;
}

function firstRow(client: Client, text: string): Promise<FirstRow> {
  return new Promise((resolve, reject) => {
    const q = new FirstRowQuery(
      // rows: 1 makes pg use the extended protocol and Execute with a row limit.
      { text, rowMode: 'array', rows: 1, types: rowTypes } as unknown as ConstructorParameters<typeof Query>[0],
      undefined,
      (err: Error | undefined, result: { fields: FieldDef[]; rows: unknown[][] }) => {
        if (err) reject(err);
        else resolve({ fields: result.fields, values: result.rows[0] });
      },
    );
    client.query(q);
  });
}

/**
 * Why the server refused the check's query. Its own statement_timeout (set to the attempt's timeout) is the attempt
 * timing out, said as the attempt's deadline says it: on a loaded collector either may come first, and the reason
 * must not depend on which (a changed reason reads as a new failure).
 */
export function queryFailureReason(
  err: unknown,
  timeoutMs: number,
  reasonOf: (err: unknown) => string,
  elapsedMs = 0,
): string {
  const { code, message } = err as { code?: string; message?: unknown };
  // 57014 is also a cancel from another session. The server's text says which in English only (lc_messages): a
  // cancel that came once the statement had run for the whole timeout is taken to be the timeout too.
  const timedOut = (typeof message === 'string' && /statement timeout/i.test(message)) || elapsedMs >= timeoutMs;
  if (code === '57014' && timedOut) return `timed out after ${timeoutMs} ms`;
  return `query failed: ${reasonOf(err)}${code ? ` (SQLSTATE ${code})` : ''}`;
}

/**
 * What one attempt reads at most: the session's start, the version, and the query's first row. A row beyond this (or
 * a server sending endless bytes) ends the attempt DOWN instead of growing the collector until the timeout.
 */
export const MAX_READ_BYTES = 16 * 1024 * 1024;

function failed(failureReason: string, latencyMs: number | null = null): ProbeOutcome {
  return { ok: false, latencyMs, failureReason, facts: {} };
}

export const postgresProbe: Probe<'postgres'> = async (check, ctx: ProbeContext): Promise<ProbeOutcome> => {
  // A message that could hold the password (it never should) does not leave with it: reasonOf redacts it.
  const target = await connectTarget(check, ctx, undefined);
  if ('failure' in target) return failed(target.failure);
  const { signal, reasonOf } = target;

  const { client, unwire, exceeded } = pgClient(check, target, ctx.timeoutMs, MAX_READ_BYTES);

  const started = performance.now();
  let latencyMs: number | null = null;
  let graceful = false;
  try {
    await client.connect();
    const [, meta] = (await client.query(
      "BEGIN TRANSACTION READ ONLY; SELECT current_setting('server_version') AS v, pg_is_in_recovery() AS r",
    )) as unknown as [unknown, { rows: Array<{ v: string; r: boolean }> }];
    let first: FirstRow;
    try {
      first = await firstRow(client, check.query ?? 'SELECT 1');
    } catch (err) {
      if (signal.aborted || exceeded()) throw err;
      graceful = true; // the server refused the query; the session itself is fine
      const took = elapsed(started);
      return failed(queryFailureReason(err, ctx.timeoutMs, reasonOf, took), took);
    }
    latencyMs = elapsed(started);
    await client.query('ROLLBACK');
    graceful = true;
    const { row, metrics } = first.values
      ? rowFacts(first.fields, first.values)
      : { row: null, metrics: [] as MetricSample[] };
    const result = { row, serverVersion: meta.rows[0].v, inRecovery: meta.rows[0].r };
    return { ok: true, latencyMs, facts: { result, metrics } };
  } catch (err) {
    return failed(reasonOf(exceeded() ?? err), latencyMs);
  } finally {
    unwire();
    await close(client, graceful);
  }
};

function elapsed(since: number): number {
  return Math.round((performance.now() - since) * 100) / 100;
}

/** A polite Terminate after a clean run (no "unexpected EOF" in the server's log), else the socket destroyed at once. */
async function close(client: Client, graceful: boolean): Promise<void> {
  if (!graceful) {
    client.connection.stream.destroy();
    return;
  }
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    client.end().catch(() => undefined),
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, 1000);
    }),
  ]);
  clearTimeout(timer);
  client.connection.stream.destroy();
}
