import fc from 'fast-check';
import { InstanceKind, LIFECYCLE_STATES, statusUpdatePayloadSchema, type Envelope } from '@fleetwatch/contracts';
import { canonicalJson, createIsolatedVhost, storeHostileText, testEnv } from '@fleetwatch/testing';
import { errorOf, IngestHarness } from './int-spec.helpers';

// "A 202 is a promise", at the HTTP edge, as a property over the JSON *text* a client sends — what the value-level
// property (aggregator store-roundtrip) never sees: characters written as \u escapes (NUL, lone surrogates, halves of
// a pair, letters of a key), keys given twice, a byte-order mark, numbers written as 1e400, -0, 1E+2, 5e-324 or
// past 2^64, field names spelled with escapes, `__proto__` keys. Whatever is sent: a 202 or a 400 whose issues each
// name a field, never anything else; what a 202 accepted is on the bus as JSON read the text (the last of a repeated
// key), in a payload the aggregator's schema takes whole and every store can hold, one message per id answered.

jest.setTimeout(180_000);

let h: IngestHarness;
let key: string;

beforeAll(async () => {
  h = await IngestHarness.start(
    { vhost: await createIsolatedVhost('ingest-edge-property'), databaseUrl: testEnv().databaseUrl },
    { INGEST_RATE_LIMIT_PER_SECOND: '1000000', INGEST_RATE_LIMIT_BURST: '10000000' },
  );
  key = (await h.createKey(['ingest'])).key;
});
afterAll(() => h?.stop());

// ── JSON text, written the many ways JSON allows (and a few it does not) ──

type Json = null | boolean | number | string | RawNumber | Json[] | Pairs;
/** A number as written in the text (JSON.parse decides what it means). */
class RawNumber {
  constructor(readonly text: string) {}
}
/** An object as key/value pairs in order: a key may come twice. */
class Pairs {
  constructor(readonly pairs: Array<[string, Json]>) {}
}

/** A string literal; each character may be written as a \u escape (lone surrogates and NUL included). */
const stringLiteral = (s: string, escapes: boolean[]): string => {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const forced = c < 0x20 || c === 0x22 || c === 0x5c || (c >= 0xd800 && c <= 0xdfff);
    out +=
      forced || escapes[i % Math.max(1, escapes.length)] ? `\\u${c.toString(16).padStart(4, '0')}` : (s[i] as string);
  }
  return `${out}"`;
};

const write = (v: Json, escapes: boolean[]): string => {
  if (v instanceof RawNumber) return v.text;
  if (v instanceof Pairs)
    return `{${v.pairs.map(([k, x]) => `${stringLiteral(k, escapes)}:${write(x, escapes)}`).join(',')}}`;
  if (Array.isArray(v)) return `[${v.map((x) => write(x, escapes)).join(',')}]`;
  if (typeof v === 'string') return stringLiteral(v, escapes);
  return JSON.stringify(v);
};

const numberText = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.double({ noNaN: true, noDefaultInfinity: true }).map((n) => new RawNumber(JSON.stringify(n))),
  },
  {
    weight: 1,
    arbitrary: fc
      .constantFrom(
        '1e400',
        '-1e400',
        '-0',
        '-0.0',
        '1E+2',
        '5e-324',
        '2.2250738585072014e-308',
        '1e308',
        '18446744073709551617',
        '0.1e-400',
      )
      .map((t) => new RawNumber(t)),
  },
  { weight: 2, arbitrary: fc.integer().map((n) => new RawNumber(String(n))) },
);

/** Any UTF-16 (NUL, lone surrogates, escapes…): what stores refuse, now and then. */
const anyText = storeHostileText(24);
/** Text every store holds (graphemes: pairs whole, no NUL), most of the time; hostile text sometimes. */
const someText = (max: number) =>
  fc.oneof(
    { weight: 8, arbitrary: fc.string({ unit: 'grapheme', maxLength: max }) },
    { weight: 1, arbitrary: storeHostileText(max) },
  );
const anyKey = fc.oneof(
  { weight: 40, arbitrary: someText(8) },
  { weight: 1, arbitrary: fc.constantFrom('__proto__', 'constructor', 'prototype', 'toString', 'é', 'é') },
);
const jsonish: fc.Arbitrary<Json> = fc.letrec<{ value: Json }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    someText(24),
    numberText,
    fc.boolean(),
    fc.constant(null),
    fc.array(tie('value'), { maxLength: 3 }),
    fc.array(fc.tuple(anyKey, tie('value')), { maxLength: 4 }).map((pairs) => new Pairs(pairs)),
  ),
})).value;

const isoNearNow = fc
  .tuple(fc.integer({ min: -600_000, max: 60_000 }), fc.constantFrom('Z', '+00:00', '+05:30', '-23:59', '+2359'))
  .map(([offsetMs, zone]) => {
    const iso = new Date(Date.now() + offsetMs).toISOString();
    return zone === 'Z' ? iso : iso.replace('Z', zone);
  });

/** `arb` once in `n` times, else nothing. */
const rarely = <T>(arb: fc.Arbitrary<T>, n: number): fc.Arbitrary<T | null> =>
  fc.oneof({ weight: n - 1, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: arb });

/** Mostly what the contract takes, sometimes anything. */
const mostly = <T>(good: fc.Arbitrary<T>): fc.Arbitrary<T | string> =>
  fc.oneof({ weight: 12, arbitrary: good }, { weight: 1, arbitrary: anyText });

