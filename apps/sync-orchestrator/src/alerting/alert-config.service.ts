import { randomUUID } from 'node:crypto';
import { Inject, Injectable, Optional } from '@nestjs/common';
import {
  textProblem,
  type Actor,
  type AlertRuleDefinition,
  type AlertRuleSpec,
  type Channel,
  type ChannelConfig,
  type ConfigDiffEntry,
  type MaintenanceWindowDefinition,
  type MaintenanceWindowSpec,
  type Page,
} from '@fleetwatch/contracts';
import { channelTargetProblem } from '@fleetwatch/alerting';
import {
  ConflictError,
  createTargetPolicy,
  DEFAULT_DENY_NETWORKS,
  InvalidError,
  NotFoundError,
  type ErrorIssue,
  type TargetPolicy,
} from '@fleetwatch/domain';
import {
  AlertConfigRepository,
  type AlertConfigRecord,
  type AlertConfigWrite,
  type SecretSealer,
  type SqlTransaction,
} from '@fleetwatch/persistence';
import { TargetDeniedError, VersionConflictError } from '../config/config.errors';
import { CHECK_TARGET_POLICY } from '../config/config.tokens';
import { ConfigWriter, type WriteOutcome, type WriteRequest } from '../config/config-writer';
import {
  alertEntryHash,
  entryDiff,
  parseChannel,
  parseRule,
  parseWindow,
  type AlertArea,
  type Parsed,
} from './alert-forms';
import { CHANNEL_SEALER } from './alerting.tokens';
import {
  channelAnswer,
  channelHeaderSecrets,
  channelSecretsWrite,
  maskChannelHeaders,
  withoutRedactedSecrets,
} from './channel-secrets';

// Alert rules, notification channels and maintenance windows as the configuration owner keeps them
// (issue 18, SPEC §2, §7): every write validated by the contract (and libs/alerting's template and
// cron checks), under the config lock, as a new config version with its hash, audit entries and a
// `config.changed` (ConfigWriter) — the same path as checks. One generic path for the three kinds;
// channels add their secrets (channel-secrets.ts).

export type AlertKind = 'rule' | 'channel' | 'window';

interface KindInfo {
  area: AlertArea;
  noun: string;
  action: string;
}
export const KINDS: Record<AlertKind, KindInfo> = {
  rule: { area: 'alertRules', noun: 'alert rule', action: 'alert-rule' },
  channel: { area: 'channels', noun: 'channel', action: 'channel' },
  window: { area: 'maintenanceWindows', noun: 'maintenance window', action: 'maintenance-window' },
};

export type AnswerOf<K extends AlertKind> = K extends 'rule'
  ? AlertRuleDefinition
  : K extends 'channel'
    ? Channel
    : MaintenanceWindowDefinition;

const encodeCursor = (id: string) => Buffer.from(JSON.stringify({ i: id }), 'utf8').toString('base64url');
function decodeCursor(cursor: string): string {
  try {
    const v = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as { i?: unknown };
    if (typeof v?.i === 'string' && textProblem(v.i) === null) return v.i;
  } catch {
    // fall through
  }
  throw new InvalidError('cursor is not one this service gave out', [{ path: 'cursor', message: 'unknown cursor' }]);
}

export function invalidOf(noun: string, issues: ErrorIssue[]): InvalidError {
  const first = issues[0];
  return new InvalidError(
    `invalid ${noun}: ${first ? `${first.path ? `${first.path}: ` : ''}${first.message}` : 'rejected'}${
      issues.length > 1 ? ` (and ${issues.length - 1} more)` : ''
    }`,
    issues.slice(0, 200),
  );
}

function ok<T>(noun: string, parsed: Parsed<T>): T {
  if (!parsed.ok) throw invalidOf(noun, parsed.issues);
  return parsed.spec;
}

/** What a kind's write stores: the row, its config form (snapshot, hash) and the audit's secret entries. */
interface Prepared {
  write: AlertConfigWrite;
  form: Record<string, unknown>;
  secretDiff: ConfigDiffEntry[];
}

@Injectable()
export class AlertConfigService {
  constructor(
    private readonly writer: ConfigWriter,
    private readonly repo: AlertConfigRepository,
    @Inject(CHANNEL_SEALER) private readonly sealer: SecretSealer | null,
    /** Channels' hosts go through the checks' target policy (FLEETWATCH_CHECK_DENY_NETWORKS). */
    @Optional()
    @Inject(CHECK_TARGET_POLICY)
    private readonly policy: TargetPolicy = createTargetPolicy(DEFAULT_DENY_NETWORKS),
  ) {}

