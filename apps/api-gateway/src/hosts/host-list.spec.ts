import { systemOf } from './host-list';

// What a search matches of a host's latest sample (its stored JSON): the sample's `system` as the contract takes it,
// or nothing. A corrupt or foreign value in Redis is no match, never a failed search.

describe('systemOf', () => {
  it('is the sample`s system as the contract takes it', () => {
    const system = { hostname: 'Lab-7.example', distro: 'Ubuntu', release: '24.04', arch: 'x86_64' };
    expect(systemOf(JSON.stringify({ hostId: 'h', cpu: { usagePct: 1 }, system }))).toEqual(system);
  });

  it.each([
    ['no system', '{"hostId":"h"}'],
    ['a system the contract refuses', '{"system":{"distro":42}}'],
    ['a system that is no object', '{"system":"ubuntu"}'],
    ['null', 'null'],
    ['an array', '[]'],
    ['unreadable JSON', '{not json ubuntu'],
  ])('%s: null', (_name, json) => {
    expect(systemOf(json)).toBeNull();
  });
});
