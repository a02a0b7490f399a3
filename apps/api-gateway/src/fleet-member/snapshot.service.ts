import { createHash } from 'node:crypto';
import { Inject, Injectable, Optional } from '@nestjs/common';
import {
  ConfigRpcMethod,
  envNameSchema,
  isSecretName,
  REDACTED,
  SNAPSHOT_AREAS,
  type MemberSnapshotView,
  type SnapshotAreas,
  type SnapshotItem,
} from '@fleetwatch/contracts';
import { uniqueKeys } from '@fleetwatch/domain';
import { SERVICE_IDENTITY, type ServiceIdentity } from '@fleetwatch/observability';
import {
  AlertConfigRepository,
  PropertiesRepository,
  StatusPagesRepository,
  UsersRepository,
  type AlertConfigRecord,
} from '@fleetwatch/persistence';
import { ConfigOwner } from '../checks/config-owner.service';
import type { GatewayConfig } from '../config';
import { GATEWAY_CONFIG } from '../tokens';
import { componentVersions } from './component-versions';

/** How long one built snapshot is served (SPEC: cached 5 s). */
export const SNAPSHOT_CACHE_MS = 5_000;

// Fields whose values never leave the site in a snapshot, whatever area they sit in: contracts' SECRET_NAME, the one
// list — the same that makes an http check's headers write-only (`Authorization`, `Cookie`, `X-Api-Key`, …: the
// owner's config form already holds `{set: true}` for those; redacted here whatever a form holds).

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v);

/**
 * A check's field naming the collector's environment variable that holds a credential (`passwordEnv`,
 * `secretAccessKeyEnv`): the variable's name, never its value — content, compared like any other (redacted, a
 * changed variable was no drift).
 */
const ENV_NAME_FIELD = /[a-z]Env$/;
/** Holding what such a field may hold (envNameSchema): anything else in one is redacted as before. */
const isEnvName = (k: string, v: unknown): boolean => ENV_NAME_FIELD.test(k) && envNameSchema.safeParse(v).success;

