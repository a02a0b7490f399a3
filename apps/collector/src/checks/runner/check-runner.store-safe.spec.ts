import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import {
  checkInputSchema,
  checkResultPayloadSchema,
  MAX_CHECK_LATENCY_MS,
  TargetIds,
  type CheckDefinition,
} from '@fleetwatch/contracts';
import { createTargetPolicy } from '@fleetwatch/domain';
import { jsonValueArbitrary, storeHostileText } from '@fleetwatch/testing';
import type { Probe, ProbeOutcome } from '../probe';
import { CheckRunner } from './check-runner';

// "What we accept, we keep" starts at the producer: whatever a probe reports — any failure text (NUL, lone
// surrogates, 6,000 characters), any latency (NaN, ±Infinity, negative, 1.8e12 ms as ping reads a zeroed echo
// timestamp), any facts (odd keys, non-finite numbers, long DNS answers and certificate fields) — the runner's result
// is one the check.result contract accepts after the JSON trip. A result the contract refuses is discarded from the
// spool as unpublishable: the check would go silent at that location.

const text = storeHostileText;
const anyNumber = fc.oneof(
  fc.double(),
  fc.constantFrom(0, -0, Number.MIN_VALUE, Number.MAX_VALUE, -1, 1e9, 1e12, NaN, Infinity, -Infinity),
  // The contract's bound, on either side of it (fc.double() all but never lands there).
  fc.constantFrom(
    MAX_CHECK_LATENCY_MS,
    MAX_CHECK_LATENCY_MS + 1e-8,
    MAX_CHECK_LATENCY_MS - 1e-8,
    MAX_CHECK_LATENCY_MS + 1,
  ),
);
const anyValue = jsonValueArbitrary({
  text: text(40),
  key: text(12),
  maxItems: 3,
  extra: [anyNumber, fc.constant(undefined)],
});
const outcomeArb: fc.Arbitrary<ProbeOutcome> = fc.record(
  {
    ok: fc.boolean(),
    latencyMs: fc.oneof(fc.constant(null), anyNumber),
    failureReason: fc.oneof(text(100), fc.string({ unit: 'binary', minLength: 4000, maxLength: 6000 })),
    facts: fc.record(
      {
        status: anyNumber,
        cert: fc.record({
          daysLeft: anyNumber,
          subject: text(40),
          issuer: text(40),
          validFrom: text(40),
          validTo: fc.oneof(text(40), fc.string({ unit: 'binary', minLength: 100, maxLength: 300 })),
          authorized: fc.boolean(),
        }),
        answers: fc.array(fc.oneof(text(40), fc.string({ unit: 'binary', minLength: 250, maxLength: 400 })), {
          maxLength: 12,
        }),
        result: fc.dictionary(
          fc.oneof(text(12), fc.constantFrom('constructor', 'prototype', '__proto__', 'toString', 'a'.repeat(64))),
          anyValue,
          { maxKeys: 24 },
        ),
      },
      { requiredKeys: [] },
    ),
  },
  { requiredKeys: ['ok', 'latencyMs', 'facts'] },
) as fc.Arbitrary<ProbeOutcome>;

function definition(name: string): CheckDefinition {
  const id = randomUUID();
  return {
    ...checkInputSchema.parse({ name, type: 'tcp', host: '127.0.0.1', port: 9, intervalSeconds: 30 }),
    id,
    targetId: TargetIds.check(id),
    version: 1,
    createdAt: new Date().toISOString(),
    updatedAt: new Date().toISOString(),
  };
}

async function resultOf(outcome: ProbeOutcome) {
  const probe: Probe = async () => outcome;
  const r = new CheckRunner({
    probeFor: () => probe,
    policy: createTargetPolicy([]),
    env: {},
    location: 'loc-a',
    sink: () => undefined,
    logger: { warn: () => undefined, error: () => undefined },
  });
  return r.execute(definition('c'), { plannedAt: Date.now(), startedAt: Date.now() });
}

it('whatever a probe reports, the result is one the check.result contract accepts', async () => {
  await fc.assert(
    fc.asyncProperty(outcomeArb, async (outcome) => {
      const result = await resultOf(outcome);
      const parsed = checkResultPayloadSchema.safeParse(JSON.parse(JSON.stringify(result)));
      if (!parsed.success) throw new Error(parsed.error.message);
      // A latency the contract cannot carry is unknown, not the result lost; one it can is kept as the probe said.
      const l = outcome.latencyMs;
      expect(result.latencyMs).toBe(l !== null && l >= 0 && l <= MAX_CHECK_LATENCY_MS ? l : null);
    }),
    { numRuns: 300 },
  );
});

it("a latency at the contract's bound is kept, one just past it is unknown", async () => {
  const latencyOf = async (latencyMs: number) => (await resultOf({ ok: true, latencyMs, facts: {} })).latencyMs;
  expect(await latencyOf(MAX_CHECK_LATENCY_MS)).toBe(MAX_CHECK_LATENCY_MS);
  expect(await latencyOf(MAX_CHECK_LATENCY_MS - 1e-8)).toBe(MAX_CHECK_LATENCY_MS - 1e-8);
  expect(await latencyOf(MAX_CHECK_LATENCY_MS + 1e-8)).toBeNull();
  expect(await latencyOf(0)).toBe(0);
  expect(await latencyOf(-Number.MIN_VALUE)).toBeNull();
});
