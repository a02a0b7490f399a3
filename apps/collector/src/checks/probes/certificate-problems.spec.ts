import { certificateProblems } from './tls.probe';

// What a certificate's dates make of a check (tls always; http with certMinDaysLeft): expired, expiring, not valid
// yet — the last with five minutes of leeway for a collector whose clock is a little behind a fresh certificate's.

const now = Date.parse('2026-12-06T12:00:00.000Z');
const cert = (validFrom: string, daysLeft = 30) => ({
  daysLeft,
  subject: 'CN=a',
  issuer: 'CN=a',
  validFrom,
  validTo: '2027-01-05T12:00:00.000Z',
  authorized: false,
});
const problems = (validFrom: string, o: { minDaysLeft?: number } = { minDaysLeft: 0 }) =>
  certificateProblems(cert(validFrom), { verify: false, untrusted: null, minDaysLeft: o.minDaysLeft, now });

describe('certificateProblems: not valid yet', () => {
  it('a certificate valid from 10 minutes ahead is DOWN, naming when', () => {
    expect(problems('2026-12-06T12:10:00.000Z')).toEqual([
      'certificate not valid yet (valid from 2026-12-06T12:10:00.000Z)',
    ]);
  });

  it('one valid from 2 minutes ahead is within the leeway (a clock a little behind); one valid already, fine', () => {
    expect(problems('2026-12-06T12:02:00.000Z')).toEqual([]);
    expect(problems('2026-12-01T00:00:00.000Z')).toEqual([]);
  });

  it('an http check that does not look at its certificate (no certMinDaysLeft) does not care; an unreadable date neither', () => {
    expect(problems('2026-12-07T00:00:00.000Z', {})).toEqual([]);
    expect(problems('')).toEqual([]);
  });
});
