import { randomUUID } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import {
  checkPatchSchema,
  checkView,
  defaultTimeoutFor,
  redactCheckRecord,
  type Actor,
  type AuditEntry,
  type CheckDefinition,
  type CheckSpec,
  type CheckView,
  type ConfigRpcResults,
  type AssignmentFull,
  type ConfigRpcMethod,
  type Page,
  storableDateTimeSchema,
  textProblem,
} from '@fleetwatch/contracts';
import { InvalidError, NotFoundError, ConflictError, type ErrorIssue, type TargetPolicy } from '@fleetwatch/domain';
import { ChecksRepository, ConfigVersionsRepository, type SqlTransaction } from '@fleetwatch/persistence';
import { parseCheck, policyIssue, specOf } from './check-form';
import { checkWrite, EMPTY_CONFIG_HASH } from './config-hash';
import { rebuild, type HistoryRow } from './config-history';
import { checkDiff } from './config-plan';
import {
  redactAuditDiff,
  redactSnapshot,
  takeSecretMarks,
  withStoredSecrets,
  type SecretHeaderMarks,
} from './check-secrets';
import type { ConfigSnapshot } from './config-yaml';
import { TargetDeniedError, VersionConflictError } from './config.errors';
import { CHECK_TARGET_POLICY } from './config.tokens';
import { ConfigWriter, type WriteOutcome, type WriteRequest } from './config-writer';
import { PushMonitors } from './push-monitors';

// Checks as the configuration owner keeps them (SPEC §2, §5): every write validated by
// the contract, refused by the target policy where the address is literal or a known
// metadata name, versioned and audited through ConfigWriter; reads straight from the
// repositories. Config as code (export/import) is ConfigAsCodeService. An http check's
// credential headers are write-only (check-secrets.ts): every answer here shows them as
// `{set: true}`; only the collector's assignment carries their values.

type R = ConfigRpcResults;

export { EMPTY_CONFIG_HASH } from './config-hash';

export interface ChecksListQuery {
  type?: string;
  tag?: string;
  location?: string;
  limit: number;
  cursor?: string;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const encodeCursor = (value: unknown) => Buffer.from(JSON.stringify(value), 'utf8').toString('base64url');
function decodeCursor<T>(cursor: string, valid: (v: unknown) => v is T): T {
  try {
    const v: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (valid(v)) return v;
  } catch {
    // fall through
  }
  throw new InvalidError('cursor is not one this service gave out', [{ path: 'cursor', message: 'unknown cursor' }]);
}

@Injectable()
export class ConfigService {
  constructor(
    private readonly writer: ConfigWriter,
    private readonly checks: ChecksRepository,
    private readonly versions: ConfigVersionsRepository,
    private readonly monitors: PushMonitors,
    @Inject(CHECK_TARGET_POLICY) private readonly policy: TargetPolicy,
  ) {}

  /** Validates (InvalidError) and applies the target policy (TargetDeniedError). */
  validate(input: unknown, prefix: (string | number)[] = []): CheckSpec {
    const parsed = parseCheck(input, prefix);
    if (!parsed.ok) throw invalid(parsed.issues);
    const denied = policyIssue(parsed.spec, this.policy, prefix);
    if (denied) throw new TargetDeniedError(`target denied by policy: ${denied.path}: ${denied.message}`, [denied]);
    return parsed.spec;
  }

  /** validate, with the credential headers' `{set}` (keep) and `null` (remove) taken out first (withStoredSecrets). */
  private validateWrite(input: unknown): { spec: CheckSpec; marks: SecretHeaderMarks } {
    const { input: values, marks } = takeSecretMarks(input);
    return { spec: this.validate(values), marks };
  }

  // Writes take the RPC request they answer (`request`), which makes them idempotent by its
  // id: a redelivered request is answered as the first time, not applied again (ConfigWriter).

  /** A `push` check comes back with its ping token (`pingToken`), in this answer only. */
  async create(actor: Actor, input: unknown, request?: WriteRequest): Promise<R[ConfigRpcMethod.ChecksCreate]> {
    const w = this.validateWrite(input);
    const { spec } = withStoredSecrets(w.spec, w.marks, null);
    const { checks, version, pingTokens } = await this.createMany(actor, [spec], `create check ${spec.name}`, request);
    const pingToken = pingTokens?.[checks[0].id];
    return pingToken ? { check: checks[0], pingToken, version } : { check: checks[0], version };
  }