  /** Validates a body of `kind` (InvalidError naming fields); `current` is the entry a replace or patch changes. */
  private async prepare(
    kind: AlertKind,
    id: string,
    actor: Actor,
    input: unknown,
    current: AlertConfigRecord | null,
    tx: SqlTransaction,
  ): Promise<Prepared> {
    const { area, noun } = KINDS[kind];
    if (kind === 'rule') {
      const spec = ok<AlertRuleSpec>(noun, parseRule(input));
      await this.channelsExist(tx, spec.channels);
      return { write: { id, name: spec.name, spec, hash: alertEntryHash(area, id, spec) }, form: spec, secretDiff: [] };
    }
    if (kind === 'window') {
      // The author is who created it: the caller on create, kept on later writes.
      const body = {
        ...(input as Record<string, unknown>),
        createdBy: current ? current.spec['createdBy'] : actor.name,
      };
      const spec = ok<MaintenanceWindowSpec>(noun, parseWindow(body));
      return { write: { id, name: spec.name, spec, hash: alertEntryHash(area, id, spec) }, form: spec, secretDiff: [] };
    }
    // A secret field sent back as the answers show it (`{set, hint}`) keeps what is stored; so does a credential-named
    // header stored before they were refused, sent back masked (any other value of one is refused).
    const input_ = ok(
      noun,
      parseChannel(
        channelHeaderSecrets(
          withoutRedactedSecrets(input),
          current ? (current.spec as unknown as ChannelConfig) : null,
        ),
      ),
    );
    // The input holds the public fields and the secrets sent (a Slack or Teams URL is one): every host written.
    const problem = channelTargetProblem(
      input_ as unknown as ChannelConfig,
      input_ as unknown as Record<string, string | null | undefined>,
      this.policy,
    );
    if (problem) throw new TargetDeniedError(`channel ${problem.path}: ${problem.message}`, [problem]);
    const stored = current
      ? {
          sealed: (await this.repo.sealedSecrets(id, tx)) ?? {},
          redacted: current.secretsRedacted ?? {},
          config: current.spec as unknown as ChannelConfig,
        }
      : null;
    const s = channelSecretsWrite(this.sealer, id, input_, stored);
    const form = s.config as unknown as Record<string, unknown>;
    return {
      write: {
        id,
        name: s.config.name,
        type: s.config.type,
        spec: s.config,
        hash: alertEntryHash(area, id, form),
        secrets: s.sealed,
        secretsRedacted: s.redacted,
      },
      form,
      secretDiff: s.diff,
    };
  }

  /** A rule's channels must exist (under the lock: a channel deleted meanwhile is seen). */
  private async channelsExist(tx: SqlTransaction, ids: readonly string[]): Promise<void> {
    const issues: ErrorIssue[] = [];
    for (const [i, id] of ids.entries())
      if (!(await this.repo.find('channels', id, tx)))
        issues.push({ path: `channels.${i}`, message: `no channel ${id}` });
    if (issues.length) throw invalidOf('alert rule', issues);
  }

  answer<K extends AlertKind>(kind: K, r: AlertConfigRecord): AnswerOf<K> {
    if (kind === 'channel') return channelAnswer(r as AlertConfigRecord<ChannelConfig>) as AnswerOf<K>;
    return { ...r.spec, id: r.id, version: r.version, createdAt: r.createdAt, updatedAt: r.updatedAt } as AnswerOf<K>;
  }

  async create<K extends AlertKind>(
    kind: K,
    actor: Actor,
    input: unknown,
    request?: WriteRequest,
  ): Promise<{ item: AnswerOf<K>; version: number }> {
    const { area, noun, action } = KINDS[kind];
    const id = randomUUID();
    return this.writer.write(
      actor,
      async ({ tx, next }): Promise<WriteOutcome<{ item: AnswerOf<K> }>> => {
        const p = await this.prepare(kind, id, actor, input, null, tx);
        const { created } = await this.repo.insertNew(tx, area, [p.write], next);
        return {
          changed: true,
          result: { item: this.answer(kind, created[0]) },
          summary: `create ${noun} ${p.write.name}`,
          audit: [{ action: `${action}.create`, subject: id, diff: [...entryDiff(null, p.form), ...p.secretDiff] }],
          touched: [],
          alertChanges: { [area]: { [id]: p.form } },
        };
      },
      { request },
    );
  }