const fields = {
  instanceId: mostly(fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._:/@+=-]{0,20}$/)),
  kind: mostly(fc.constantFrom(...Object.values(InstanceKind))),
  status: mostly(fc.constantFrom(...LIFECYCLE_STATES).chain((s) => fc.constantFrom(s, s.toUpperCase()))),
  updateId: mostly(fc.uuid()),
  source: mostly(fc.string({ minLength: 1, maxLength: 12 })).chain((s) => fc.constantFrom(s, `${s}${s}`)),
  location: mostly(fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._-]{0,12}$/)),
  occurredAt: mostly(isoNearNow),
  labels: fc
    .array(fc.tuple(mostly(fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_./-]{0,12}$/)), someText(12)), { maxLength: 4 })
    .map((pairs) => new Pairs(pairs as Array<[string, Json]>)),
  message: someText(40),
  metadata: fc.array(fc.tuple(anyKey, jsonish), { maxLength: 3 }).map((pairs) => new Pairs(pairs)),
};
type Field = keyof typeof fields;
const FIELD_NAMES = Object.keys(fields) as Field[];

/**
 * One update as pairs in any order: the three required fields, some optional ones, now and then a field given
 * twice (JSON.parse keeps the later) or one the contract does not know.
 */
const updatePairs: fc.Arbitrary<Pairs> = fc
  .record(fields, { requiredKeys: ['instanceId', 'kind', 'status'] })
  .chain((r) =>
    fc
      .tuple(
        fc.shuffledSubarray(Object.keys(r), { minLength: Object.keys(r).length }),
        rarely(
          fc.constantFrom(...FIELD_NAMES).chain((f) => fields[f].map((v) => [f, v] as [string, Json])),
          3,
        ),
        rarely(fc.tuple(fc.constantFrom('__proto__', 'foo', 'constructor'), jsonish), 10),
        fc.nat(),
      )
      .map(([order, twice, extra, at]) => {
        const pairs: Array<[string, Json]> = order.map((k) => [k, (r as Record<string, Json>)[k] as Json]);
        if (twice) pairs.splice(at % (pairs.length + 1), 0, twice);
        if (extra) pairs.splice(at % (pairs.length + 1), 0, extra as [string, Json]);
        return new Pairs(pairs);
      }),
  );

const request = fc.record({
  updates: fc.array(updatePairs, { minLength: 1, maxLength: 2 }),
  batch: fc.boolean(),
  escapes: fc.array(fc.boolean(), { minLength: 1, maxLength: 5 }),
  bom: fc.boolean(),
});

/**
 * What no store downstream can hold, found without the code under test: NUL (text and jsonb refuse it), a lone
 * surrogate (jsonb refuses it, text reads back U+FFFD), a number JSON cannot write (jsonb would get null).
 */
function unstorable(value: unknown, path = '(payload)'): string | null {
  if (typeof value === 'number') return Number.isFinite(value) ? null : `${path}: ${value}`;
  if (typeof value === 'string')
    return value.includes('\u0000') || !value.isWellFormed() ? `${path}: ${JSON.stringify(value)}` : null;
  if (value === null || typeof value !== 'object') return null;
  for (const [k, v] of Object.entries(value)) {
    const bad = unstorable(k, `${path} key`) ?? unstorable(v, `${path}.${k}`);
    if (bad) return bad;
  }
  return null;
}

const FIELDS = ['instanceId', 'kind', 'source', 'location', 'occurredAt', 'labels', 'message', 'metadata'] as const;

it('answers 202 or a 400 naming fields; what it accepted is on the bus as the text says, storable, once per id', async () => {
  const seen = { accepted: 0, refused: 0 };
  await fc.assert(
    fc.asyncProperty(request, async ({ updates, batch, escapes, bom }) => {
      const root: Json = batch || updates.length > 1 ? new Pairs([['updates', updates]]) : (updates[0] as Pairs);
      const text = write(root, escapes);
      const body = Buffer.concat([Buffer.from(bom ? '\ufeff' : ''), Buffer.from(text, 'utf8')]);
      const res = await h.post(body, { key });
      expect([202, 400]).toContain(res.status);
      if (res.status === 400) {
        seen.refused++;
        const error = errorOf(res);
        expect(error.issues?.length).toBeGreaterThan(0);
        for (const issue of error.issues ?? []) {
          expect(issue.path.length).toBeGreaterThan(0);
          expect(issue.message.length).toBeGreaterThan(0);
        }
        expect(await h.count()).toBe(0);
        return;
      }
      seen.accepted++;
      const sent = JSON.parse(text) as Record<string, unknown>;
      const items = ('updates' in sent ? sent['updates'] : [sent]) as Record<string, unknown>[];
      const { ids } = res.json as { ids: string[] };
      expect(ids).toHaveLength(items.length);
      const onBus = new Map<string, Envelope>();
      for (const m of await h.drain()) {
        const p = m.envelope.payload as { updateId: string };
        expect(onBus.has(p.updateId)).toBe(false);
        onBus.set(p.updateId, m.envelope);
      }
      expect([...onBus.keys()].sort()).toEqual([...ids].sort());
      items.forEach((item, i) => {
        const payload = onBus.get(ids[i] as string)?.payload as Record<string, unknown>;
        expect(statusUpdatePayloadSchema.safeParse(payload).success).toBe(true);
        expect(unstorable(payload)).toBeNull();
        expect(payload['status']).toBe(String(item['status']).toLowerCase());
        for (const f of FIELDS) {
          if (item[f] === undefined) continue;
          expect(canonicalJson(payload[f])).toBe(canonicalJson(item[f]));
        }
      });
    }),
    { numRuns: 250 },
  );
  expect(seen.accepted).toBeGreaterThan(20);
  expect(seen.refused).toBeGreaterThan(20);
});
