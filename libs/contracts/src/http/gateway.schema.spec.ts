import { InstanceKind, TargetKind, TargetStatus } from '../common/status';
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
    for (const query of [{ kind: 'vm' }, { kind: 'container,crate' }, { status: 'dead' }, { status: 'up,sideways' }]) {
      const parsed = listTargetsQuerySchema.safeParse(query);
      expect(parsed.success).toBe(false);
      expect(parsed.error?.issues[0].path[0]).toBe(Object.keys(query)[0]);
    }
  });

  it("kind takes a pushed instance's kind too (container, pod, process, service, job), in any case, mixed with the target kinds", () => {
    expect(listTargetsQuerySchema.parse({ kind: 'container' }).kind).toEqual([InstanceKind.Container]);
    expect(listTargetsQuerySchema.parse({ kind: 'POD, Process,service,job' }).kind).toEqual([
      InstanceKind.Pod,
      InstanceKind.Process,
      InstanceKind.Service,
      InstanceKind.Job,
    ]);
    expect(listTargetsQuerySchema.parse({ kind: 'check,Container,host' }).kind).toEqual([
      TargetKind.Check,
      InstanceKind.Container,
      TargetKind.Host,
    ]);
  });

  it('a kind that is none of them is refused with every value allowed named', () => {
    const parsed = listTargetsQuerySchema.safeParse({ kind: 'pod,vm' });
    expect(parsed.success).toBe(false);
    const issue = parsed.error?.issues[0];
    expect(issue?.path).toEqual(['kind', 1]);
    for (const allowed of ['check', 'host', 'instance', 'container', 'pod', 'process', 'service', 'job'])
      expect(issue?.message).toContain(`"${allowed}"`);
  });
});
