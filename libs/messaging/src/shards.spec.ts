import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { OBSERVATION_SHARDS } from '@fleetwatch/contracts';
import { shardOf, shardOfMessage, splitByShard } from './shards';
import { InvalidMessageError } from './errors';

/** The definition shardOf must keep (Postgres's shardSqlExpression computes the same from md5). */
function referenceShard(key: string, shards: number): number {
  const hex = createHash('md5').update(key, 'utf8').digest('hex');
  return Number.parseInt(hex.slice(0, 7), 16) % shards;
}

/**
 * Any code point, or a lone surrogate: `unit: 'binary'` alone never yields an unpaired surrogate (it draws
 * whole code points), and those are what an encoder most easily gets wrong.
 */
const codePointOrLoneSurrogate = fc.oneof(
  fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }),
  fc.integer({ min: 0xd800, max: 0xdfff }).map((unit) => String.fromCharCode(unit)),
);

describe('shardOf', () => {
  it('is the first 28 bits of the UTF-8 MD5 modulo the shard count, for any string (lone surrogates included)', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: codePointOrLoneSurrogate, maxLength: 300 }),
        fc.integer({ min: 1, max: 64 }),
        (key, shards) => {
          const shard = shardOf(key, shards);
          expect(shard).toBe(referenceShard(key, shards));
          expect(shard).toBeGreaterThanOrEqual(0);
          expect(shard).toBeLessThan(shards);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('keeps the values of known ids (a change would move every target to another queue)', () => {
    // The first 7 hex digits of each id's MD5, written down once: shardOf must keep giving them.
    expect(shardOf('', 1 << 28)).toBe(0xd41d8cd);
    expect(shardOf('instance:a', 1 << 28)).toBe(0x3c47925);
    expect(shardOf('check:00000000-0000-0000-0000-000000000001', 1 << 28)).toBe(0x9747087);
    expect(shardOf('\u{1F600}é', 1 << 28)).toBe(0xcc2e275);
    // An unpaired surrogate hashes as U+FFFD (EF BF BD), which is what Postgres stores for it via pg.
    expect(shardOf('a\ud800b', 1 << 28)).toBe(0xff64050);
    expect(shardOf('\udc00', 1 << 28)).toBe(0x9b75904);
    expect(shardOf('instance:a')).toBe(0x3c47925 % OBSERVATION_SHARDS);
  });
});

describe('shardOf without the one-shot crypto.hash (Node < 20.12)', () => {
  it('gives the same shards through createHash', () => {
    let fallback: typeof shardOf | undefined;
    jest.isolateModules(() => {
      jest.doMock('node:crypto', () => ({ ...jest.requireActual<object>('node:crypto'), hash: undefined }));
      fallback = (jest.requireActual('./shards') as { shardOf: typeof shardOf }).shardOf;
    });
    jest.dontMock('node:crypto');
    if (fallback === undefined) throw new Error('shards did not load');
    const viaCreateHash = fallback;
    fc.assert(
      fc.property(fc.string({ unit: codePointOrLoneSurrogate, maxLength: 100 }), (key) => {
        expect(viaCreateHash(key, 1 << 28)).toBe(referenceShard(key, 1 << 28));
      }),
      { numRuns: 300 },
    );
    expect(viaCreateHash('instance:a', 1 << 28)).toBe(0x3c47925);
  });
});

describe('splitByShard / shardOfMessage', () => {
  it('groups by shard, keeping order within each', () => {
    const keys = Array.from({ length: 200 }, (_, i) => `instance:k${i}`);
    const groups = splitByShard(keys, (k) => k);
    expect([...groups.values()].flat().sort()).toEqual([...keys].sort());
    for (const [shard, list] of groups) {
      for (const k of list) expect(shardOf(k)).toBe(shard);
      expect(list).toEqual(keys.filter((k) => shardOf(k) === shard));
    }
  });

  it('refuses a message whose keys span shards', () => {
    const keys = Array.from({ length: 50 }, (_, i) => `instance:k${i}`);
    const definition = { type: 'test.sharded', shardKeys: (p: { keys: string[] }) => p.keys } as never;
    expect(() => shardOfMessage(definition, { keys })).toThrow(InvalidMessageError);
    const one = keys.filter((k) => shardOf(k) === shardOf(keys[0]));
    expect(shardOfMessage(definition, { keys: one })).toBe(shardOf(keys[0]));
  });
});
