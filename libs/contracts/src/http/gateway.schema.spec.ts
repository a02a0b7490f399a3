import { TargetKind, TargetStatus } from '../common/status';
import { listTargetsQuerySchema } from './gateway.schema';

describe('listTargetsQuerySchema (GET /api/v1/targets filters, SPEC §11)', () => {
  it('reads kind and status in any case, comma-separated', () => {
    expect(listTargetsQuerySchema.parse({ kind: 'Check, INSTANCE', status: 'down,Partial, up' })).toMatchObject({
      kind: [TargetKind.Check, TargetKind.Instance],
      status: [TargetStatus.Down, TargetStatus.Partial, TargetStatus.Up],
    });
    expect(listTargetsQuerySchema.parse({ status: 'STALE' }).status).toEqual([TargetStatus.Stale]);
  });

  it('refuses a value that is none of them, naming the field', () => {
    for (const query of [{ kind: 'container' }, { status: 'dead' }, { status: 'up,sideways' }]) {
      const parsed = listTargetsQuerySchema.safeParse(query);
      expect(parsed.success).toBe(false);
      expect(parsed.error?.issues[0].path[0]).toBe(Object.keys(query)[0]);
    }
  });
});
