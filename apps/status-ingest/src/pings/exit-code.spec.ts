import { exitCodeOf, signalOfExitCode } from './pings.service';

// `/ping/{token}/{code}` (Healthchecks style: `curl …/ping/$TOKEN/$?`): the last segment is an exit code 0–255 in
// decimal, or no ping URL at all (404).
describe('exitCodeOf', () => {
  it.each([
    ['0', 0],
    ['1', 1],
    ['7', 7],
    ['255', 255],
    ['007', 7],
  ])('%s → %s', (segment, code) => {
    expect(exitCodeOf(segment)).toBe(code);
  });

  it.each(['256', '999', '1000', '-1', '+1', '01x', '1e2', '0x1', '1.0', ' 1', '1 ', '', 'start', '٣'])(
    '%j is no exit code',
    (segment) => {
      expect(exitCodeOf(segment)).toBeNull();
    },
  );
});

describe('signalOfExitCode', () => {
  it('0 is a success, 1–255 a fail', () => {
    expect(signalOfExitCode(0)).toBe('success');
    for (const code of [1, 2, 127, 255]) expect(signalOfExitCode(code)).toBe('fail');
  });
});
