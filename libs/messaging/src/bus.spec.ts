import { readinessReasonOf } from '@fleetwatch/observability';
import { busReadinessCheck } from './bus';

// What /readyz shows of the bus is observability's category word, read from the error's `readinessReason`; the
// error's text (the broker's host, its alarm) is only logged.
describe('busReadinessCheck', () => {
  const subject = (over: Partial<Parameters<typeof busReadinessCheck>[0]> = {}) =>
    ({
      isConnected: () => true,
      state: 'connected',
      lastError: undefined,
      blocked: undefined,
      ...over,
    }) as Parameters<typeof busReadinessCheck>[0];
  const failure = (check: () => void): unknown => {
    try {
      check();
    } catch (e) {
      return e;
    }
    return undefined;
  };

  it('passes while connected and not blocked', () => {
    expect(failure(busReadinessCheck(subject()).check)).toBeUndefined();
  });

  it('a blocked broker is `blocked`; the alarm stays in the message for the log', () => {
    const e = failure(busReadinessCheck(subject({ blocked: 'low on memory' })).check);
    expect(e).toMatchObject({ message: expect.stringMatching(/resource alarm: low on memory/) });
    expect(readinessReasonOf(e)).toBe('blocked');
  });

  it('a lost connection is `unreachable`, whatever its last error said', () => {
    const e = failure(
      busReadinessCheck(
        subject({
          isConnected: () => false,
          state: 'connecting',
          lastError: new Error('connect ECONNREFUSED rabbit-0.internal:5672'),
        }),
      ).check,
    );
    expect(e).toMatchObject({ message: expect.stringMatching(/rabbit-0\.internal/) });
    expect(readinessReasonOf(e)).toBe('unreachable');
  });
});
