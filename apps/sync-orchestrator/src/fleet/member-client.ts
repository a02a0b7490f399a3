import {
  flowMetricsSchema,
  memberReportSchema,
  memberSnapshotSchema,
  type FlowMetrics,
  type MemberReport,
  type MemberSnapshotView,
} from '@fleetwatch/contracts';
import { Agent, request, type Dispatcher } from 'undici';
import type { z } from 'zod';
import {
  BudgetFullError,
  ReportTooLargeError,
  type BudgetLease,
  type BudgetPart,
  type ByteBudget,
} from './byte-budget';
import type { LeaderMember } from './leader-config';

// One member's endpoints as a leader calls them. Redirects are followed by hand (at most
// 3): the Authorization header goes only to the member's own origin, never across a
// redirect to another host (SPEC §10). Errors carry the member's URL path and status,
// never a header. Endpoints an older member lacks (404/405/501) read as null.
//
// Requests go through undici's request() on a keep-alive Agent owned by the poller (not the
// global fetch: its WHATWG streams, Request/Response objects and abort plumbing were half of a
// poll cycle's CPU — issue 19's benchmark). The snapshot is asked for with If-None-Match of the
// hash held: an unchanged one is answered 304, neither transferred nor parsed; a member that
// ignores the header and sends the same hash again is not re-validated either. With a ByteBudget
// (the poll cycle's), each chunk of a body is taken from it as it arrives; one that does not fit fails
// that answer at once (see byte-budget.ts); the status report may use the budget's share kept for reports, which
// snapshots and flow cannot fill, up to its own limit (ByteBudget.reportLimit) so that one member cannot fill it.
// A 2xx whose JSON is `null` is no data, not a missing endpoint (that is a 404): it fails, saying so.

const MAX_REDIRECTS = 3;
const ABSENT = new Set([404, 405, 501]);
/**
 * What a refusal (401, 403) means, said with the status: a member with wrong credentials is reachable, and its card
 * must not read like an outage. '' for any other status.
 */
function refusal(status: number, ownOrigin: boolean, authorization: string | undefined): string {
  if (status !== 401 && status !== 403) return '';
  if (!ownOrigin) return ' (after a redirect to another host, which is never sent the leader’s credentials)';
  if (authorization === undefined) return ' (the member wants credentials: none are configured for it)';
  return status === 401
    ? ' (the member refused the leader’s credentials: check the secret in the variable its credentials name)'
    : ' (the member refused the leader’s credentials this read: a disabled user, or an API key without the fleet scope)';
}
/** Largest answer read from a member (a snapshot of some 25,000 checks); a bigger one fails the poll. */
export const MAX_ANSWER_BYTES = 8 * 1024 * 1024;

/**
 * Deepest nesting of arrays and objects taken in a member's snapshot (a site's own are some 40 deep: a property's value
 * holds 32). Deeper JSON parses, but JSON.stringify and the drift walk recurse and overflow the stack some thousands
 * deep: stored with the cycle's records, one such snapshot failed the cache write of every member, every cycle.
 */
export const MAX_SNAPSHOT_DEPTH = 100;

export class MemberCallError extends Error {}

/** The answer to a conditional GET whose ETag still matched (304). */
export const NOT_MODIFIED = Symbol('not modified');

export interface MemberPoll {
  report: MemberReport;
  flow: FlowMetrics | null;
  snapshot: MemberSnapshotView | null;
  /**
   * Flow or snapshot calls that failed while the report came (too large, timed out, the member's config owner away,
   * unreadable): `flow` is then null and `snapshot` the one held, and the poll still counts. Absent when none did.
   */
  partial?: { flow?: string; snapshot?: string };
}

/**
 * The leader's connections to its members: kept alive between requests and cycles (as long as
 * the member's Keep-Alive allows, at most 60 s), any number per origin (the poller bounds how
 * many members are in flight), answers over MAX_ANSWER_BYTES refused.
 */
export function createMemberAgent(maxAnswerBytes = MAX_ANSWER_BYTES): Agent {
  return new Agent({
    keepAliveTimeout: 10_000,
    keepAliveMaxTimeout: 60_000,
    maxResponseSize: maxAnswerBytes,
    connect: { timeout: 10_000 },
  });
}

export interface GetOptions {
  dispatcher?: Dispatcher;
  /** An ETag held: a 304 answer reads as NOT_MODIFIED. */
  ifNoneMatch?: string;
  /** The poll cycle's in-flight byte budget: each chunk of the body is taken from it as it is read. */
  budget?: ByteBudget;
  /** Which share of the budget the answer is read in: a status report may use the part kept for reports. */
  budgetPart?: BudgetPart;
}

