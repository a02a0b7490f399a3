import fc from 'fast-check';
import { counterRate, cpuBusyPct, cpuUsage, diskRates, networkRates, type CpuTimes, type NetCounters } from './rates';

describe('counterRate', () => {
  it.each([
    ['first reading: unknown, not zero', undefined, 1000, 5000, null],
    ['steady counter', 1000, 6000, 5000, 1000],
    ['no traffic is a true zero', 1000, 1000, 5000, 0],
    ['sub-second interval', 0, 500, 250, 2000],
    ['counter reset (interface re-created): unknown', 9_000_000, 1200, 5000, null],
    ['32-bit wrap: unknown rather than a 4 GiB/s spike', 4_294_967_000, 200, 5000, null],
    ['no time passed', 1000, 2000, 0, null],
    ['clock went backwards', 1000, 2000, -5, null],
    ['NaN previous', Number.NaN, 2000, 1000, null],
    ['huge counters stay exact enough', 2 ** 52, 2 ** 52 + 5_000_000, 5000, 1_000_000],
  ])('%s', (_name, prev, cur, ms, expected) => {
    expect(counterRate(prev, cur, ms)).toBe(expected);
  });
});

const nic = (rx: number, tx: number, rxErr = 0, txErr = 0): NetCounters => ({
  rxBytes: rx,
  txBytes: tx,
  rxErrors: rxErr,
  txErrors: txErr,
});

describe('networkRates', () => {
  it('first sample: every interface has null rates (never zero)', () => {
    const out = networkRates(undefined, new Map([['eth0', nic(100, 200)]]), 0);
    expect(out).toEqual([
      { iface: 'eth0', rxBytesPerSec: null, txBytesPerSec: null, rxErrorsPerSec: null, txErrorsPerSec: null },
    ]);
  });

  it('later samples are numbers; a new interface is null until its second reading; a gone one is left out', () => {
    const prev = new Map([
      ['eth0', nic(1000, 2000, 1, 0)],
      ['veth9', nic(5, 5)],
    ]);
    const cur = new Map([
      ['eth0', nic(11_000, 2000, 3, 0)],
      ['wg0', nic(10, 10)],
    ]);
    expect(networkRates(prev, cur, 2000)).toEqual([
      { iface: 'eth0', rxBytesPerSec: 5000, txBytesPerSec: 0, rxErrorsPerSec: 1, txErrorsPerSec: 0 },
      { iface: 'wg0', rxBytesPerSec: null, txBytesPerSec: null, rxErrorsPerSec: null, txErrorsPerSec: null },
    ]);
  });

  it('a reset on one direction leaves the other direction a number', () => {
    const out = networkRates(new Map([['eth0', nic(5000, 100)]]), new Map([['eth0', nic(10, 600)]]), 1000);
    expect(out[0]).toMatchObject({ rxBytesPerSec: null, txBytesPerSec: 500 });
  });
});

describe('diskRates', () => {
  it.each([
    [
      'first reading',
      undefined,
      { readBytes: 10, writeBytes: 10 },
      5000,
      { readBytesPerSec: null, writeBytesPerSec: null },
    ],
    [
      'read and write',
      { readBytes: 0, writeBytes: 1024 },
      { readBytes: 4096, writeBytes: 1024 },
      4000,
      { readBytesPerSec: 1024, writeBytesPerSec: 0 },
    ],
    [
      'device re-attached (counters restart)',
      { readBytes: 1e9, writeBytes: 1e9 },
      { readBytes: 512, writeBytes: 1e9 + 5000 },
      5000,
      { readBytesPerSec: null, writeBytesPerSec: 1000 },
    ],
  ])('%s', (_name, prev, cur, ms, expected) => {
    expect(diskRates(prev, cur, ms)).toEqual(expected);
  });
});

const t = (user: number, idle: number, sys = 0, nice = 0, irq = 0): CpuTimes => ({ user, nice, sys, idle, irq });

describe('cpu usage', () => {
  it.each([
    ['half busy between readings', t(100, 100), t(150, 150), 50],
    ['idle between readings', t(100, 100), t(100, 200), 0],
    ['fully busy (user, sys, nice, irq)', t(0, 0), t(40, 0, 30, 20, 10), 100],
    ['first reading: the since-boot average', undefined, t(25, 75), 25],
    ['counters went back (hotplug): since-boot average', t(500, 500), t(10, 30), 25],
    ['no ticks at all', t(5, 5), t(5, 5), 0],
  ])('%s', (_name, prev, cur, expected) => {
    expect(cpuBusyPct(prev, cur)).toBeCloseTo(expected, 5);
  });

  it('per core and total; a core count change (hotplug) starts over from since-boot figures', () => {
    const prev = [t(0, 0), t(0, 0)];
    const cur = [t(100, 0), t(0, 100)];
    expect(cpuUsage(prev, cur)).toEqual({ totalPct: 50, perCorePct: [100, 0] });
    expect(cpuUsage([t(0, 0)], [t(30, 70), t(90, 10)])).toEqual({ totalPct: 60, perCorePct: [30, 90] });
  });
});

describe('rates are never negative, NaN or infinite', () => {
  const counter = fc.oneof(fc.double(), fc.nat(), fc.constant(2 ** 64), fc.constant(Number.NaN));
  it('property: counterRate is null or a finite non-negative number', () => {
    fc.assert(
      fc.property(fc.option(counter, { nil: undefined }), counter, fc.double(), (prev, cur, ms) => {
        const r = counterRate(prev, cur, ms);
        expect(r === null || (Number.isFinite(r) && r >= 0)).toBe(true);
      }),
    );
  });

  it('property: cpu busy percentage stays within 0–100', () => {
    const times = fc.record({ user: fc.nat(), nice: fc.nat(), sys: fc.nat(), idle: fc.nat(), irq: fc.nat() });
    fc.assert(
      fc.property(fc.option(times, { nil: undefined }), times, (prev, cur) => {
        const p = cpuBusyPct(prev, cur);
        expect(p >= 0 && p <= 100).toBe(true);
      }),
    );
  });
});
