import { randomUUID } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import {
  statusPageSpecSchema,
  textProblem,
  UUID_PATTERN,
  type Actor,
  type Page,
  type StatusPageDefinition,
  type StatusPageSpec,
} from '@fleetwatch/contracts';
import { InvalidError, NotFoundError, type ErrorIssue } from '@fleetwatch/domain';
import { StatusPagesRepository, type SqlTransaction, type StatusPageRecord } from '@fleetwatch/persistence';
import { jsonDiff } from '../config/canonical-json';
import { VersionConflictError } from '../config/config.errors';
import { ConfigWriter, type WriteOutcome, type WriteRequest } from '../config/config-writer';

// Public status pages as the configuration owner keeps them (issue 17): every write validated by the
// contract, under the config lock, as a new config version with audit entries and a `config.changed`
// naming `statusPages` (ConfigWriter) — the path alert rules take. Like silences, pages stay out of
// snapshots and the config hash: they describe how this site shows itself, not what it monitors.

const NOUN = 'status page';

function invalidOf(noun: string, issues: ErrorIssue[]): InvalidError {
  const first = issues[0];
  return new InvalidError(
    `invalid ${noun}: ${first ? `${first.path ? `${first.path}: ` : ''}${first.message}` : 'rejected'}${
      issues.length > 1 ? ` (and ${issues.length - 1} more)` : ''
    }`,
    issues.slice(0, 200),
  );
}

/** A change of the page, as the audit log records it. */
const entryDiff = (before: object | null, after: object | null) =>
  jsonDiff((before ?? {}) as Record<string, unknown>, (after ?? {}) as Record<string, unknown>);

const encodeCursor = (id: string) => Buffer.from(JSON.stringify({ i: id }), 'utf8').toString('base64url');
function decodeCursor(cursor: string): string {
  try {
    const v = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as { i?: unknown };
    if (typeof v?.i === 'string' && textProblem(v.i) === null && UUID_PATTERN.test(v.i)) return v.i;
  } catch {
    // fall through
  }
  throw new InvalidError('cursor is not one this service gave out', [{ path: 'cursor', message: 'unknown cursor' }]);
}

export function parseStatusPage(input: unknown): StatusPageSpec {
  if (typeof input !== 'object' || input === null || Array.isArray(input))
    throw invalidOf(NOUN, [{ path: '(body)', message: 'expected a JSON object' }]);
  const r = statusPageSpecSchema.safeParse(input);
  if (!r.success)
    throw invalidOf(
      NOUN,
      r.error.issues.map((i): ErrorIssue => ({ path: i.path.map(String).join('.') || '(body)', message: i.message })),
    );
  return r.data;
}

function answer(r: StatusPageRecord<StatusPageSpec>): StatusPageDefinition {
  return { ...r.spec, id: r.id, version: r.version, createdAt: r.createdAt, updatedAt: r.updatedAt };
}

@Injectable()
export class StatusPagesService {
  constructor(
    private readonly writer: ConfigWriter,
    private readonly repo: StatusPagesRepository,
  ) {}

  /** A slug is one page's: another page holding it is a 400 naming `slug` (checked under the config lock). */
  private async slugFree(tx: SqlTransaction, slug: string, id: string): Promise<void> {
    const other = await this.repo.findBySlug(slug, tx);
    if (other && other.id !== id)
      throw invalidOf(NOUN, [{ path: 'slug', message: `"${slug}" is already the slug of another status page` }]);
  }

  async create(
    actor: Actor,
    input: unknown,
    request?: WriteRequest,
  ): Promise<{ page: StatusPageDefinition; version: number }> {
    const spec = parseStatusPage(input);
    const id = randomUUID();
    return this.writer.write(
      actor,
      async ({ tx, next }): Promise<WriteOutcome<{ page: StatusPageDefinition }>> => {
        await this.slugFree(tx, spec.slug, id);
        const stored = await this.repo.insert(tx, { id, slug: spec.slug, spec }, next);
        return {
          changed: true,
          result: { page: answer(stored) },
          summary: `create status page ${spec.slug}`,
          audit: [{ action: 'status-page.create', subject: id, diff: entryDiff(null, spec) }],
          touched: [],
          areas: ['statusPages'],
        };
      },
      { request },
    );
  }

