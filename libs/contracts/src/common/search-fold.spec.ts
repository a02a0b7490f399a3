import fc from 'fast-check';
import { foldedIncludes, searchFold } from './search-fold';

describe('searchFold', () => {
  it.each([
    ['web-1.EXAMPLE', 'web-1.example'],
    ['Zürich', 'zurich'],
    ['ZÜRICH', 'zurich'],
    ['Zu\u0308rich', 'zurich'], // decomposed ü
    ['Straße', 'strasse'],
    ['STRASSE', 'strasse'],
    ['ﬁle', 'file'],
    ['ＡＢＣ', 'abc'],
    // Lower-casing picks the final sigma at a word's end, for both spellings alike.
    ['ΟΔΟΣ', 'οδος'],
    ['οδός', 'οδος'],
    ['İstanbul', 'istanbul'],
    ['Ångström', 'angstrom'],
  ])('%j → %j', (text, folded) => {
    expect(searchFold(text)).toBe(folded);
  });

  it('finds a host whatever the accents and case of either side', () => {
    expect(foldedIncludes('db-zürich-01', searchFold('ZURICH'))).toBe(true);
    expect(foldedIncludes('db-zurich-01', searchFold('Zürich'))).toBe(true);
    expect(foldedIncludes('Straßenbahn', searchFold('strassen'))).toBe(true);
    expect(foldedIncludes('db-geneva', searchFold('zurich'))).toBe(false);
  });

  it('is idempotent and never throws, lone surrogates included', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (s) => {
        const once = searchFold(s);
        expect(searchFold(once)).toBe(once);
        // A text always contains itself once both are folded.
        expect(foldedIncludes(s, once)).toBe(true);
      }),
    );
  });
});
