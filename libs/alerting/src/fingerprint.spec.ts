import { TargetStatus } from '@fleetwatch/contracts';
import { alertIdentity, fingerprintOf } from './rule';
import { ruleOf, targetOf } from './testing/fixtures';

describe('fingerprintOf', () => {
  it('is stable and independent of label order', () => {
    expect(fingerprintOf({ a: '1', b: '2' })).toBe(fingerprintOf({ b: '2', a: '1' }));
    expect(fingerprintOf({ a: '1', b: '2' })).toMatch(/^[0-9a-f]{16}$/);
  });

  it('tells apart label sets whose values hold ÿ (U+00FF) where the separator would be', () => {
    expect(fingerprintOf({ a: 'p', b: 'qÿbÿr' })).not.toBe(fingerprintOf({ a: 'pÿbÿq', b: 'r' }));
    expect(fingerprintOf({ a: 'xÿbÿy' })).not.toBe(fingerprintOf({ a: 'x', b: 'y' }));
  });

  it('gives two series of one rule on one target different identities (scraped values with ÿ)', () => {
    const rule = ruleOf('q', { name: 'Q', condition: { type: 'status', statuses: [TargetStatus.Down] }, channels: [] });
    const t = targetOf('t1');
    const one = alertIdentity(rule, t, { job: 'p', queue: 'qÿqueueÿr' });
    const two = alertIdentity(rule, t, { job: 'pÿqueueÿq', queue: 'r' });
    expect(one.key).not.toBe(two.key);
    expect(one.fingerprint).not.toBe(two.fingerprint);
  });
});