  /** Replaces the whole entry (PUT), or — with `patch` — merges top-level fields into it first (`null` removes one). */
  async change<K extends AlertKind>(
    kind: K,
    actor: Actor,
    id: string,
    body: { replace: unknown } | { patch: Record<string, unknown> },
    expectedVersion?: number,
    request?: WriteRequest,
  ): Promise<{ item: AnswerOf<K>; version: number }> {
    const { area, noun, action } = KINDS[kind];
    return this.writer.write(
      actor,
      async ({ tx, next }): Promise<WriteOutcome<{ item: AnswerOf<K> }>> => {
        const current = await this.current(kind, tx, id, expectedVersion);
        let input: unknown;
        if ('replace' in body) input = body.replace;
        else {
          // A channel's credential-named headers as answers show them (masked): kept as stored unless the patch names them.
          const merged: Record<string, unknown> = {
            ...(kind === 'channel' ? maskChannelHeaders(current.spec) : current.spec),
          };
          for (const [k, v] of Object.entries(body.patch))
            if (v === null && !(kind === 'channel' && k in (current.secretsRedacted ?? {}))) delete merged[k];
            else Object.defineProperty(merged, k, { value: v, enumerable: true, writable: true, configurable: true });
          input = merged;
        }
        if (typeof input !== 'object' || input === null || Array.isArray(input))
          throw invalidOf(noun, [{ path: '(body)', message: 'expected a JSON object' }]);
        const p = await this.prepare(kind, id, actor, input, current, tx);
        const diff = [...entryDiff(current.spec, p.form), ...p.secretDiff];
        if (diff.length === 0) return { changed: false, result: { item: this.answer(kind, current) } };
        const [stored] = await this.repo.update(tx, area, [p.write], next);
        return {
          changed: true,
          result: { item: this.answer(kind, stored) },
          summary: `${'replace' in body ? 'replace' : 'patch'} ${noun} ${p.write.name}`,
          audit: [{ action: `${action}.${'replace' in body ? 'replace' : 'patch'}`, subject: id, diff }],
          touched: [],
          alertChanges: { [area]: { [id]: p.form } },
        };
      },
      { request },
    );
  }

  async delete(
    kind: AlertKind,
    actor: Actor,
    id: string,
    expectedVersion?: number,
    request?: WriteRequest,
  ): Promise<{ version: number }> {
    const { area, noun, action } = KINDS[kind];
    return this.writer.write(
      actor,
      async ({ tx }): Promise<WriteOutcome<object>> => {
        const current = await this.current(kind, tx, id, expectedVersion);
        if (kind === 'channel') {
          const users = (await this.repo.all<AlertRuleSpec>('alertRules', tx)).filter((r) =>
            r.spec.channels.includes(id),
          );
          if (users.length)
            throw new ConflictError(
              `channel ${id} is used by ${users.length} alert rule(s) (${users
                .slice(0, 3)
                .map((r) => JSON.stringify(r.spec.name))
                .join(', ')}): take it out of them first`,
            );
        }
        await this.repo.delete(tx, area, [id]);
        return {
          changed: true,
          result: {},
          summary: `delete ${noun} ${String(current.spec['name'])}`,
          audit: [{ action: `${action}.delete`, subject: id, diff: entryDiff(current.spec, null) }],
          touched: [],
          alertChanges: { [area]: { [id]: null } },
        };
      },
      { request },
    );
  }

  private async current(kind: AlertKind, tx: SqlTransaction, id: string, expectedVersion: number | undefined) {
    const { area, noun } = KINDS[kind];
    const current = await this.repo.find(area, id, tx);
    if (!current) throw new NotFoundError(`${noun} ${id} not found`);
    if (expectedVersion !== undefined && expectedVersion !== current.version)
      throw new VersionConflictError(
        `${noun} ${id} is at version ${current.version}, not ${expectedVersion}: read it again`,
        current.version,
      );
    return current;
  }

  async get<K extends AlertKind>(kind: K, id: string): Promise<AnswerOf<K>> {
    const r = await this.repo.find(KINDS[kind].area, id);
    if (!r) throw new NotFoundError(`${KINDS[kind].noun} ${id} not found`);
    return this.answer(kind, r);
  }

  /** A page by id (byte order); `cursor` is the previous page's `nextCursor`. */
  async list<K extends AlertKind>(kind: K, q: { limit: number; cursor?: string }): Promise<Page<AnswerOf<K>>> {
    const rows = await this.repo.list(KINDS[kind].area, {
      afterId: q.cursor ? decodeCursor(q.cursor) : undefined,
      limit: q.limit + 1,
    });
    const items = rows.slice(0, q.limit);
    return {
      items: items.map((r) => this.answer(kind, r)),
      nextCursor: rows.length > q.limit ? encodeCursor(items[items.length - 1].id) : null,
    };
  }
}