  /** Up to 1,000 checks as ONE version; any invalid or denied check refuses them all. */
  async bulkCreate(
    actor: Actor,
    inputs: readonly unknown[],
    request?: WriteRequest,
  ): Promise<R[ConfigRpcMethod.ChecksBulkCreate]> {
    const issues: ErrorIssue[] = [];
    const denied: ErrorIssue[] = [];
    const specs: CheckSpec[] = [];
    const firstIndexOf = new Map<string, number>();
    inputs.forEach((input, i) => {
      const { input: values, marks } = takeSecretMarks(input);
      const parsed = parseCheck(values, ['checks', i]);
      if (!parsed.ok) return void issues.push(...parsed.issues);
      try {
        // A new check has nothing stored: a `{set}` is refused, a `null` is nothing to remove.
        parsed.spec = withStoredSecrets(parsed.spec, marks, null, `checks.${i}.`).spec;
      } catch (e) {
        if (e instanceof InvalidError) return void issues.push(...e.issues);
        throw e;
      }
      const twin = firstIndexOf.get(parsed.spec.name);
      if (twin !== undefined)
        return void issues.push({ path: `checks.${i}.name`, message: `same name as checks.${twin}` });
      firstIndexOf.set(parsed.spec.name, i);
      const d = policyIssue(parsed.spec, this.policy, ['checks', i]);
      if (d) denied.push(d);
      specs.push(parsed.spec);
    });
    if (issues.length) throw invalid(issues);
    if (denied.length)
      throw new TargetDeniedError(`target denied by policy: ${denied[0].path}: ${denied[0].message}`, denied);
    return this.createMany(actor, specs, `bulk create ${specs.length} checks`, request);
  }

  private async createMany(actor: Actor, specs: readonly CheckSpec[], summary: string, request?: WriteRequest) {
    type Created = { checks: CheckView[]; pingTokens?: Record<string, string> };
    const answer = await this.writer.write(
      actor,
      async ({ tx, next }): Promise<WriteOutcome<Created>> => {
        // Names are checked by the insert itself (no lookup first: one round trip less per create).
        const { created, taken: clash } = await this.checks.insertNew(
          tx,
          specs.map((spec) => checkWrite(randomUUID(), spec)),
          next,
        );
        if (clash.length)
          // Thrown inside the transaction: what was inserted is rolled back with it.
          throw new ConflictError(
            `a check named ${clash
              .slice(0, 5)
              .map((n) => JSON.stringify(n))
              .join(', ')}${clash.length > 5 ? ` and ${clash.length - 5} more` : ''} already exists`,
          );
        const pingTokens = await this.monitors.follow(tx, { created });
        // The answer as recorded (config_requests) and sent: credential headers redacted.
        const views = created.map(checkView);
        return {
          changed: true,
          result: pingTokens ? { checks: views, pingTokens } : { checks: views },
          summary,
          audit: created.map((c) => ({ action: 'check.create', subject: c.id, diff: checkDiff(null, specOf(c)) })),
          touched: created.map((c) => ({ id: c.id, before: null, after: specOf(c) })),
        };
      },
      { request },
    );
    // An answer recorded before credential headers were write-only is replayed redacted too.
    return { ...answer, checks: answer.checks.map(viewOf) };
  }

  async replace(
    actor: Actor,
    id: string,
    input: unknown,
    expectedVersion?: number,
    request?: WriteRequest,
  ): Promise<R[ConfigRpcMethod.ChecksReplace]> {
    const w = this.validateWrite(input);
    return this.change(
      actor,
      id,
      expectedVersion,
      'check.replace',
      (current) => withStoredSecrets(w.spec, w.marks, specOf(current)).spec,
      request,
    );
  }

