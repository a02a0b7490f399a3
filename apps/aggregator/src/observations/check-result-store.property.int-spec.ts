import { randomUUID } from 'node:crypto';
import type { INestApplicationContext } from '@nestjs/common';
import fc from 'fast-check';
import {
  checkResultPayloadSchema,
  MAX_CHECK_LATENCY_MS,
  Messages,
  TargetIds,
  type CheckResultPayload,
} from '@fleetwatch/contracts';
import { LiveStateStore } from '@fleetwatch/live-state';
import { publishRequest } from '@fleetwatch/messaging';
import { canonicalJson, jsonValueArbitrary, storeHostileText, waitFor } from '@fleetwatch/testing';
import {
  createIsolatedTestSite,
  nonEmptyObservationQueues,
  startAggregator,
  type TestSite,
} from '../aggregator.int-helpers';

// "A 202 is a promise" for the collectors' check results, as a property: any check.result the contract accepts —
// failure reasons, check names, types and tags with NUL, lone surrogates, backslashes, emoji and at their length
// bounds, metadata of any JSON, latencies from 0 to the bound — published on the real bus to the running aggregator
// is stored in check_results equal to what was sent, becomes the target's live state (name, tags, type, the
// location's detail), and is acked: nothing is left in the observation queues or dead-lettered. Whatever the contract
// refuses is refused naming a field.

jest.setTimeout(300_000);

let site: TestSite;
let app: INestApplicationContext | undefined;
let store: LiveStateStore;

beforeAll(async () => {
  site = await createIsolatedTestSite('agg-check-result-prop', { AGGREGATOR_BATCH_WAIT_MS: '20' });
  app = await startAggregator(site.env);
  store = new LiveStateStore(site.redis, { keyPrefix: site.redisPrefix });
});
afterAll(async () => {
  await app?.close();
  await site?.dispose();
});

const text = storeHostileText;
/** Text near a length bound (as zod counts: UTF-16 code units), of the units that stores refuse or mangle too. */
const nearBound = (max: number) =>
  fc
    .tuple(fc.string({ minLength: max - 4, maxLength: max - 4 }), text(8))
    .map(([a, b]) => a + b)
    .filter((s) => s.length >= max - 2 && s.length <= max + 2);
const jsonish = jsonValueArbitrary({
  text: text(30),
  key: text(12),
  maxItems: 4,
  extra: [fc.constantFrom(Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, Number.NaN)],
});
const latency = fc.oneof(
  fc.constant(null),
  fc.double({ min: 0, max: MAX_CHECK_LATENCY_MS, noNaN: true }),
  fc.constantFrom(0, -0, Number.MIN_VALUE, MAX_CHECK_LATENCY_MS, MAX_CHECK_LATENCY_MS + 1, -1, Number.NaN),
);

const input = fc.record(
  {
    checkId: fc.oneof(text(40), nearBound(128)),
    location: fc.stringMatching(/^[a-z][a-z0-9-]{0,10}$/),
    ok: fc.boolean(),
    latencyMs: latency,
    failureReason: fc.oneof(text(200), nearBound(2048)),
    metadata: fc.dictionary(text(16), jsonish, { maxKeys: 6 }),
    checkName: fc.oneof(text(60), nearBound(256)),
    checkType: fc.oneof(fc.constantFrom('http', 'tcp', 'dns', 'tls', 'redis-stats'), text(34)),
    tags: fc.array(fc.oneof(text(20), nearBound(64)), { maxLength: 6 }),
    downQuorumPct: fc.integer({ min: 1, max: 100 }),
    retries: fc.integer({ min: 0, max: 10 }),
    timeoutSeconds: fc.double({ min: 0.001, max: 300, noNaN: true }),
  },
  { requiredKeys: ['checkId', 'location', 'ok', 'latencyMs'] },
);

const canonical = canonicalJson;

it('any check result the contract accepts is stored, made live state, and acked; a refusal names a field', async () => {
  const sent: CheckResultPayload[] = [];
  let refused = 0;
  await fc.assert(
    fc.asyncProperty(input, async (raw) => {
      // A unique suffix: every result is its own check's (one row, one target to read back).
      const checkId = `${raw.checkId.slice(0, 90)}~${randomUUID()}`;
      const payload = {
        ...raw,
        checkId,
        targetId: TargetIds.check(checkId),
        startedAt: new Date().toISOString(),
        intervalSeconds: 30,
      };
      const parsed = checkResultPayloadSchema.safeParse(payload);
      if (!parsed.success) {
        refused++;
        expect(parsed.error.issues.every((i) => i.path.length > 0)).toBe(true);
        return;
      }
      await site.bus.publisher.publishMany([publishRequest(Messages.CheckResult, parsed.data)]);
      sent.push(parsed.data);
    }),
    { numRuns: 200 },
  );
  expect(sent.length).toBeGreaterThan(20);
  expect(refused).toBeGreaterThan(20);

  for (const s of sent) {
    const row = await waitFor(
      async () =>
        (
          await site.pg.query<{
            check_id: string;
            location: string;
            ok: boolean;
            latency_ms: number | null;
            failure_reason: string | null;
            metadata: unknown;
          }>(
            'SELECT check_id, location, ok, latency_ms, failure_reason, metadata FROM check_results WHERE target_id = $1',
            [s.targetId],
          )
        ).rows[0],
      { timeoutMs: 60_000, description: `${JSON.stringify(s.targetId)} stored` },
    );
    expect(row.check_id).toBe(s.checkId);
    expect(row.location).toBe(s.location);
    expect(row.ok).toBe(s.ok);
    // JSON (the bus) writes -0 as 0.
    expect(row.latency_ms).toBe(s.latencyMs === null ? null : s.latencyMs + 0);
    expect(row.failure_reason).toBe(s.failureReason ?? null);
    expect(canonical(row.metadata)).toBe(canonical(s.metadata ?? null));

    const live = await waitFor(async () => store.getTarget(s.targetId), {
      timeoutMs: 30_000,
      description: `${JSON.stringify(s.targetId)} live`,
    });
    expect(live.name).toBe(s.checkName ?? s.checkId);
    expect(live.tags).toEqual(s.tags ?? []);
    expect(live.labels).toEqual(s.checkType ? { type: s.checkType } : {});
    expect(live.locations[s.location]?.detail ?? null).toBe(s.ok ? null : (s.failureReason ?? null));
  }

  // Acked: once the aggregator has stopped, nothing it took is back in a queue or dead-lettered.
  await app?.close();
  app = undefined;
  expect(await nonEmptyObservationQueues(site.vhost.amqpUrl)).toEqual([]);
});
