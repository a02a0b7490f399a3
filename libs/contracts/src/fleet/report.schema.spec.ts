import { TargetStatus } from '../common/status';
import { memberReportSchema } from './report.schema';

// The leader parses its members' reports with this schema, leniently: a member of another version (a status this
// side does not know, one it does not report) or one odd figure must cost only that figure, never the others.

const report = (status: unknown) => ({
  site: 'eu-1',
  role: 'member',
  generatedAt: '2026-12-04T12:00:00.000Z',
  status,
  errors: null,
  broker: null,
  brokerError: null,
  hosts: null,
  flow: null,
  components: [],
});

describe('memberReportSchema status counts', () => {
  it('keeps every count of a report with all statuses', () => {
    const all = Object.fromEntries(Object.values(TargetStatus).map((s, i) => [s, i + 1]));
    expect(memberReportSchema.parse(report(all)).status).toEqual(all);
  });

  it('keeps the counts a member of an older version reports when it lacks a status', () => {
    expect(memberReportSchema.parse(report({ UP: 7, DOWN: 2 })).status).toEqual({ UP: 7, DOWN: 2 });
  });

  it('drops only a status this side does not know (a newer member) and keeps the rest', () => {
    expect(memberReportSchema.parse(report({ UP: 7, DOWN: 2, MAINTENANCE: 3 })).status).toEqual({ UP: 7, DOWN: 2 });
  });

  it('drops only a count that is not a count', () => {
    expect(memberReportSchema.parse(report({ UP: -1, DOWN: 2, STALE: 1.5, PARTIAL: '3' })).status).toEqual({ DOWN: 2 });
  });

  it('takes a status block that is not an object as no counts', () => {
    expect(memberReportSchema.parse(report([1, 2])).status).toEqual({});
    expect(memberReportSchema.parse(report(null)).status).toEqual({});
  });

  it('does not let a __proto__ key reach the counts object', () => {
    const parsed = memberReportSchema.parse(report(JSON.parse('{"__proto__":{"UP":5},"DOWN":1}'))).status;
    expect(parsed).toEqual({ DOWN: 1 });
    expect(Object.getPrototypeOf(parsed)).toBe(Object.prototype);
  });
});
