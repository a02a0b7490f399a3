import fc from 'fast-check';
import { Redis } from 'ioredis';
import { Client } from 'pg';
import {
  buildEnvelope,
  InstanceKind,
  LIFECYCLE_STATES,
  Messages,
  parseMessage,
  statusChangedBatchEventSchema,
  statusUpdateInputSchema,
  statusUpdatePayloadSchema,
  uuidv7,
  type StatusUpdatePayload,
} from '@fleetwatch/contracts';
import { applyObservation } from '@fleetwatch/domain';
import { LiveStateStore } from '@fleetwatch/live-state';
import { createLogger } from '@fleetwatch/observability';
import {
  closeSqlPool,
  createSqlPool,
  HistoryRepository,
  CheckMetricsHistoryRepository,
  HostHistoryRepository,
  runInSqlTransaction,
  StatusEventsRepository,
  TargetStatesRepository,
  type SqlPool,
} from '@fleetwatch/persistence';
import {
  createIsolatedDatabase,
  testEnv,
  type IsolatedDatabase,
  storeHostileText,
  jsonValueArbitrary,
  canonicalJson,
} from '@fleetwatch/testing';
import type { AggregatorConfig } from '../config';
import { batchEventOf } from '../events/status-events.relay';
import { HostLiveState } from '../hosts/host-live-state.service';
import { LiveProjection } from '../live/live-projection.service';
import { mapEnvelope } from './observation.mapper';

// "What we accept, we keep" (issue 13), as a property: any update the edge's
// schema accepts travels the bus schema unchanged and is stored by the
// repositories — Postgres history and target state, Redis live state — and read
// back equal. Inputs are built from any UTF-16 code units (NUL, both surrogate
// halves, backslashes, literal "\u0000", emoji, any key), so the schema's refusals
// are exercised too: each one names a field.

jest.setTimeout(180_000);

let isolated: IsolatedDatabase;
let db: SqlPool;
let pg: Client;
let redis: Redis;
let store: LiveStateStore;
let history: HistoryRepository;
let states: TargetStatesRepository;
let events: StatusEventsRepository;
let projection: LiveProjection;
const prefix = `${testEnv().redisPrefix}roundtrip:`;

beforeAll(async () => {
  isolated = await createIsolatedDatabase();
  db = createSqlPool(isolated.databaseUrl, { max: 2 });
  pg = new Client({ connectionString: isolated.databaseUrl });
  await pg.connect();
  redis = new Redis(testEnv().redisUrl, { keyPrefix: prefix, lazyConnect: false });
  store = new LiveStateStore(redis, { keyPrefix: prefix });
  history = new HistoryRepository(db);
  states = new TargetStatesRepository(db);
  events = new StatusEventsRepository(db);
  const hosts = new HostLiveState(store, new HostHistoryRepository(db), {
    retention: { rawDays: 7 },
  } as AggregatorConfig);
  projection = new LiveProjection(
    store,
    states,
    hosts,
    new CheckMetricsHistoryRepository(db),
    createLogger('test', 'silent'),
  );
});
afterAll(async () => {
  if (redis) {
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length) await redis.unlink(...keys.map((k) => k.slice(prefix.length)));
    redis.disconnect();
  }
  await pg?.end();
  if (db) await closeSqlPool(db);
  await isolated?.dispose();
});

const text = storeHostileText;
const jsonish = jsonValueArbitrary({
  text: text(30),
  key: text(12),
  maxItems: 4,
  // What JSON.parse makes of 1e400: no store can keep it, so the schema must refuse it.
  extra: [fc.constantFrom(Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY)],
});

const input = fc.record(
  {
    instanceId: fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._:/@+=-]{0,40}$/),
    kind: fc.constantFrom(...Object.values(InstanceKind)),
    status: fc.constantFrom(...LIFECYCLE_STATES).chain((s) => fc.constantFrom(s, s.toUpperCase())),
    source: text(60),
    location: fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._-]{0,20}$/),
    labels: fc.dictionary(fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_./-]{0,20}$/), text(40), { maxKeys: 6 }),
    // Long ones too: a message near the limit makes a status change's reason (`location x: ` + it) longer than the
    // status.changed schema takes.
    message: fc.oneof(text(200), fc.string({ minLength: 1000, maxLength: 1100 })),
    metadata: fc.dictionary(text(16), jsonish, { maxKeys: 6 }),
  },
  { requiredKeys: ['instanceId', 'kind', 'status'] },
);

const canonical = canonicalJson;