  /**
   * Top-level merge (a `null` member removes the field: its default applies), then the whole check validated again.
   * The current check's credential headers take part as `{set: true}` (kept unless the patch's `headers` names them,
   * and refused when the patch moves the check to another origin); `headers: null` removes them with the rest.
   */
  async patch(
    actor: Actor,
    id: string,
    patch: Record<string, unknown>,
    expectedVersion?: number,
    request?: WriteRequest,
  ): Promise<R[ConfigRpcMethod.ChecksPatch]> {
    const checked = checkPatchSchema.safeParse(patch);
    if (!checked.success)
      throw invalid(checked.error.issues.map((i) => ({ path: i.path.map(String).join('.'), message: i.message })));
    return this.change(
      actor,
      id,
      expectedVersion,
      'check.patch',
      (current) => {
        const spec = specOf(current);
        const merged: Record<string, unknown> = redactCheckRecord({ ...spec } as Record<string, unknown>);
        for (const [k, v] of Object.entries(patch)) {
          if (v === null) delete merged[k];
          else Object.defineProperty(merged, k, { value: v, enumerable: true, writable: true, configurable: true });
        }
        // A timeout at its default follows a new interval, as it would have at creation: a check made without one
        // (10 s at a 10 s interval) refused an interval of 7 s for a timeout its owner never named.
        if (
          'intervalSeconds' in patch &&
          !('timeoutSeconds' in patch) &&
          spec.timeoutSeconds === defaultTimeoutFor(spec.intervalSeconds)
        )
          delete merged['timeoutSeconds'];
        const w = this.validateWrite(merged);
        const stored = patch['headers'] === null ? null : specOf(current);
        return withStoredSecrets(w.spec, w.marks, stored).spec;
      },
      request,
    );
  }

  async setPaused(
    actor: Actor,
    id: string,
    paused: boolean,
    expectedVersion?: number,
    request?: WriteRequest,
  ): Promise<R[ConfigRpcMethod.ChecksSetPaused]> {
    return this.change(
      actor,
      id,
      expectedVersion,
      paused ? 'check.pause' : 'check.resume',
      (current) => ({ ...specOf(current), paused }),
      request,
    );
  }

  async delete(
    actor: Actor,
    id: string,
    expectedVersion?: number,
    request?: WriteRequest,
  ): Promise<R[ConfigRpcMethod.ChecksDelete]> {
    return this.writer.write(
      actor,
      async ({ tx }): Promise<WriteOutcome<object>> => {
        const current = await this.current(tx, id, expectedVersion);
        await this.checks.deleteMany(tx, [id]);
        await this.monitors.follow(tx, { deleted: [current] });
        return {
          changed: true,
          result: {},
          summary: `delete check ${current.name}`,
          audit: [{ action: 'check.delete', subject: id, diff: checkDiff(specOf(current), null) }],
          touched: [{ id, before: specOf(current), after: null }],
        };
      },
      { request },
    );
  }

  /** One check's change: `next` builds the new spec from the current one (under the lock). */
  private async change(
    actor: Actor,
    id: string,
    expectedVersion: number | undefined,
    action: string,
    nextSpec: (current: CheckDefinition) => CheckSpec,
    request: WriteRequest | undefined,
  ): Promise<{ check: CheckView; version: number }> {
    const answer = await this.writer.write(
      actor,
      async ({ tx, next }): Promise<WriteOutcome<{ check: CheckView }>> => {
        const current = await this.current(tx, id, expectedVersion);
        const spec = nextSpec(current);
        if (spec.type !== current.type)
          throw invalid([{ path: 'type', message: 'a check cannot change type: create a new one' }]);
        const diff = checkDiff(specOf(current), spec);
        if (diff.length === 0) return { changed: false, result: { check: checkView(current) } };
        if (spec.name !== current.name) {
          const clash = await this.checks.namesTaken(tx, [spec.name]);
          if (clash.length) throw new ConflictError(`a check named ${JSON.stringify(spec.name)} already exists`);
        }
        const [check] = await this.checks.updateMany(tx, [checkWrite(id, spec)], next);
        await this.monitors.follow(tx, { changed: [check] });
        return {
          changed: true,
          result: { check: checkView(check) },
          summary: `${action.replace('check.', '')} check ${spec.name}`,
          audit: [{ action, subject: id, diff }],
          touched: [{ id, before: specOf(current), after: spec }],
        };
      },
      { request },
    );
    return { ...answer, check: viewOf(answer.check) };
  }

  /** The check as it is now (inside the writer's lock), or NotFound / VersionConflict. */
  private async current(tx: SqlTransaction, id: string, expectedVersion: number | undefined) {
    const current = await this.checks.findById(id, tx);
    if (!current) throw new NotFoundError(`check ${id} not found`);
    if (expectedVersion !== undefined && expectedVersion !== current.version)
      throw new VersionConflictError(
        `check ${id} is at version ${current.version}, not ${expectedVersion}: read it again`,
        current.version,
      );
    return current;
  }

