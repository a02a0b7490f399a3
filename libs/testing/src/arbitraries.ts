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
