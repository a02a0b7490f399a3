import fc from 'fast-check';
import { hostSearchTexts, matchesHostSearch, type HostMetricsPayload } from '@fleetwatch/contracts';
import { sampleMatches } from './host-list';

// A search reads every host's latest sample; it looks at the raw JSON before parsing it. That shortcut must never
// turn a host away that the search takes (nor take one it would not): sampleMatches is matchesHostSearch on the
// sample's `system`, whatever the texts and the search.

type System = NonNullable<HostMetricsPayload['system']>;
const sample = (system: System | undefined) =>
  JSON.stringify({ hostId: 'h', cpu: { usagePct: 1 }, disks: [{ mount: '/srv/Ubuntu 24' }], system });

describe('sampleMatches', () => {
  it.each([
    ['ubuntu', true],
    ['UBUNTU 24.04', true], // distro and release: two fields, one search text
    ['24.04 ubuntu', false],
    ['lab-7.example', true],
    ['srv', false], // in the sample, not in what the host runs
    ['ubuntu 24', true],
    ['/srv', false],
    ['x86_64', true],
    ['ärm', false],
  ])('%j → %s', (q, expected) => {
    const json = sample({ hostname: 'Lab-7.example', distro: 'Ubuntu', release: '24.04', arch: 'x86_64' });
    expect(sampleMatches(json, q)).toBe(expected);
  });

  it('a sample without a valid system matches nothing (unreadable JSON neither)', () => {
    expect(sampleMatches(sample(undefined), 'ubuntu')).toBe(false);
    expect(sampleMatches('{"system":{"distro":42}}', '42')).toBe(false);
    expect(sampleMatches('{not json ubuntu', 'ubuntu')).toBe(false);
  });

  it('is matchesHostSearch on the parsed system, for any texts and any search', () => {
    const text = fc.string({ unit: fc.constantFrom(...'aZ09 ./"\\-_ÄßΣσςİı\u212a\n'.split('')), maxLength: 12 });
    const system = fc.record(
      { hostname: text, platform: text, distro: text, release: text, kernel: text, arch: text },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(system, fc.nat(), fc.nat(), fc.boolean(), text, (s, at, len, upper, other) => {
        // A search cut from one of its texts (often a match), or any text.
        const texts = hostSearchTexts({ id: '', name: '', system: s }).filter(Boolean);
        const from = texts[at % Math.max(texts.length, 1)] ?? '';
        const cut = from.slice(at % (from.length + 1), (at % (from.length + 1)) + (len % 8));
        const q = at % 4 === 0 ? other : upper ? cut.toUpperCase() : cut;
        expect(sampleMatches(sample(s), q)).toBe(matchesHostSearch({ id: '', name: '', system: s }, q));
      }),
      { numRuns: 3000 },
    );
  });
});