function header(headers: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/**
 * The body of GET base+path, following same-origin and cross-origin redirects (credentials same-origin only);
 * null when absent, NOT_MODIFIED when `ifNoneMatch` still matches.
 */
export async function getJson(
  member: LeaderMember,
  path: string,
  signal: AbortSignal,
  options: GetOptions = {},
): Promise<unknown> {
  const origin = new URL(member.url).origin;
  let url = new URL(member.url + path);
  const failed = (err: unknown) =>
    new MemberCallError(
      `GET ${path}: ${signal.aborted ? String((signal.reason as Error)?.message ?? 'aborted') : causeOf(err)}`,
    );
  for (let hop = 0; ; hop++) {
    const headers: Record<string, string> = { accept: 'application/json' };
    const authorization = url.origin === origin ? member.authorization() : undefined;
    if (authorization) headers.authorization = authorization;
    if (options.ifNoneMatch) headers['if-none-match'] = options.ifNoneMatch;
    let res: Dispatcher.ResponseData;
    try {
      res = await request(url, { method: 'GET', headers, signal, dispatcher: options.dispatcher });
    } catch (err) {
      throw failed(err);
    }
    const status = res.statusCode;
    if (status === 304 && options.ifNoneMatch) {
      await res.body.dump();
      return NOT_MODIFIED;
    }
    const location = status >= 300 && status < 400 ? header(res.headers, 'location') : undefined;
    if (location) {
      await res.body.dump();
      if (hop >= MAX_REDIRECTS) throw new MemberCallError(`GET ${path}: more than ${MAX_REDIRECTS} redirects`);
      url = new URL(location, url);
      if (url.protocol !== 'http:' && url.protocol !== 'https:')
        throw new MemberCallError(`GET ${path}: redirect to a non-http URL refused`);
      continue;
    }
    if (ABSENT.has(status)) {
      await res.body.dump();
      return null;
    }
    if (status < 200 || status >= 300) {
      await res.body.dump();
      throw new MemberCallError(
        `GET ${path}: answered ${status}${refusal(status, url.origin === origin, authorization)}`,
      );
    }
    let lease: BudgetLease | undefined;
    if (options.budget) {
      const length = contentLength(res.headers);
      // One announcing more than the per-answer cap fails at that cap anyway (the agent's maxResponseSize), and one
      // announcing more than the whole budget can never fit: neither is read.
      if (length !== undefined && length > MAX_ANSWER_BYTES) {
        res.body.destroy();
        throw new MemberCallError(
          `GET ${path}: answer too large (Content-Length ${length} over the size limit of ${MAX_ANSWER_BYTES} bytes)`,
        );
      }
      const part = options.budgetPart ?? 'bulk';
      if (part === 'report' && length !== undefined && length > options.budget.reportLimit) {
        res.body.destroy();
        throw new MemberCallError(`GET ${path}: ${new ReportTooLargeError(options.budget.reportLimit).message}`);
      }
      if (length !== undefined && length > options.budget.limitOf(part)) {
        res.body.destroy();
        throw new MemberCallError(
          `GET ${path}: answer of ${length} bytes cannot fit the poll cycle's in-flight byte budget (${options.budget.limit} bytes, FLEET_POLL_MAX_INFLIGHT_BYTES${part === 'bulk' ? `; ${options.budget.bulkLimit} of them for snapshots and flow, the rest kept for status reports` : ''})`,
        );
      }
      lease = options.budget.open(part);
    }
    try {
      let text: string;
      try {
        text = lease ? await readWithin(res, lease) : await res.body.text();
      } catch (err) {
        if (err instanceof MemberCallError) throw new MemberCallError(`GET ${path}: ${err.message}`);
        throw failed(err);
      }
      let value: unknown;
      try {
        value = JSON.parse(text) as unknown;
      } catch {
        throw new MemberCallError(`GET ${path}: the answer is not JSON`);
      }
      if (value === null)
        throw new MemberCallError(
          `GET ${path}: answered ${status} with null (no data; a missing endpoint answers 404)`,
        );
      return value;
    } finally {
      lease?.release();
    }
  }
}

/** The answer's Content-Length, when it sends a valid one. */
function contentLength(headers: Record<string, string | string[] | undefined>): number | undefined {
  const length = Number(header(headers, 'content-length') ?? NaN);
  return Number.isSafeInteger(length) && length >= 0 ? length : undefined;
}

/**
 * The body as text, each chunk taken from the cycle's budget as it is read (`lease`, given back by the caller once the
 * answer is parsed or dropped). A chunk that does not fit fails the answer at once (BudgetFullError, or
 * ReportTooLargeError past a report's own limit): the stream is destroyed, the chunk not kept.
 */
async function readWithin(res: Dispatcher.ResponseData, lease: BudgetLease): Promise<string> {
  const chunks: Buffer[] = [];
  let length = 0;
  try {
    for await (const chunk of res.body as AsyncIterable<Buffer>) {
      lease.take(chunk.length);
      length += chunk.length;
      chunks.push(chunk);
    }
  } catch (err) {
    res.body.destroy();
    if (err instanceof BudgetFullError || err instanceof ReportTooLargeError) throw new MemberCallError(err.message);
    throw err;
  }
  return new TextDecoder().decode(Buffer.concat(chunks, length));
}

function causeOf(err: unknown): string {
  const e = err as { code?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e?.code === 'UND_ERR_RES_EXCEEDED_MAX_SIZE') return 'answer too large (over the size limit)';
  return e?.cause?.code ?? e?.cause?.message ?? e?.code ?? e?.message ?? 'request failed';
}

function parsed<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const i = r.error.issues[0];
  throw new MemberCallError(`${what} does not match the contract: ${i?.path.join('.') || '(root)'}: ${i?.message}`);
}

