import { nestingPastAt } from './json-body';

describe('nestingPastAt', () => {
  it('counts arrays and objects, not brackets inside strings or after escaped quotes', () => {
    expect(nestingPastAt('{"a":[1,{"b":[]}]}', 4)).toBe(-1);
    expect(nestingPastAt('{"a":[1,{"b":[]}]}', 3)).toBe(13);
    expect(nestingPastAt('{"s":"[[[[{{{{"}', 1)).toBe(-1);
    expect(nestingPastAt('{"s":"\\"[[[[","t":"\\\\"}', 1)).toBe(-1);
    expect(nestingPastAt('{"s":"\\\\",  "t":[[]]}', 2)).toBe(17);
  });

  it('walks a million levels without recursion', () => {
    const text = '['.repeat(1_000_000) + ']'.repeat(1_000_000);
    expect(nestingPastAt(text, 64)).toBe(64);
    expect(nestingPastAt(text, 1_000_000)).toBe(-1);
  });
});
