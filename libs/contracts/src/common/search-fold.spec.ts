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
    // Every sigma alike, final or not.
    ['ΟΔΟΣ', 'οδοσ'],
    ['οδός', 'οδοσ'],
    ['θεσ', 'θεσ'],
    ['GROSSE STRAẞE', 'grosse strasse'],
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
    // A prefix typed as it would end a word (θεσ: final-sigma rules) still finds the longer name.
    expect(foldedIncludes('Θεσσαλονίκη-1', searchFold('θεσ'))).toBe(true);
    expect(foldedIncludes('GROSSE STRAẞE 1', searchFold('straße'))).toBe(true);
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
