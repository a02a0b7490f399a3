import {
  MAX_BATCH_UPDATES,
  statusUpdateBatchSchema,
  statusUpdateInputSchema,
  type StatusUpdate,
} from '@fleetwatch/contracts';
import { InvalidError, occurredAtProblem, type ErrorIssue, type TimeWindow } from '@fleetwatch/domain';
import type { z } from 'zod';

/** At most this many issues are listed in one refusal (a 1000-item batch could name thousands). */
export const MAX_REPORTED_ISSUES = 100;

export interface ParsedUpdates {
  updates: StatusUpdate[];
  /** `{updates: [...]}` rather than a single update. */
  batch: boolean;
}

/**
 * What a request will cost against the rate limit, read from the body's shape
 * before validating it: a batch costs its size (capped), anything else one.
 */
export function costOf(body: unknown): number {
  if (body !== null && typeof body === 'object' && !Array.isArray(body)) {
    const updates = (body as { updates?: unknown }).updates;
    if (Array.isArray(updates)) return Math.min(Math.max(updates.length, 1), MAX_BATCH_UPDATES);
  }
  return 1;
}

/**
 * Validates a request body: one update, or `{updates: [...]}` with 1–1000 of
 * them. A batch is accepted whole or refused whole; the refusal names each bad
 * item by index and field (`updates.3.status`). `occurredAt` must fall in the
 * window (not too far in the future, not older than raw retention).
 */
export function parseStatusUpdates(body: unknown, now: number, window: TimeWindow): ParsedUpdates {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    const got = body === null ? 'null' : Array.isArray(body) ? 'an array' : typeof body;
    throw new InvalidError(`body must be a JSON object (one update, or {"updates": [...]}), got ${got}`, [
      { path: '(body)', message: `expected an object, got ${got}` },
    ]);
  }
  if ('updates' in body) {
    const batch = statusUpdateBatchSchema.safeParse(body);
    if (!batch.success) throw refusal('batch refused', issuesOf(batch.error, []));
    const issues: ErrorIssue[] = [];
    const total = batch.data.updates.length;
    const updates: StatusUpdate[] = new Array(total);
    // Every item is checked, so the refusal counts them all (it said "25 of 1000" when the first 25 filled the list);
    // the issues listed stop at MAX_REPORTED_ISSUES.
    let bad = 0;
    let problems = 0;
    const report = (found: readonly ErrorIssue[]) => {
      problems += found.length;
      for (const issue of found) if (issues.length < MAX_REPORTED_ISSUES) issues.push(issue);
    };
    for (let i = 0; i < total; i++) {
      const own: ErrorIssue[] = [];
      const item = validateOne(batch.data.updates[i], ['updates', i], now, window, own);
      if (item) updates[i] = item;
      else {
        bad++;
        report(own);
      }
    }
    // Two updates with one updateId would share one message id: the second would be answered 202 and dropped as a retry.
    const firstWith = new Map<string, number>();
    for (let i = 0; i < updates.length; i++) {
      const id = updates[i]?.updateId;
      if (id === undefined) continue;
      const first = firstWith.get(id);
      if (first === undefined) firstWith.set(id, i);
      else {
        bad++;
        report([
          {
            path: pathOf(['updates', i, 'updateId']),
            message: `repeats updates.${first}.updateId: each update of a batch needs its own`,
          },
        ]);
      }
    }
    if (bad > 0)
      throw refusal(
        `batch refused: ${bad} of ${total} updates are invalid; nothing was accepted` +
          (problems > issues.length ? ` (the first ${issues.length} of ${problems} problems are listed)` : ''),
        issues,
      );
    return { updates, batch: true };
  }
  const issues: ErrorIssue[] = [];
  const update = validateOne(body, [], now, window, issues);
  if (!update) throw refusal('update refused', issues);
  return { updates: [update], batch: false };
}

function validateOne(
  input: unknown,
  prefix: Array<string | number>,
  now: number,
  window: TimeWindow,
  issues: ErrorIssue[],
): StatusUpdate | null {
  const parsed = statusUpdateInputSchema.safeParse(input);
  if (!parsed.success) {
    issues.push(...issuesOf(parsed.error, prefix));
    return null;
  }
  if (parsed.data.occurredAt !== undefined) {
    const problem = occurredAtProblem(parsed.data.occurredAt, now, window);
    if (problem) {
      issues.push({ path: pathOf([...prefix, 'occurredAt']), message: problem });
      return null;
    }
  }
  return parsed.data;
}

function issuesOf(error: z.ZodError, prefix: Array<string | number>): ErrorIssue[] {
  return error.issues.map((i) => {
    const path = [...prefix, ...(i.path as Array<string | number>)];
    // Unknown keys are reported on the object; name them so the client sees which.
    const keys = (i as { keys?: string[] }).keys;
    // A bad record key (label name) carries the reason in its nested issues.
    const inner = (i as { issues?: Array<{ message: string }> }).issues?.[0]?.message;
    const message =
      i.code === 'unrecognized_keys' && keys
        ? `unknown field(s): ${keys.join(', ')}`
        : i.code === 'invalid_key' && inner
          ? `invalid name: ${inner}`
          : i.message;
    return { path: pathOf(path), message };
  });
}

function pathOf(path: Array<string | number | symbol>): string {
  return path.length ? path.map(String).join('.') : '(body)';
}

function refusal(headline: string, issues: ErrorIssue[]): InvalidError {
  const shown = issues.slice(0, MAX_REPORTED_ISSUES);
  const summary = shown
    .slice(0, 5)
    .map((i) => `${i.path}: ${i.message}`)
    .join('; ');
  const more = issues.length > 5 ? ` (+${issues.length - 5} more)` : '';
  return new InvalidError(`${headline} — ${summary}${more}`, shown);
}
