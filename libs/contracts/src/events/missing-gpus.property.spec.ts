import fc from 'fast-check';
import { storeSafetyIssue } from '../common/store-safe';
import { hostMetricsPayloadSchema } from './observations.schema';

// "A 202 is a promise" (SPEC §6): a host sample the bus schema takes is stored whole — host_metrics.data (jsonb) and
// the live sample in Redis — so the `missingGpus` the schema accepts must be what those stores hold: no NUL, no lone
// surrogate (storeSafetyIssue is what jsonb refuses), finite numbers, at most 64 entries. Refused here, a bad list is
// the producer's error; accepted, it would fail the aggregator's write for the whole batch.

const missingGpus = hostMetricsPayloadSchema.shape.missingGpus;
const TEXT_FIELDS = ['uuid', 'name', 'busId', 'problem'] as const;

const text = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.constantFrom('\u0000', 'GPU-\u0000', '\ud800', 'a\udc00b', '\ud83d\ude00', 'GPU-1c9b7e45'),
);
const entry = fc.record(
  {
    index: fc.oneof(fc.nat(100), fc.constantFrom(-1, 1.5, 2 ** 53, Number.MAX_VALUE, Infinity, NaN)),
    uuid: text,
    name: text,
    busId: text,
    since: fc.constantFrom('2026-12-07T10:00:00.000Z', '+010000-01-01T00:00:00.000Z', 'yesterday'),
    problem: text,
  },
  { requiredKeys: ['index', 'uuid', 'since'] },
);

describe('host.metrics missingGpus: what the schema accepts, the stores hold', () => {
  it('property: an accepted list is store-safe and at most 64 long; one with a NUL or lone surrogate is refused', () => {
    fc.assert(
      fc.property(fc.array(entry, { maxLength: 70 }), (list) => {
        const r = missingGpus.safeParse(list);
        const unsafe = list.some((g) =>
          TEXT_FIELDS.some((k) => typeof g[k] === 'string' && storeSafetyIssue(g[k]) !== null),
        );
        if (unsafe) expect(r.success).toBe(false);
        if (!r.success) return;
        expect(storeSafetyIssue(r.data ?? [])).toBeNull();
        expect(r.data?.length ?? 0).toBeLessThanOrEqual(64);
        for (const g of r.data ?? []) {
          expect(Number.isSafeInteger(g.index) && g.index >= 0).toBe(true);
          expect(g.uuid.length).toBeGreaterThan(0);
        }
      }),
      { numRuns: 500 },
    );
  });

  it.each(TEXT_FIELDS)('a NUL or a lone surrogate in %s is refused, naming the field', (field) => {
    for (const bad of ['GPU-\u0000x', 'GPU-\ud800x']) {
      const r = missingGpus.safeParse([{ index: 0, uuid: 'GPU-1', since: '2026-12-07T10:00:00.000Z', [field]: bad }]);
      expect(r.success ? null : r.error.issues[0].path).toEqual([0, field]);
    }
  });
});