it('any update the schema accepts is stored and read back equal (Postgres history, target state, Redis); any refusal names a field', async () => {
  let accepted = 0;
  let refused = 0;
  let clock = 0;
  await fc.assert(
    fc.asyncProperty(input, async (raw) => {
      const parsed = statusUpdateInputSchema.safeParse(raw);
      if (!parsed.success) {
        refused++;
        // A refusal names where: a path into the update, never the root alone.
        expect(parsed.error.issues.every((i) => i.path.length > 0)).toBe(true);
        return;
      }
      accepted++;
      const u = parsed.data;
      // Each update later than the one before (ids repeat as fast-check shrinks: a removal and the next update of
      // the same instance in one millisecond would leave it removed).
      clock = Math.max(Date.now(), clock + 1);
      const now = new Date(clock).toISOString();
      const payload: StatusUpdatePayload = {
        ...u,
        updateId: uuidv7(),
        occurredAt: now,
        receivedAt: now,
        apiKeyId: 'key-1',
      };
      // The bus accepts what the edge accepts, and the JSON trip over the wire changes nothing.
      expect(statusUpdatePayloadSchema.safeParse(payload).success).toBe(true);
      const wire = parseMessage(
        Buffer.from(
          JSON.stringify(
            buildEnvelope(Messages.StatusUpdate.type, 1, { site: 's', service: 'status-ingest' }, payload),
          ),
        ),
      );
      if (!wire.ok) throw new Error(`the bus refused an accepted update: ${wire.reason}`);
      expect(canonical(wire.value.payload)).toBe(canonical(payload));

      const [m] = mapEnvelope(wire.value, { staleAfterSeconds: 300 });
      if (m.type !== 'status') throw new Error(`mapped as ${m.type}`);
      const before = (await states.findMany([m.targetId]))[0];
      const folded = applyObservation(before, m.observation, { downQuorumPct: 100 });
      await runInSqlTransaction(db, async (tx) => {
        await history.insertStatusUpdates(tx, [m.row]);
        // As the commit path saves: against the state read before (a location the fold dropped goes).
        await states.saveMany(tx, [folded.target], [], before ? new Map([[before.id, before]]) : undefined);
        // Every event stored can be published as the relay publishes it from the commit: one the status.changed
        // schema refused was dropped from the outbox (its consensus change never reached alerts or subscriptions).
        for (const e of await events.insertMany(tx, folded.events)) {
          const publishable = statusChangedBatchEventSchema.safeParse(batchEventOf(e));
          if (!publishable.success)
            throw new Error(`a stored status event cannot be published: ${publishable.error.message}`);
        }
      });
      await projection.project(
        [folded.target],
        new Map([[m.targetId, before ? { status: before.status, tags: before.tags } : null]]),
      );

      const row = (
        await pg.query<{
          source: string | null;
          message: string | null;
          labels: unknown;
          metadata: unknown;
          instance_id: string;
          kind: string;
          lifecycle_status: string;
          location: string;
        }>(
          'SELECT source, message, labels, metadata, instance_id, kind, lifecycle_status, location FROM status_updates WHERE message_id = $1',
          [m.messageId],
        )
      ).rows[0];
      expect(row).toBeDefined();
      expect(row.source).toBe(u.source ?? null);
      expect(row.message).toBe(u.message ?? null);
      expect(canonical(row.labels)).toBe(canonical(u.labels ?? null));
      expect(canonical(row.metadata)).toBe(canonical(u.metadata ?? null));
      expect([row.instance_id, row.kind, row.lifecycle_status, row.location]).toEqual([
        u.instanceId,
        u.kind,
        u.status,
        u.location ?? 'push',
      ]);

      const saved = (await states.findMany([m.targetId]))[0];
      if (u.status === 'removed' && Object.keys(folded.target.locations).length > 0) {
        // Removed at one of the locations it reports from (an id repeated with another location): that one goes.
        expect(saved.deletedAt ?? null).toBeNull();
        expect(Object.keys(saved.locations).sort()).toEqual(Object.keys(folded.target.locations).sort());
        expect((await store.getTarget(m.targetId))?.locations[m.row.location]).toBeUndefined();
        return;
      }
      if (u.status === 'removed') {
        // Retired: its state kept as a tombstone in Postgres, nothing in Redis (its history row checked above).
        expect(saved.deletedAt).toBe(Date.parse(now));
        expect(await store.getTarget(m.targetId)).toBeNull();
        return;
      }
      expect(saved.deletedAt ?? null).toBeNull();
      expect(canonical(saved.labels)).toBe(canonical(folded.target.labels));
      expect(saved.tags).toEqual(folded.target.tags);
      expect(saved.lifecycle).toBe(u.status);
      const live = await store.getTarget(m.targetId);
      expect(live).not.toBeNull();
      expect(canonical(live?.labels)).toBe(canonical(folded.target.labels));
      expect(live?.tags).toEqual(folded.target.tags);
      expect(live?.status).toBe(folded.target.status);
      expect(live?.locations[m.row.location]?.detail ?? null).toBe(u.message ?? null);
    }),
    { numRuns: 300 },
  );
  // Both sides of the property were exercised.
  expect(accepted).toBeGreaterThan(50);
  expect(refused).toBeGreaterThan(20);
});
