import { boundedJsonObject, labelsSchema } from './safe-json';

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
