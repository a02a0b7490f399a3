import { buildEnvelope, Messages, type IngressControlPayload } from '@fleetwatch/contracts';
import { loadIngestConfig } from '../config';
import { ingressRecordOf } from './ingress-command';
import { IngressPausedError, IngressStateService } from './ingress-state.service';

const config = loadIngestConfig({
  DATABASE_URL: 'postgresql://u@127.0.0.1:5432/db',
  AMQP_URL: 'amqp://127.0.0.1:5672',
  INGEST_RETRY_AFTER_SECONDS: '7',
});
const source = { site: 's', service: 'sync-orchestrator' as const };
const t0 = Date.parse('2025-01-01T00:00:00.000Z');

function command(type: 'pause' | 'resume', at: number, payload: Partial<IngressControlPayload> = {}) {
  const def = type === 'pause' ? Messages.IngressPause : Messages.IngressResume;
  const record = ingressRecordOf(
    buildEnvelope(def.type, 1, source, { reason: type, ...payload }, { occurredAt: new Date(at) }),
  );
  if (!record) throw new Error('not an ingress command');
  return record;
}

describe('IngressStateService (this replica`s copy of the ingress record)', () => {
  it('pauses with 503 + Retry-After and resumes', () => {
    const s = new IngressStateService(config);
    expect(() => s.assertOpen(t0)).not.toThrow();
    expect(s.adopt(command('pause', t0))).toBe(true);
    let refusal: unknown;
    try {
      s.assertOpen(t0 + 10);
    } catch (e) {
      refusal = e;
    }
    expect(refusal).toBeInstanceOf(IngressPausedError);
    expect(refusal).toMatchObject({ retryAfterSeconds: 7, message: expect.stringMatching(/paused \(pause\)/) });
    expect(s.adopt(command('resume', t0 + 1))).toBe(true);
    expect(() => s.assertOpen(t0 + 10)).not.toThrow();
  });

  it('an older command, redelivered or late, never undoes a newer one; the same one is not taken twice', () => {
    const s = new IngressStateService(config);
    const pause = command('pause', t0);
    const resume = command('resume', t0 + 1000);
    expect(s.adopt(resume)).toBe(true);
    expect(s.adopt(pause)).toBe(false);
    expect(s.current(t0 + 2000)).toBeNull();
    expect(s.adopt(resume)).toBe(false);
    // And the other way round: a newer pause stays through an older resume.
    const t = new IngressStateService(config);
    t.adopt(command('pause', t0 + 5000));
    expect(t.adopt(command('resume', t0 + 4000))).toBe(false);
    expect(() => t.assertOpen(t0 + 6000)).toThrow(IngressPausedError);
  });

  it('a pause with `until` ends by itself and says how long is left; resume ignores `until`', () => {
    const s = new IngressStateService(config);
    s.adopt(command('pause', t0, { until: new Date(t0 + 3500).toISOString() }));
    expect(() => s.assertOpen(t0 + 1000)).toThrow(expect.objectContaining({ retryAfterSeconds: 3 }));
    expect(() => s.assertOpen(t0 + 3500)).not.toThrow();
    expect(s.current(t0 + 3500)).toBeNull();
    expect(command('resume', t0, { until: new Date(t0 + 1).toISOString() }).until).toBeNull();
  });

  it('ingressRecordOf keeps the operation and refuses what is not an ingress command', () => {
    const r = command('pause', t0, { operationId: 'op-1' });
    expect(r).toMatchObject({ paused: true, reason: 'pause', operationId: 'op-1', until: null });
    expect(r.stamp.startsWith(String(t0).padStart(15, '0'))).toBe(true);
    expect(ingressRecordOf(buildEnvelope('sync.step', 1, source, { reason: 'x' }))).toBeNull();
  });
});
