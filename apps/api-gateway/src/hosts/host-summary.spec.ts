import type { HostMetricsPayload } from '@fleetwatch/contracts';
import { parseConflictMark, parseSample, summarizeSample } from './host-summary';

const sample = (extra: Partial<HostMetricsPayload> = {}): HostMetricsPayload => ({
  hostId: 'h',
  location: 'l',
  sampledAt: '2026-12-02T12:00:00.000Z',
  cpu: { usagePct: 50, cores: 2, load1: 0.5, load5: 0.4, load15: 0.3 },
  memory: { totalBytes: 100, usedBytes: 40 },
  disks: [],
  network: [],
  gpus: [],
  ...extra,
});
const gpu = (utilizationPct: number | null, temperatureC: number | null) => ({
  index: 0,
  name: 'g',
  utilizationPct,
  memoryUsedBytes: null,
  memoryTotalBytes: null,
  temperatureC,
  powerW: null,
});

describe('summarizeSample', () => {
  it.each([
    [
      'no disks, interfaces or GPUs',
      sample(),
      { diskUsedBytes: 0, networkRxBytesPerSec: null, gpuCount: 0, gpuMaxTemperatureC: null },
    ],
    [
      'sums disks and known rates; a null rate is unknown, not zero',
      sample({
        disks: [
          { mount: '/', totalBytes: 10, usedBytes: 4 },
          { mount: '/b', totalBytes: 20, usedBytes: 6 },
        ],
        network: [
          { iface: 'a', rxBytesPerSec: null, txBytesPerSec: 3 },
          { iface: 'b', rxBytesPerSec: null, txBytesPerSec: 4 },
        ],
      }),
      { diskUsedBytes: 10, diskTotalBytes: 30, networkRxBytesPerSec: null, networkTxBytesPerSec: 7 },
    ],
    [
      'saturates at the largest float instead of Infinity',
      sample({
        disks: [
          { mount: '/', totalBytes: Number.MAX_VALUE, usedBytes: Number.MAX_VALUE },
          { mount: '/b', totalBytes: Number.MAX_VALUE, usedBytes: 1 },
        ],
      }),
      { diskUsedBytes: Number.MAX_VALUE, diskTotalBytes: Number.MAX_VALUE },
    ],
    [
      'the hottest and busiest GPU; nulls ignored; negative temperatures kept',
      sample({ gpus: [gpu(null, -5), gpu(30, -10), gpu(80, null)] }),
      { gpuCount: 3, gpuMaxUtilizationPct: 80, gpuMaxTemperatureC: -5 },
    ],
    [
      'a collector that does not track lost GPUs (none ever seen, or an older one): gpusMissing null',
      sample(),
      { gpusMissing: null },
    ],
    ['every GPU there: gpusMissing 0', sample({ gpus: [gpu(10, 40)], missingGpus: [] }), { gpusMissing: 0 }],
    [
      'a GPU fallen off the bus: counted (it is no longer in gpus)',
      sample({
        gpus: [gpu(10, 40)],
        missingGpus: [{ index: 1, uuid: 'GPU-b', since: '2026-12-02T11:59:00.000Z', problem: 'GPU is lost' }],
      }),
      { gpuCount: 1, gpusMissing: 1 },
    ],
  ])('%s', (_name, s, expected) => {
    expect(summarizeSample(s)).toMatchObject(expected);
  });
});

describe('parseSample', () => {
  it.each([
    [null, false],
    ['', false],
    ['not json', false],
    ['"a string"', false],
    ['{"cpu":{}}', false],
    [JSON.stringify(sample()), true],
    // Shapes the list and /metrics would throw on (network or GPUs missing, a disk that is not one).
    [JSON.stringify({ ...sample(), network: undefined }), false],
    [JSON.stringify({ ...sample(), gpus: undefined }), false],
    [JSON.stringify({ ...sample(), disks: [null] }), false],
    [JSON.stringify({ cpu: { usagePct: 1 }, memory: {}, disks: [] }), false],
    // A raw row stored before the whole payload was kept (no host, location or time) is still a sample.
    [JSON.stringify({ ...sample(), hostId: undefined, location: undefined, sampledAt: undefined }), true],
  ])('%p → a sample: %p', (json, ok) => {
    expect(parseSample(json) !== null).toBe(ok);
  });
});

describe('the aggregator’s host-id conflict mark', () => {
  const since = '2026-12-07T07:00:00.000Z';
  const reporter = { installId: '0b8e5a4e-5d0c-4a8e-9a57-1f6a1b2c3d4e', bootId: 'b' };

  it('a mark an aggregator of before wrote into the sample is left out of it, never served', () => {
    const parsed = parseSample(JSON.stringify({ ...sample(), reporter, conflict: { reporters: 2, since } }));
    expect(parsed).not.toHaveProperty('conflict');
    expect(parsed?.reporter).toEqual(reporter);
    expect(parsed?.cpu).toEqual(sample().cpu);
  });

  it('the mark of its own key: reporters and since (its owner left out)', () => {
    expect(parseConflictMark(JSON.stringify({ reporters: 3, since, owner: 'x' }))).toEqual({ reporters: 3, since });
  });

  it.each([
    ['none', undefined],
    ['not JSON', '{'],
    ['not a mark', '"yes"'],
    ['one reporter', JSON.stringify({ reporters: 1, since })],
    ['no time', JSON.stringify({ reporters: 2, since: 'now' })],
  ])('%s → null', (_name, json) => {
    expect(parseConflictMark(json)).toBeNull();
  });
});
