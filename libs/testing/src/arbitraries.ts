import fc from 'fast-check';

/**
 * One UTF-16 code unit or grapheme for "what we accept, we keep" properties, weighted toward what stores refuse or
 * mangle: NUL, both surrogate halves alone, backslashes and a literal "\u0000", quotes, line and paragraph
 * separators, a BOM, emoji — besides any grapheme and any code unit.
 */
export const storeHostileUnit: fc.Arbitrary<string> = fc.oneof(
  { weight: 6, arbitrary: fc.string({ unit: 'grapheme', minLength: 1, maxLength: 1 }) },
  { weight: 2, arbitrary: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)) },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      '\u0000',
      '\ud800',
      '\udfff',
      '\\',
      '\\u0000',
      '"',
      "'",
      '\n',
      '%',
      '😀',
      '\u2028',
      '\ufeff',
    ),
  },
);

/** Text of storeHostileUnit units, up to `maxLength` of them. */
export const storeHostileText = (maxLength: number): fc.Arbitrary<string> =>
  fc.string({ unit: storeHostileUnit, maxLength });

/**
 * Any JSON value (text, finite numbers, integers, booleans, null, arrays, objects), its strings and object keys drawn
 * from `text` and `key`, up to `maxItems` items or keys a level; `extra` adds values of its own (e.g. ±Infinity,
 * what JSON.parse makes of 1e400, for a schema that must refuse them).
 */
export function jsonValueArbitrary(options: {
  text: fc.Arbitrary<string>;
  key: fc.Arbitrary<string>;
  maxItems: number;
  extra?: ReadonlyArray<fc.Arbitrary<unknown>>;
}): fc.Arbitrary<unknown> {
  return fc.letrec((tie) => ({
    value: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      options.text,
      fc.double({ noNaN: true, noDefaultInfinity: true }),
      ...(options.extra ?? []),
      fc.integer(),
      fc.boolean(),
      fc.constant(null),
      fc.array(tie('value'), { maxLength: options.maxItems }),
      fc.dictionary(options.key, tie('value'), { maxKeys: options.maxItems }),
    ),
  })).value;
}

/** JSON with object keys sorted, for comparing what a store gives back (jsonb keeps no key order; -0 is 0 in JSON). */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) =>
    v !== null && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(
          Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
        )
      : v,
  );
}