export interface PollMemberOptions {
  dispatcher?: Dispatcher;
  /** The poll cycle's in-flight byte budget. */
  budget?: ByteBudget;
  /** The member's last good snapshot: asked for conditionally, kept when unchanged. */
  heldSnapshot?: MemberSnapshotView | null;
}

/** The snapshot ETag a member sends: its content hash, quoted. */
export const snapshotEtag = (hash: string) => `"${hash}"`;

/**
 * The three member endpoints in parallel; the report is required, flow and snapshot are best-effort. A failing report
 * cancels the other two, and the poll ends (with that failure) only once all three have: a request left open by a
 * failed poll would outlive it — past the member timeout, the poller's concurrency and its close() — one more each
 * cycle while the member fails fast and hangs on another endpoint. A failing flow or snapshot leaves the report
 * (MemberPoll.partial): a snapshot over the size limit, or a member whose configuration owner was away, made the whole
 * member read as unreachable at the leader — its health, not only its drift view, lost.
 */
export async function pollMember(
  member: LeaderMember,
  signal: AbortSignal,
  flowMinutes = 60,
  options: PollMemberOptions = {},
): Promise<MemberPoll> {
  const held = options.heldSnapshot ?? null;
  // Reused only when parsed with the areas it lacked recorded (absentAreas): one kept from before is read again in full.
  const reusable = held?.absentAreas !== undefined ? held : null;
  const get = { dispatcher: options.dispatcher, budget: options.budget };
  const calls = new AbortController();
  const cancel = () => calls.abort(signal.reason);
  if (signal.aborted) cancel();
  else signal.addEventListener('abort', cancel, { once: true });
  let failure: { err: unknown } | null = null;
  const required = (path: string) =>
    getJson(member, path, calls.signal, { ...get, budgetPart: 'report' }).catch((err: unknown) => {
      if (!failure) {
        failure = { err };
        calls.abort(new Error('another call of this poll failed'));
      }
      return undefined;
    });
  const optional = (path: string, extra: GetOptions = {}) =>
    getJson(member, path, calls.signal, { ...get, ...extra }).then(
      (value) => ({ value }),
      (err: unknown) => ({ error: messageOf(err) }),
    );
  const [report, flow, snapshot] = await Promise.all([
    required('/api/v1/status/report'),
    optional(`/api/v1/metrics/flow?minutes=${flowMinutes}`),
    optional('/api/v1/system/snapshot/current', { ifNoneMatch: reusable ? snapshotEtag(reusable.hash) : undefined }),
  ]).finally(() => signal.removeEventListener('abort', cancel));
  if (failure) throw (failure as { err: unknown }).err;
  if (report === null) throw new MemberCallError('GET /api/v1/status/report: not found (is this a Fleetwatch site?)');
  const partial: NonNullable<MemberPoll['partial']> = {};
  const readFlow = (): FlowMetrics | null => {
    if ('error' in flow) {
      partial.flow = flow.error;
      return null;
    }
    try {
      return flow.value === null ? null : parsed(flowMetricsSchema, flow.value, 'flow');
    } catch (err) {
      partial.flow = messageOf(err);
      return null;
    }
  };
  const readSnapshot = (): MemberSnapshotView | null => {
    if ('error' in snapshot) {
      partial.snapshot = snapshot.error;
      return held;
    }
    const v = snapshot.value;
    if (v === null) return null;
    if (
      v === NOT_MODIFIED ||
      (reusable !== null && typeof v === 'object' && (v as { hash?: unknown }).hash === reusable.hash)
    )
      return held;
    try {
      if (deeperThan(v, MAX_SNAPSHOT_DEPTH))
        throw new MemberCallError(`snapshot nested deeper than ${MAX_SNAPSHOT_DEPTH} levels`);
      return parsed(memberSnapshotSchema, v, 'snapshot');
    } catch (err) {
      partial.snapshot = messageOf(err);
      return held;
    }
  };
  const result: MemberPoll = {
    report: parsed(memberReportSchema, report, 'report'),
    flow: readFlow(),
    snapshot: readSnapshot(),
  };
  if (partial.flow !== undefined || partial.snapshot !== undefined) result.partial = partial;
  return result;
}

/** Whether JSON `value` nests arrays and objects more than `max` levels (the value itself is level 1); no recursion. */
export function deeperThan(value: unknown, max: number): boolean {
  const stack: Array<[unknown, number]> = [[value, 1]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop() as [unknown, number];
    if (v === null || typeof v !== 'object') continue;
    if (depth > max) return true;
    for (const child of Array.isArray(v) ? v : Object.values(v)) stack.push([child, depth + 1]);
  }
  return false;
}

/** An error's message for a member's record, at most 500 characters. */
export function messageOf(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).slice(0, 500);
}
