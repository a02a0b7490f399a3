import { boundedJsonObject, labelsSchema, storableDateTimeSchema } from './safe-json';

describe('prototype-polluting keys', () => {
  const meta = boundedJsonObject({ maxDepth: 4, maxKeys: 50, maxBytes: 1000 });
  it.each([
    ['top-level __proto__', '{"__proto__":{"polluted":1}}'],
    ['nested __proto__', '{"a":{"__proto__":{"polluted":1}}}'],
    ['constructor', '{"constructor":{"prototype":{}}}'],
  ])('metadata refuses %s', (_name, json) => {
    const r = meta.safeParse(JSON.parse(json));
    expect(r.success).toBe(false);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
  it('labels refuse a top-level __proto__ and name it', () => {
    const r = labelsSchema.safeParse(JSON.parse('{"__proto__":"x","ok":"y"}'));
    expect(r.success).toBe(false);
    if (!r.success)
      expect(r.error.issues[0]).toMatchObject({ path: ['__proto__'], message: 'label "__proto__" is not allowed' });
  });
  it('accepts ordinary objects and keeps them', () => {
    expect(meta.parse({ a: { b: [1, 2] } })).toEqual({ a: { b: [1, 2] } });
    expect(labelsSchema.parse({ team: 'a' })).toEqual({ team: 'a' });
  });
  it.each([[[1]], ['x'], [null], [{ a: { b: { c: { d: { e: 1 } } } } }]])('metadata refuses %j', (v) =>
    expect(meta.safeParse(v).success).toBe(false),
  );
});

describe('storableDateTimeSchema: times Postgres takes as timestamptz', () => {
  it.each([
    '1970-01-01T00:00:00Z',
    '2026-12-04T13:00:00.123Z',
    '2026-12-04T13:00:00+14:00',
    '2026-12-04T13:00:00-15:59',
    '2026-12-04T13:00:00+15:59',
    '9999-12-31T23:59:59.999Z',
  ])('takes %s', (t) => expect(storableDateTimeSchema.safeParse(t).success).toBe(true));

  it.each([
    ['year 0000', '0000-01-01T00:00:00Z', 'must be between 1970 and 9999'],
    ['past 9999', '9999-12-31T23:59:59-01:00', 'must be between 1970 and 9999'],
    // zod takes offsets up to ±23:59; Postgres refuses a displacement past ±15:59 (22008: a 500 after validation).
    ['offset -16:00', '2026-12-04T13:00:00-16:00', 'the UTC offset must be within ±15:59'],
    ['offset +23:59', '2026-12-04T13:00:00+23:59', 'the UTC offset must be within ±15:59'],
  ])('refuses %s', (_what, t, message) => {
    const r = storableDateTimeSchema.safeParse(t);
    expect(r.success).toBe(false);
    expect(r.error?.issues.map((i) => i.message)).toContain(message);
  });
});

describe('depth: a level is an object or an array', () => {
  const meta = boundedJsonObject({ maxDepth: 8, maxKeys: 50, maxBytes: 1000 });
  const nested = (levels: number, leaf: unknown = 1): unknown => {
    let v: unknown = leaf;
    for (let i = 0; i < levels; i++) v = i % 2 && i < levels - 1 ? [v] : { k: v };
    return v;
  };
  it('takes 8 levels (the documented "≤ 8 levels"; the scalar inside is no level), refuses 9, naming the limit', () => {
    expect(meta.safeParse(nested(8)).success).toBe(true);
    expect(meta.safeParse(nested(8, 'x')).success).toBe(true);
    const r = meta.safeParse(nested(9));
    expect(r.success).toBe(false);
    expect(r.error?.issues[0]?.message).toMatch(/nested deeper than 8 levels/);
  });
});
