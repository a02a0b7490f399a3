import { Injectable } from '@nestjs/common';
import type { Actor, PropertyDefinition, PropertyValue } from '@fleetwatch/contracts';
import { NotFoundError } from '@fleetwatch/domain';
import { PropertiesRepository, type PropertyRecord, type SqlTransaction } from '@fleetwatch/persistence';
import { jsonDiff } from '../config/canonical-json';
import { VersionConflictError } from '../config/config.errors';
import { ConfigWriter, type WriteOutcome, type WriteRequest } from '../config/config-writer';
import { invalidProperty, keyIssues, MAX_PROPERTIES, parsePropertyWrite, propertyHash } from './property-forms';

// Site properties (issue 19, SPEC §2): every write validated by the contract, under the config lock,
// as a new config version with its content hash (properties take part in it), an audit entry with
// who and the diff, and a `config.changed` naming `properties` (ConfigWriter) — the path checks and
// alert rules take. A property's `version` is the config version that last wrote it: its ETag, and
// what If-Match compares (0 for a property that does not exist: "create only").

export function propertyAnswer(r: PropertyRecord): PropertyDefinition {
  return {
    key: r.key,
    value: r.value as PropertyValue,
    version: r.version,
    createdAt: r.createdAt,
    updatedAt: r.updatedAt,
  };
}

/** A change of a property, as the audit log records it (paths under `value`). */
const valueDiff = (before: PropertyRecord | null, after: PropertyValue | null) =>
  jsonDiff(before ? { value: before.value } : {}, after === null ? {} : { value: after });

@Injectable()
export class PropertiesService {
  constructor(
    private readonly writer: ConfigWriter,
    private readonly repo: PropertiesRepository,
  ) {}

  /** Creates or replaces `key`; the same value again is no change (no version). */
  async put(
    actor: Actor,
    key: unknown,
    body: unknown,
    expectedVersion?: number,
    request?: WriteRequest,
  ): Promise<{ property: PropertyDefinition; created: boolean; version: number }> {
    const input = parsePropertyWrite(key, body);
    return this.writer.write(
      actor,
      async ({ tx, next }): Promise<WriteOutcome<{ property: PropertyDefinition; created: boolean }>> => {
        const current = await this.current(tx, input.key, expectedVersion);
        const diff = valueDiff(current, input.value);
        if (current && diff.length === 0)
          return { changed: false, result: { property: propertyAnswer(current), created: false } };
        if (!current && (await this.repo.count(tx)) >= MAX_PROPERTIES)
          throw invalidProperty([{ path: 'key', message: `a site holds at most ${MAX_PROPERTIES} properties` }]);
        const [stored] = await this.repo.upsertMany(
          tx,
          [{ key: input.key, value: input.value, hash: propertyHash(input.key, input.value) }],
          next,
        );
        return {
          changed: true,
          result: { property: propertyAnswer(stored), created: current === null },
          summary: `${current ? 'change' : 'create'} property ${input.key}`,
          audit: [{ action: current ? 'property.replace' : 'property.create', subject: input.key, diff }],
          touched: [],
          propertyChanges: { [input.key]: { value: input.value } },
        };
      },
      { request },
    );
  }

  async delete(
    actor: Actor,
    key: unknown,
    expectedVersion?: number,
    request?: WriteRequest,
  ): Promise<{ version: number }> {
    const k = this.keyOf(key);
    return this.writer.write(
      actor,
      async ({ tx }): Promise<WriteOutcome<object>> => {
        const current = await this.current(tx, k, expectedVersion);
        if (!current) throw new NotFoundError(`property ${JSON.stringify(k)} not found`);
        await this.repo.deleteMany(tx, [k]);
        return {
          changed: true,
          result: {},
          summary: `delete property ${k}`,
          audit: [{ action: 'property.delete', subject: k, diff: valueDiff(current, null) }],
          touched: [],
          propertyChanges: { [k]: null },
        };
      },
      { request },
    );
  }

  async get(key: unknown): Promise<{ property: PropertyDefinition }> {
    const k = this.keyOf(key);
    const r = await this.repo.find(k);
    if (!r) throw new NotFoundError(`property ${JSON.stringify(k)} not found`);
    return { property: propertyAnswer(r) };
  }

  /** Every property (at most MAX_PROPERTIES), by key in byte order; `prefix` narrows to keys starting with it. */
  async list(q: { prefix?: string } = {}): Promise<{ items: PropertyDefinition[] }> {
    const all = await this.repo.all();
    const { prefix } = q;
    return { items: (prefix ? all.filter((r) => r.key.startsWith(prefix)) : all).map(propertyAnswer) };
  }

  private keyOf(key: unknown): string {
    const issues = keyIssues(key, 'key');
    if (issues.length) throw invalidProperty(issues);
    return key as string;
  }

  /** The property under the lock, checked against If-Match (0: must not exist). */
  private async current(
    tx: SqlTransaction,
    key: string,
    expectedVersion: number | undefined,
  ): Promise<PropertyRecord | null> {
    const current = await this.repo.find(key, tx);
    const at = current?.version ?? 0;
    if (expectedVersion !== undefined && expectedVersion !== at)
      throw new VersionConflictError(
        current
          ? `property ${JSON.stringify(key)} is at version ${at}, not ${expectedVersion}: read it again`
          : `property ${JSON.stringify(key)} does not exist (If-Match "${expectedVersion}"): read it again`,
        at,
      );
    return current;
  }
}