  async get(id: string): Promise<R[ConfigRpcMethod.ChecksGet]> {
    const check = await this.checks.findById(id);
    if (!check) throw new NotFoundError(`check ${id} not found`);
    return { check: checkView(check) };
  }

  async list(q: ChecksListQuery): Promise<Page<CheckView>> {
    const after = q.cursor
      ? decodeCursor(
          q.cursor,
          // A name Postgres can hold (no NUL, no lone surrogate): a forged cursor is a 400, not a 500.
          (v): v is { n: string } =>
            typeof (v as { n?: unknown })?.n === 'string' && textProblem((v as { n: string }).n) === null,
        ).n
      : undefined;
    const rows = await this.checks.list({
      type: q.type,
      tag: q.tag,
      location: q.location,
      afterName: after,
      limit: q.limit + 1,
    });
    const items = rows.slice(0, q.limit);
    return {
      items: items.map(checkView),
      nextCursor: rows.length > q.limit ? encodeCursor({ n: items[items.length - 1].name }) : null,
    };
  }

  /**
   * What a collector at `location` runs: not paused, listing it or no location; with the version it belongs to.
   * With `known` (the version and hash the collector holds) still the head, only that it is current: the
   * assignment is a function of the configuration at a version, so nothing else needs reading or sending.
   */
  async assignment(location: string): Promise<AssignmentFull>;
  async assignment(
    location: string,
    known?: { version: number; hash: string },
  ): Promise<R[ConfigRpcMethod.AssignmentGet]>;
  async assignment(
    location: string,
    known?: { version: number; hash: string },
  ): Promise<R[ConfigRpcMethod.AssignmentGet]> {
    if (known) {
      const head = await this.versions.head();
      const hash = head.hash ?? EMPTY_CONFIG_HASH;
      if (head.version === known.version && hash === known.hash)
        return { version: head.version, hash, location, notModified: true };
    }
    const a = await this.checks.withHead(location);
    return { version: a.version, hash: a.hash ?? EMPTY_CONFIG_HASH, location, checks: a.checks };
  }

  async versionsList(limit: number, before?: number): Promise<R[ConfigRpcMethod.ConfigVersions]> {
    return { items: await this.versions.list(limit, before) };
  }

  /**
   * A version with its snapshot, rebuilt from the nearest full snapshot and the changes after it; credential
   * headers redacted (rows written before they were write-only hold their values).
   */
  async version(version: number): Promise<R[ConfigRpcMethod.ConfigVersion]> {
    const h = await this.versions.history(version);
    if (!h) throw new NotFoundError(`config version ${version} not found`);
    const snapshot: ConfigSnapshot = redactSnapshot(rebuild(h.rows as HistoryRow[]));
    return { ...h.summary, snapshot: snapshot as unknown as Record<string, unknown> };
  }

  async audit(q: { limit: number; cursor?: string; subject?: string }): Promise<Page<AuditEntry>> {
    const before = q.cursor
      ? decodeCursor(
          q.cursor,
          (v): v is { at: string; id: string } =>
            // A time Postgres takes as timestamptz (Date.parse also takes "1", year 0000 and six-digit years).
            storableDateTimeSchema.safeParse((v as { at?: unknown })?.at).success &&
            UUID.test(String((v as { id?: unknown })?.id)),
        )
      : undefined;
    const rows = await this.versions.audit({ limit: q.limit + 1, before, subject: q.subject });
    // Entries written before credential headers were write-only may hold their values.
    const items = rows.slice(0, q.limit).map((e) => ({ ...e, diff: redactAuditDiff(e.diff) }));
    const last = items[items.length - 1];
    return { items, nextCursor: rows.length > q.limit ? encodeCursor({ at: last.at, id: last.id }) : null };
  }
}

export function invalid(issues: ErrorIssue[]): InvalidError {
  const first = issues[0];
  return new InvalidError(
    `invalid check: ${first ? `${first.path ? `${first.path}: ` : ''}${first.message}` : 'rejected'}${
      issues.length > 1 ? ` (and ${issues.length - 1} more)` : ''
    }`,
    issues.slice(0, 200),
  );
}

/** A check of an answer (recorded or fresh) as answers show it: checkView of a stored check or of a view. */
const viewOf = (c: CheckView): CheckView => checkView(c as unknown as CheckDefinition);
