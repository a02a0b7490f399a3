import { buildEnvelope } from '../bus/envelope.schema';
import { Messages } from '../bus/messages';
import { ingressCommandStamp, ingressStampTime, isNewerIngressStamp } from './ingress-order';

const source = { site: 's', service: 'sync-orchestrator' as const };
const command = (occurredAt: string, payload: Record<string, unknown> = {}, id?: string) =>
  buildEnvelope(Messages.IngressPause.type, 1, source, { reason: 'r', ...payload }, { occurredAt, id });

describe('ingress command ordering', () => {
  it('stamps by issue time (payload issuedAt over envelope occurredAt), then id, at a fixed width', () => {
    const env = command('2025-01-01T00:00:00.000Z', {}, '0190a000-0000-7000-8000-00000000000A');
    const stamp = ingressCommandStamp(env);
    expect(stamp).toBe(
      `${String(Date.parse('2025-01-01T00:00:00.000Z')).padStart(15, '0')}:0190a000-0000-7000-8000-00000000000a`,
    );
    expect(ingressStampTime(stamp)).toBe(Date.parse('2025-01-01T00:00:00.000Z'));
    const reissued = command('2025-06-01T00:00:00.000Z', { issuedAt: '2025-01-01T01:00:00+01:00' });
    expect(ingressStampTime(ingressCommandStamp(reissued))).toBe(Date.parse('2025-01-01T00:00:00.000Z'));
  });

  it('a newer command replaces, an older or the same one never does; nothing in force: anything applies', () => {
    const older = ingressCommandStamp(command('2025-01-01T00:00:00.000Z'));
    const newer = ingressCommandStamp(command('2025-01-01T00:00:00.001Z'));
    expect(isNewerIngressStamp(newer, older)).toBe(true);
    expect(isNewerIngressStamp(older, newer)).toBe(false);
    expect(isNewerIngressStamp(newer, newer)).toBe(false);
    expect(isNewerIngressStamp(older, null)).toBe(true);
    expect(isNewerIngressStamp(older, undefined)).toBe(true);
  });

  it('orders by time across digit counts (fixed width), and by id within one millisecond', () => {
    // 999 ms vs 1000 ms since the epoch: as plain numbers-as-text "999" > "1000"; padded they order right.
    const early = ingressCommandStamp(command('1970-01-01T00:00:00.999Z'));
    const late = ingressCommandStamp(command('1970-01-01T00:00:01.000Z'));
    expect(isNewerIngressStamp(late, early)).toBe(true);
    const at = '2025-01-01T00:00:00.000Z';
    const a = ingressCommandStamp(command(at, {}, '0190a000-0000-7000-8000-000000000001'));
    const b = ingressCommandStamp(command(at, {}, '0190a000-0000-7000-8000-000000000002'));
    expect(isNewerIngressStamp(b, a)).toBe(true);
    expect(isNewerIngressStamp(a, b)).toBe(false);
  });

  it('the schema keeps accepting payloads without issuedAt and refuses a malformed one', () => {
    expect(Messages.IngressResume.payload.safeParse({ reason: 'done' }).success).toBe(true);
    expect(Messages.IngressPause.payload.safeParse({ reason: 'x', issuedAt: '2025-01-01T00:00:00.000Z' }).success).toBe(
      true,
    );
    expect(Messages.IngressPause.payload.safeParse({ reason: 'x', issuedAt: 'yesterday' }).success).toBe(false);
  });
});
