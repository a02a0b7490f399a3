import { randomUUID } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import {
  silenceWriteIssues,
  storableDateTimeSchema,
  type Actor,
  type Page,
  type SilenceDefinition,
  type SilenceSpec,
  type SilenceState,
} from '@fleetwatch/contracts';
import { InvalidError, NotFoundError } from '@fleetwatch/domain';
import { SilencesRepository, type SilenceRecord } from '@fleetwatch/persistence';
import { ConfigWriter, type WriteOutcome, type WriteRequest } from '../config/config-writer';
import { entryDiff, parseSilence } from './alert-forms';
import { invalidOf } from './alert-config.service';

// Silences (SPEC §7): matchers and a time range, by an author (the caller) with a comment. Operational
// state rather than configuration — not in snapshots, config as code or the config hash, so an
// export → import never touches them — but written by the same single writer: every create, expire
// and delete is a config version with its audit entry and a `config.changed` (area `silences`), so
// the aggregator hears of it the way it hears of rules.

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const answer = (r: SilenceRecord<SilenceSpec>): SilenceDefinition => ({
  ...r.spec,
  id: r.id,
  state: r.state,
  version: r.version,
  createdAt: r.createdAt,
  updatedAt: r.updatedAt,
});

@Injectable()
export class SilencesService {
  constructor(
    private readonly writer: ConfigWriter,
    private readonly silences: SilencesRepository,
  ) {}

  /** The author is the caller (`actor.name`), whatever the body says. */
  async create(
    actor: Actor,
    input: unknown,
    request?: WriteRequest,
  ): Promise<{ silence: SilenceDefinition; version: number }> {
    if (typeof input !== 'object' || input === null || Array.isArray(input))
      throw invalidOf('silence', [{ path: '(body)', message: 'expected a JSON object' }]);
    const parsed = parseSilence({ ...input, createdBy: actor.name });
    if (!parsed.ok) throw invalidOf('silence', parsed.issues);
    const spec = parsed.spec;
    const id = randomUUID();
    return this.writer.write(
      actor,
      async ({ tx, next }): Promise<WriteOutcome<{ silence: SilenceDefinition }>> => {
        // A past end (expired at once): refused where it is written — the schema reads
        // stored silences too, which end in the past once expired. Inside the write, so a redelivered request gets
        // its recorded answer even after its silence has ended (ConfigWriter).
        const times = silenceWriteIssues(spec, Date.now());
        if (times.length) throw invalidOf('silence', times);
        const stored = await this.silences.insert<SilenceSpec>(tx, { id, spec }, next);
        return {
          changed: true,
          result: { silence: answer(stored) },
          summary: `create silence ${id}`,
          audit: [{ action: 'silence.create', subject: id, diff: entryDiff(null, spec) }],
          touched: [],
          areas: ['silences'],
        };
      },
      { request },
    );
  }

  /** Ends a silence now; an expired one stays as it is (no new version). */
  async expire(
    actor: Actor,
    id: string,
    request?: WriteRequest,
  ): Promise<{ silence: SilenceDefinition; version: number }> {
    return this.writer.write(
      actor,
      async ({ tx, next }): Promise<WriteOutcome<{ silence: SilenceDefinition }>> => {
        const current = await this.silences.find<SilenceSpec>(id, tx);
        if (!current) throw new NotFoundError(`silence ${id} not found`);
        if (current.state === 'expired') return { changed: false, result: { silence: answer(current) } };
        const stored = (await this.silences.expire<SilenceSpec>(tx, id, next)) as SilenceRecord<SilenceSpec>;
        return {
          changed: true,
          result: { silence: answer(stored) },
          summary: `expire silence ${id}`,
          audit: [{ action: 'silence.expire', subject: id, diff: entryDiff(current.spec, stored.spec) }],
          touched: [],
          areas: ['silences'],
        };
      },
      { request },
    );
  }

  async delete(actor: Actor, id: string, request?: WriteRequest): Promise<{ version: number }> {
    return this.writer.write(
      actor,
      async ({ tx }): Promise<WriteOutcome<object>> => {
        const current = await this.silences.find<SilenceSpec>(id, tx);
        if (!current) throw new NotFoundError(`silence ${id} not found`);
        await this.silences.delete(tx, id);
        return {
          changed: true,
          result: {},
          summary: `delete silence ${id}`,
          audit: [{ action: 'silence.delete', subject: id, diff: entryDiff(current.spec, null) }],
          touched: [],
          areas: ['silences'],
        };
      },
      { request },
    );
  }

  async get(id: string): Promise<SilenceDefinition> {
    const r = await this.silences.find<SilenceSpec>(id);
    if (!r) throw new NotFoundError(`silence ${id} not found`);
    return answer(r);
  }

  /** Newest first; `state` filters (active now, pending, expired). */
  async list(q: { state?: SilenceState; limit: number; cursor?: string }): Promise<Page<SilenceDefinition>> {
    const rows = await this.silences.list<SilenceSpec>({
      state: q.state,
      before: q.cursor ? decodeCursor(q.cursor) : undefined,
      limit: q.limit + 1,
    });
    const items = rows.slice(0, q.limit);
    const last = items[items.length - 1];
    return {
      items: items.map(answer),
      nextCursor:
        rows.length > q.limit
          ? Buffer.from(JSON.stringify({ at: last.createdAt, id: last.id })).toString('base64url')
          : null,
    };
  }
}

function decodeCursor(cursor: string): { at: string; id: string } {
  try {
    const v = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as { at?: unknown; id?: unknown };
    // Storable: the time goes to Postgres, which refuses a year 0000 that an ISO date-time may have (a 500).
    if (storableDateTimeSchema.safeParse(v?.at).success && typeof v?.id === 'string' && UUID.test(v.id))
      return { at: v.at as string, id: v.id };
  } catch {
    // fall through
  }
  throw new InvalidError('cursor is not one this service gave out', [{ path: 'cursor', message: 'unknown cursor' }]);
}