  /** Replaces the page (PUT), or — with `patch` — merges top-level fields into it first (`null` removes one). */
  async change(
    actor: Actor,
    id: string,
    body: { replace: unknown } | { patch: Record<string, unknown> },
    expectedVersion?: number,
    request?: WriteRequest,
  ): Promise<{ page: StatusPageDefinition; version: number }> {
    return this.writer.write(
      actor,
      async ({ tx, next }): Promise<WriteOutcome<{ page: StatusPageDefinition }>> => {
        const current = await this.current(tx, id, expectedVersion);
        let input: unknown;
        if ('replace' in body) input = body.replace;
        else {
          const merged: Record<string, unknown> = { ...current.spec };
          for (const [k, v] of Object.entries(body.patch))
            if (v === null) delete merged[k];
            else Object.defineProperty(merged, k, { value: v, enumerable: true, writable: true, configurable: true });
          input = merged;
        }
        const spec = parseStatusPage(input);
        const diff = entryDiff(current.spec, spec);
        if (diff.length === 0) return { changed: false, result: { page: answer(current) } };
        await this.slugFree(tx, spec.slug, id);
        const stored = await this.repo.update(tx, { id, slug: spec.slug, spec }, next);
        const how = 'replace' in body ? 'replace' : 'patch';
        return {
          changed: true,
          result: { page: answer(stored) },
          summary: `${how} status page ${spec.slug}`,
          audit: [{ action: `status-page.${how}`, subject: id, diff }],
          touched: [],
          areas: ['statusPages'],
        };
      },
      { request },
    );
  }

  async delete(
    actor: Actor,
    id: string,
    expectedVersion?: number,
    request?: WriteRequest,
  ): Promise<{ version: number }> {
    return this.writer.write(
      actor,
      async ({ tx }): Promise<WriteOutcome<object>> => {
        const current = await this.current(tx, id, expectedVersion);
        await this.repo.delete(tx, id);
        return {
          changed: true,
          result: {},
          summary: `delete status page ${current.slug}`,
          audit: [{ action: 'status-page.delete', subject: id, diff: entryDiff(current.spec, null) }],
          touched: [],
          areas: ['statusPages'],
        };
      },
      { request },
    );
  }

  private async current(
    tx: SqlTransaction,
    id: string,
    expectedVersion: number | undefined,
  ): Promise<StatusPageRecord<StatusPageSpec>> {
    const current = await this.repo.find<StatusPageSpec>(id, tx);
    if (!current) throw new NotFoundError(`status page ${id} not found`);
    if (expectedVersion !== undefined && expectedVersion !== current.version)
      throw new VersionConflictError(
        `status page ${id} is at version ${current.version}, not ${expectedVersion}: read it again`,
        current.version,
      );
    return current;
  }

  async get(id: string): Promise<StatusPageDefinition> {
    const r = await this.repo.find<StatusPageSpec>(id);
    if (!r) throw new NotFoundError(`status page ${id} not found`);
    return answer(r);
  }

  /** A page by id; `cursor` is the previous page's `nextCursor`. */
  async list(q: { limit: number; cursor?: string }): Promise<Page<StatusPageDefinition>> {
    const rows = await this.repo.list<StatusPageSpec>({
      afterId: q.cursor ? decodeCursor(q.cursor) : undefined,
      limit: q.limit + 1,
    });
    const items = rows.slice(0, q.limit);
    return {
      items: items.map(answer),
      nextCursor: rows.length > q.limit ? encodeCursor(items[items.length - 1].id) : null,
    };
  }
}