/** The value with every secret-named field's value replaced by REDACTED (at any depth). */
export function redactSecrets(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(redactSecrets);
  if (!isPlainObject(value)) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value))
    // defineProperty: a member named `__proto__` (a property value may hold one) stays a member; `out[k] =`
    // would set the copy's prototype instead, dropping it from the snapshot and its hash.
    Object.defineProperty(out, k, {
      value:
        isSecretName(k) && !isEnvName(k, v) && v !== null && v !== undefined && v !== '' ? REDACTED : redactSecrets(v),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  return out;
}

/** JSON text with every object's keys sorted and no whitespace: the text the content hash is taken of. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? 'null' : canonicalJson(v))).join(',')}]`;
  if (isPlainObject(value)) {
    const keys = Object.keys(value)
      .filter((k) => value[k] !== undefined)
      .sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(value[k])}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/** A snapshot's ETag: its content hash, quoted (a leader sends it back as If-None-Match). */
export const snapshotEtag = (hash: string): string => `"${hash}"`;

/** Whether an If-None-Match header (a list of strong or weak tags, or `*`) names `etag`. */
export function etagMatches(ifNoneMatch: string | undefined, etag: string): boolean {
  if (!ifNoneMatch) return false;
  return ifNoneMatch.split(',').some((t) => {
    const tag = t.trim();
    return tag === '*' || tag === etag || tag === `W/${etag}`;
  });
}

/** An alert rule or channel keyed by its name (the same on every site; ids may differ). */
const byName = (r: AlertConfigRecord): SnapshotItem => {
  const { id: _id, ...spec } = r.spec;
  return { ...spec, key: typeof r.spec.name === 'string' ? r.spec.name : r.id };
};

/**
 * Areas sorted by key (made unique: uniqueKeys), secrets redacted, hashed: the same content gives the same hash on
 * every site.
 */
/**
 * Lists whose order means nothing, by area (dotted paths): sorted in the snapshot, so that `tags: [prod, eu]` on one
 * site and `[eu, prod]` on another are no drift. Lists whose order shows (a status page's components and targets, a
 * check's conditions) are left as written.
 */
const SET_FIELDS: Partial<Record<(typeof SNAPSHOT_AREAS)[number], readonly string[]>> = {
  checks: ['tags', 'locations', 'expectedStatus', 'expected'],
  alertRules: [
    'channels',
    'selector.targetIds',
    'selector.tags',
    'selector.sites',
    'selector.locations',
    'selector.kinds',
    'condition.statuses',
    'grouping.groupBy',
  ],
  channels: ['to'],
};

const byValue = (a: unknown, b: unknown): number => {
  const x = canonicalJson(a);
  const y = canonicalJson(b);
  return x < y ? -1 : x > y ? 1 : 0;
};

/** `item` with the lists at `paths` sorted (a copy along each path; other members as they were). */
function withSortedSets(item: SnapshotItem, paths: readonly string[] | undefined): SnapshotItem {
  if (!paths) return item;
  let out: Record<string, unknown> = item;
  for (const path of paths) {
    const steps = path.split('.');
    const sortAt = (node: unknown, i: number): unknown => {
      if (!isPlainObject(node) || !Object.hasOwn(node, steps[i])) return node;
      const child = node[steps[i]];
      const next =
        i === steps.length - 1 ? (Array.isArray(child) ? [...child].sort(byValue) : child) : sortAt(child, i + 1);
      return next === child ? node : { ...node, [steps[i]]: next };
    };
    out = sortAt(out, 0) as Record<string, unknown>;
  }
  return out as SnapshotItem;
}

/**
 * An alert rule's channels by name: a channel's id is made on each site (two sites configured alike hold other ids),
 * so a rule that names a channel read as drift on every member, for ever. An id no channel has stays an id.
 */
export function withChannelNames(rule: SnapshotItem, names: ReadonlyMap<string, string>): SnapshotItem {
  const channels = (rule as { channels?: unknown }).channels;
  if (!Array.isArray(channels)) return rule;
  return { ...rule, channels: channels.map((id) => (typeof id === 'string' ? (names.get(id) ?? id) : id)) };
}

/**
 * A property is `{key, value}`: its name is the key's, not a field's — `db.password` holds a password in `value`, which
 * the field-name rule (redactSecrets) never saw, and the member's credentials went to the leader's Redis and every
 * leader viewer.
 */
function redactProperty(area: (typeof SNAPSHOT_AREAS)[number], item: SnapshotItem): SnapshotItem {
  if (area !== 'properties' || !isSecretName(item.key)) return item;
  const v = (item as { value?: unknown }).value;
  return v === null || v === undefined || v === '' ? item : { ...item, value: REDACTED };
}

export function finishSnapshot(
  site: string,
  configVersion: number | null,
  areas: SnapshotAreas,
  now = Date.now(),
): MemberSnapshotView {
  const clean = {} as SnapshotAreas;
  for (const area of SNAPSHOT_AREAS)
    clean[area] = uniqueKeys(
      (areas[area] ?? []).map(
        (i) => redactSecrets(withSortedSets(redactProperty(area, i), SET_FIELDS[area])) as SnapshotItem,
      ),
    );
  return {
    schemaVersion: 1,
    site,
    generatedAt: new Date(now).toISOString(),
    hash: createHash('sha256').update(canonicalJson(clean), 'utf8').digest('hex'),
    configVersion,
    areas: clean,
  };
}

/**
 * The site's current config snapshot (SPEC §8), rebuilt at most every 5 s: checks from the
 * configuration owner's head version (its config form, by name), users and roles from the
 * users table (username and role only — never a hash), component versions from the
 * services, alert rules and channels from their tables (by name; channel secrets are sealed
 * apart and never read), status pages by slug, properties by key (`{key, value}`).
 */
@Injectable()
export class SnapshotService {
  private cached: { at: number; value: Promise<MemberSnapshotView> } | null = null;

  constructor(
    @Inject(GATEWAY_CONFIG) private readonly config: GatewayConfig,
    @Inject(SERVICE_IDENTITY) private readonly identity: ServiceIdentity,
    private readonly owner: ConfigOwner,
    private readonly users: UsersRepository,
    private readonly alerts: AlertConfigRepository,
    @Optional() @Inject(StatusPagesRepository) private readonly statusPages: StatusPagesRepository | null = null,
    @Optional() @Inject(PropertiesRepository) private readonly properties: PropertiesRepository | null = null,
  ) {}

  current(now = Date.now()): Promise<MemberSnapshotView> {
    if (this.cached && now - this.cached.at < SNAPSHOT_CACHE_MS) return this.cached.value;
    const value = this.build(now);
    this.cached = { at: now, value };
    // A failed build is not served from the cache.
    value.catch(() => {
      if (this.cached?.value === value) this.cached = null;
    });
    return value;
  }

  private async build(now: number): Promise<MemberSnapshotView> {
    const [checks, users, components, rules, channels, pages, properties] = await Promise.all([
      this.checks(),
      this.users.list(),
      componentVersions(this.identity, this.config.componentUrls),
      this.alerts.all('alertRules'),
      this.alerts.all('channels'),
      // Status pages by slug (a site has a handful; the first 1000).
      this.statusPages?.list({ limit: 1000 }) ?? [],
      this.properties?.all() ?? [],
    ]);
    const channelNames = new Map(channels.map((c) => [c.id, byName(c).key]));
    return finishSnapshot(
      this.config.site,
      checks.version,
      {
        checks: checks.items,
        alertRules: rules.map((r) => withChannelNames(byName(r), channelNames)),
        // Channel secrets are sealed outside the spec; any secret-named field left is redacted below.
        channels: channels.map(byName),
        // A secret-named field inside a value is redacted like anywhere else (finishSnapshot).
        properties: properties.map((p) => ({ key: p.key, value: p.value })),
        statusPages: pages.map((p) => ({ ...p.spec, key: p.slug })),
        usersAndRoles: users.map((u) => ({ key: u.username, role: u.role })),
        componentVersions: components.map((c) => ({ key: c.component, version: c.version })),
      },
      now,
    );
  }

  private async checks(): Promise<{ version: number; items: SnapshotItem[] }> {
    const head = await this.owner.call(ConfigRpcMethod.ConfigExport, {});
    if (head.version === 0) return { version: 0, items: [] };
    const v = await this.owner.call(ConfigRpcMethod.ConfigVersion, { version: head.version });
    const byName = (v.snapshot.checks ?? {}) as Record<string, Record<string, unknown>>;
    return { version: head.version, items: Object.entries(byName).map(([name, form]) => ({ ...form, key: name })) };
  }
}
