import {
  flowMetricsSchema,
  memberReportSchema,
  memberSnapshotSchema,
  type FlowMetrics,
  type MemberReport,
  type MemberSnapshotView,
} from '@fleetwatch/contracts';
import type { z } from 'zod';
import type { LeaderMember } from './leader-config';

// One member's endpoints as a leader calls them. Redirects are followed by hand (at most
// 3): the Authorization header goes only to the member's own origin, never across a
// redirect to another host (SPEC §10). Errors carry the member's URL path and status,
// never a header. Endpoints an older member lacks (404/405/501) read as null.

const MAX_REDIRECTS = 3;
const ABSENT = new Set([404, 405, 501]);

export class MemberCallError extends Error {}

export interface MemberPoll {
  report: MemberReport;
  flow: FlowMetrics | null;
  snapshot: MemberSnapshotView | null;
}

/** The body of GET base+path, following same-origin and cross-origin redirects (credentials same-origin only); null when absent. */
export async function getJson(member: LeaderMember, path: string, signal: AbortSignal): Promise<unknown> {
  const origin = new URL(member.url).origin;
  let url = new URL(member.url + path);
  for (let hop = 0; ; hop++) {
    const headers: Record<string, string> = { accept: 'application/json' };
    const authorization = url.origin === origin ? member.authorization() : undefined;
    if (authorization) headers.authorization = authorization;
    let res: Response;
    try {
      res = await fetch(url, { headers, redirect: 'manual', signal });
    } catch (err) {
      const reason = signal.aborted ? String((signal.reason as Error)?.message ?? 'aborted') : causeOf(err);
      throw new MemberCallError(`GET ${path}: ${reason}`);
    }
    if (res.status >= 300 && res.status < 400 && res.headers.get('location')) {
      await res.body?.cancel();
      if (hop >= MAX_REDIRECTS) throw new MemberCallError(`GET ${path}: more than ${MAX_REDIRECTS} redirects`);
      url = new URL(res.headers.get('location') as string, url);
      if (url.protocol !== 'http:' && url.protocol !== 'https:')
        throw new MemberCallError(`GET ${path}: redirect to a non-http URL refused`);
      continue;
    }
    if (ABSENT.has(res.status)) {
      await res.body?.cancel();
      return null;
    }
    if (!res.ok) {
      await res.body?.cancel();
      throw new MemberCallError(`GET ${path}: answered ${res.status}`);
    }
    try {
      return await res.json();
    } catch {
      throw new MemberCallError(`GET ${path}: the answer is not JSON`);
    }
  }
}

function causeOf(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (err as Error).message ?? 'request failed';
}

function parsed<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const i = r.error.issues[0];
  throw new MemberCallError(`${what} does not match the contract: ${i?.path.join('.') || '(root)'}: ${i?.message}`);
}

/** The three member endpoints in parallel; the report is required, flow and snapshot may be absent. */
export async function pollMember(member: LeaderMember, signal: AbortSignal, flowMinutes = 60): Promise<MemberPoll> {
  const [report, flow, snapshot] = await Promise.all([
    getJson(member, '/api/v1/status/report', signal),
    getJson(member, `/api/v1/metrics/flow?minutes=${flowMinutes}`, signal),
    getJson(member, '/api/v1/system/snapshot/current', signal),
  ]);
  if (report === null) throw new MemberCallError('GET /api/v1/status/report: not found (is this a Fleetwatch site?)');
  return {
    report: parsed(memberReportSchema, report, 'report'),
    flow: flow === null ? null : parsed(flowMetricsSchema, flow, 'flow'),
    snapshot: snapshot === null ? null : parsed(memberSnapshotSchema, snapshot, 'snapshot'),
  };
}
