import fc from 'fast-check';
import { firstInvalidUtf8, forbiddenKeyAt, nestingPastAt } from './json-body';

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

describe('firstInvalidUtf8', () => {
  const fatal = new TextDecoder('utf-8', { fatal: true });
  const valid = (b: Uint8Array) => {
    try {
      fatal.decode(b);
      return true;
    } catch {
      return false;
    }
  };

  it('names the first bad byte: a lone surrogate, an overlong form, a cut sequence, a stray continuation', () => {
    expect(firstInvalidUtf8(Buffer.from('{"a":"é😀"}'))).toBe(-1);
    expect(firstInvalidUtf8(Buffer.from([0x61, 0xed, 0xa0, 0x80]))).toBe(1);
    expect(firstInvalidUtf8(Buffer.from([0x61, 0x62, 0xc0, 0x80]))).toBe(2);
    expect(firstInvalidUtf8(Buffer.from([0x61, 0xe2, 0x82]))).toBe(1);
    expect(firstInvalidUtf8(Buffer.from([0x80]))).toBe(0);
    expect(firstInvalidUtf8(Buffer.from([0xf4, 0x90, 0x80, 0x80]))).toBe(0);
  });

  it('agrees with a fatal TextDecoder on any bytes', () => {
    const bytes = fc.oneof(
      fc.uint8Array({ maxLength: 12 }),
      fc.string({ unit: 'binary', maxLength: 6 }).map((s) => Buffer.from(s, 'utf8')),
    );
    fc.assert(
      fc.property(bytes, (b) => expect(firstInvalidUtf8(b) === -1).toBe(valid(b))),
      { numRuns: 20_000 },
    );
  });
});

describe('forbiddenKeyAt', () => {
  const both = { proto: true, constructor: true };

  it('names a refused key by its path, at any depth, in objects and arrays', () => {
    expect(forbiddenKeyAt(JSON.parse('{"labels":{"__proto__":"x"}}'), both)).toEqual({
      path: 'labels.__proto__',
      message: 'the key "__proto__" is not allowed',
    });
    expect(forbiddenKeyAt(JSON.parse('{"checks":[{"a":1},{"headers":{"__proto__":{}}}]}'), both)?.path).toBe(
      'checks.1.headers.__proto__',
    );
    expect(forbiddenKeyAt(JSON.parse('{"__proto__":1}'), both)?.path).toBe('__proto__');
    expect(forbiddenKeyAt(JSON.parse('{"value":{"constructor":{"prototype":{}}}}'), both)).toEqual({
      path: 'value.constructor',
      message: 'the key "constructor" holding a "prototype" key is not allowed',
    });
  });

  it('finds the key in a 1 MiB body of small objects (the path built only for the key found)', () => {
    const text = `[${Array.from({ length: 349_525 }, () => '{}').join(',')},{"__proto__":1}]`;
    expect(forbiddenKeyAt(JSON.parse(text), both)?.path).toBe('349525.__proto__');
  });

  it('finds nothing where Fastify refuses nothing', () => {
    expect(forbiddenKeyAt(JSON.parse('{"constructor":"x","proto":{"prototype":1},"s":"__proto__"}'), both)).toBeNull();
    expect(forbiddenKeyAt(JSON.parse('{"a":{"__proto__":1}}'), { proto: false, constructor: true })).toBeNull();
    expect(forbiddenKeyAt('__proto__', both)).toBeNull();
  });
});
