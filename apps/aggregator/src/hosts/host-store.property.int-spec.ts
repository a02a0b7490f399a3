import type { INestApplicationContext } from '@nestjs/common';
import { connect, type ChannelModel } from 'amqplib';
import fc from 'fast-check';
import {
  deadLetterQueueOf,
  hostMetricsPayloadSchema,
  Messages,
  OBSERVATION_SHARDS,
  observationShardQueue,
  textProblem,
  uuidv7,
  type HostMetricsPayload,
} from '@fleetwatch/contracts';
import { LiveStateStore } from '@fleetwatch/live-state';
import { publishRequest } from '@fleetwatch/messaging';
import { waitFor } from '@fleetwatch/testing';
import { createIsolatedTestSite, startAggregator, type TestSite } from '../aggregator.int-helpers';
import { HistoryMaintenance } from '../history/history-maintenance.service';

// "What we accept, we keep", for host metrics (issue 16), as a property: whatever host.metrics
// sample the contract accepts — extreme numbers, odd mount and interface names, any NUL-free
// well-formed Unicode, arrays at their maximum sizes — published on the real bus is stored
// (raw row equal to the sample, latest sample in live state), rolled up, and acked: nothing
// is dead-lettered because a store refused it.

jest.setTimeout(300_000);

let site: TestSite;
let app: INestApplicationContext;
let store: LiveStateStore;
let amqp: ChannelModel;

beforeAll(async () => {
  const name = 'agg-host-prop';
  site = await createIsolatedTestSite(name, { AGGREGATOR_ROLLUP_INTERVAL_MS: '500', AGGREGATOR_BATCH_WAIT_MS: '20' });
  app = await startAggregator(site.env);
  store = new LiveStateStore(site.redis, { keyPrefix: site.redisPrefix });
  amqp = await connect(site.env.AMQP_URL);
});
afterAll(async () => {
  await amqp?.close().catch(() => undefined);
  await app?.close();
  await site?.dispose();
});

/** Code points of every plane (astral included), quotes, backslashes, newlines, label syntax — never NUL. */
const ODD = [
  '"',
  '\\',
  '\n',
  '\r',
  '\t',
  '{',
  '}',
  '=',
  ',',
  ' ',
  '/',
  ':',
  '\u2028',
  '\uFEFF',
  'é',
  'ß',
  '✓',
  '𝄞',
  '🙂',
  '中',
];
const unit = fc.oneof(
  { weight: 4, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }) },
  { weight: 2, arbitrary: fc.constantFrom(...ODD) },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme', minLength: 1, maxLength: 1 }) },
);
/** Storable text of 1..max UTF-16 units (as the contract counts). */
const text = (max: number, min = 1) =>
  fc
    .array(unit, { minLength: min, maxLength: Math.min(max, 40) })
    .map((units) => {
      let s = '';
      for (const u of units) if (s.length + u.length <= max) s += u;
      return s;
    })
    .filter((s) => s.length >= min && textProblem(s) === null);

const extreme = fc.constantFrom(0, -0, Number.MIN_VALUE, 1e-300, 1, 2 ** 53, 1e300, Number.MAX_VALUE);
const nonNeg = fc.oneof(fc.double({ min: 0, noNaN: true, noDefaultInfinity: true }), extreme);
const anyNum = fc.oneof(
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  extreme,
  extreme.map((n) => -n),
);
const pct = fc.oneof(fc.double({ min: 0, max: 100, noNaN: true }), fc.constantFrom(0, 100, Number.MIN_VALUE));
const rate = fc.option(nonNeg, { nil: null });
const hostIds = ['h-1', 'h 2 "quoted"', 'ünï/host\\with:odd{chars}', '𝄞🙂', 'x'.repeat(256)];

const sampleArb = fc.record(
  {
    hostId: fc.oneof(fc.constantFrom(...hostIds), text(256)),
    location: fc.constantFrom('lab-2', 'eu-west-1', 'L'),
    sampledAt: fc
      .integer({ min: Date.now() - 3 * 86_400_000, max: Date.now() + 60_000 })
      .map((ms) => new Date(ms).toISOString()),
    intervalSeconds: fc.integer({ min: 1, max: 86_400 }),
    cpu: fc.record(
      {
        usagePct: pct,
        cores: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
        load1: nonNeg,
        load5: nonNeg,
        load15: nonNeg,
        perCorePct: fc.array(pct, { maxLength: 64 }),
      },
      { requiredKeys: ['usagePct', 'cores', 'load1', 'load5', 'load15'] },
    ),
    memory: fc.record(
      {
        totalBytes: nonNeg,
        usedBytes: nonNeg,
        availableBytes: nonNeg,
        swapTotalBytes: nonNeg,
        swapUsedBytes: nonNeg,
      },
      { requiredKeys: ['totalBytes', 'usedBytes'] },
    ),
    disks: fc.array(
      fc.record(
        {
          mount: text(512),
          totalBytes: nonNeg,
          usedBytes: nonNeg,
          fsType: text(64, 0),
          device: text(256, 0),
          readBytesPerSec: rate,
          writeBytesPerSec: rate,
        },
        { requiredKeys: ['mount', 'totalBytes', 'usedBytes'] },
      ),
      { maxLength: 6 },
    ),
    network: fc.array(
      fc.record(
        {
          iface: text(128),
          rxBytesPerSec: rate,
          txBytesPerSec: rate,
          rxErrorsPerSec: rate,
          txErrorsPerSec: rate,
        },
        { requiredKeys: ['iface', 'rxBytesPerSec', 'txBytesPerSec'] },
      ),
      { maxLength: 6 },
    ),
    gpus: fc.array(
      fc.record(
        {
          index: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
          name: text(256),
          uuid: text(128, 0),
          utilizationPct: fc.option(pct, { nil: null }),
          memoryUsedBytes: rate,
          memoryTotalBytes: rate,
          temperatureC: fc.option(anyNum, { nil: null }),
          powerW: fc.option(anyNum, { nil: null }),
          powerLimitW: fc.option(anyNum, { nil: null }),
          fanPct: fc.option(pct, { nil: null }),
          smClockMhz: rate,
          memClockMhz: rate,
          processCount: fc.option(fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), { nil: null }),
          error: text(512, 0),
        },
        {
          requiredKeys: [
            'index',
            'name',
            'utilizationPct',
            'memoryUsedBytes',
            'memoryTotalBytes',
            'temperatureC',
            'powerW',
          ],
        },
      ),
      { maxLength: 4 },
    ),
    uptimeSeconds: nonNeg,
    system: fc.record(
      {
        hostname: text(256, 0),
        platform: text(64, 0),
        distro: text(128, 0),
        release: text(128, 0),
        kernel: text(128, 0),
        arch: text(32, 0),
        collectorVersion: text(64, 0),
        nodeVersion: text(64, 0),
        gpuDriverVersion: text(64, 0),
      },
      { requiredKeys: [] },
    ),
  },
  { requiredKeys: ['hostId', 'location', 'sampledAt', 'cpu', 'memory', 'disks', 'network', 'gpus'] },
);

/** A sample at every array's maximum size, with the longest names of 4-byte characters. */
function maximal(hostId: string): HostMetricsPayload {
  const astral = (n: number, seed: number) => {
    let s = '';
    while (s.length + 2 <= n) s += String.fromCodePoint(0x1f600 + ((seed + s.length) % 64));
    return s;
  };
  return {
    hostId,
    location: 'lab-2',
    sampledAt: new Date(Date.now() - 5 * 60_000).toISOString(),
    intervalSeconds: 5,
    cpu: {
      usagePct: 100,
      cores: 4096,
      load1: Number.MAX_VALUE,
      load5: 0,
      load15: Number.MIN_VALUE,
      perCorePct: Array.from({ length: 4096 }, (_, i) => (i * 37) % 101),
    },
    memory: { totalBytes: Number.MAX_VALUE, usedBytes: Number.MAX_VALUE, swapTotalBytes: 0, swapUsedBytes: 0 },
    disks: Array.from({ length: 256 }, (_, i) => ({
      mount: `${i}${astral(512 - String(i).length, i)}`,
      totalBytes: Number.MAX_VALUE,
      usedBytes: i % 2 ? Number.MAX_VALUE : Number.MIN_VALUE,
      fsType: astral(64, i),
      device: astral(256, i),
      readBytesPerSec: i % 3 ? null : Number.MAX_VALUE,
      writeBytesPerSec: 1e300,
    })),
    network: Array.from({ length: 256 }, (_, i) => ({
      iface: `${i}"\\\n${astral(120, i)}`,
      rxBytesPerSec: Number.MAX_VALUE,
      txBytesPerSec: null,
      rxErrorsPerSec: 0,
      txErrorsPerSec: null,
    })),
    gpus: Array.from({ length: 64 }, (_, i) => ({
      index: i,
      name: astral(256, i),
      uuid: astral(128, i),
      utilizationPct: 100,
      memoryUsedBytes: Number.MAX_VALUE,
      memoryTotalBytes: Number.MAX_VALUE,
      temperatureC: -Number.MAX_VALUE,
      powerW: Number.MAX_VALUE,
      powerLimitW: -0,
      fanPct: 0,
      smClockMhz: null,
      memClockMhz: Number.MAX_VALUE,
      processCount: Number.MAX_SAFE_INTEGER,
      error: astral(512, i),
    })),
    uptimeSeconds: Number.MAX_VALUE,
    system: { hostname: astral(256, 1), kernel: '6.1 "x"\\', arch: 'x64' },
  };
}

/** Messages in the dead-letter queues of every observation shard (a missing queue holds none). */
async function deadLetters(): Promise<number> {
  let n = 0;
  for (let shard = 0; shard < OBSERVATION_SHARDS; shard++) {
    const ch = await amqp.createChannel();
    ch.on('error', () => undefined);
    try {
      n += (await ch.checkQueue(deadLetterQueueOf(observationShardQueue(shard)))).messageCount;
    } catch {
      /* not declared: nothing was dead-lettered there */
    } finally {
      await ch.close().catch(() => undefined);
    }
  }
  return n;
}

/** Publishes the samples, waits for their rows, and checks each row, the live state and the rollups. */
async function storesAll(samples: readonly HostMetricsPayload[]): Promise<void> {
  // Only samples the contract accepts are the property's inputs (it accepts nearly all generated ones).
  const accepted = samples.map((s) => hostMetricsPayloadSchema.parse(s));
  const ids = accepted.map(() => uuidv7());
  await site.bus.publisher.publishMany(
    accepted.map((s, i) => publishRequest(Messages.HostMetrics, s, { id: ids[i] })),
    { timeoutMs: 60_000 },
  );
  const rows = await waitFor(
    async () => {
      const r = await site.pg.query<{ id: string; data: HostMetricsPayload }>(
        'SELECT message_id::text AS id, data FROM host_metrics WHERE message_id = ANY($1::uuid[])',
        [ids],
      );
      return r.rows.length === ids.length ? r.rows : null;
    },
    { description: `${ids.length} samples stored`, timeoutMs: 60_000, intervalMs: 200 },
  );
  const byId = new Map(rows.map((r) => [r.id, r.data]));
  accepted.forEach((s, i) => expect(byId.get(ids[i])).toEqual(JSON.parse(JSON.stringify(s))));
  // Every host has a latest sample in live state that the contract still accepts.
  for (const hostId of new Set(accepted.map((s) => s.hostId))) {
    const json = await waitFor(() => store.getHostMetrics(hostId), { description: `live sample of ${hostId}` });
    expect(hostMetricsPayloadSchema.safeParse(JSON.parse(json)).success).toBe(true);
  }
  // Rolled up without a refusal (a failing rollup would keep its mark and throw here).
  // (The maintenance timer may hold some marks meanwhile: wait for them to be consumed too.)
  await app.get(HistoryMaintenance).rollUp();
  await waitFor(
    async () =>
      (
        await site.pg.query<{ n: number }>(
          // Minutes still filling (or in the future) are rolled up once they end.
          "SELECT count(*)::int AS n FROM host_rollup_dirty WHERE bucket < now() - interval '70 seconds'",
        )
      ).rows[0].n === 0,
    { description: 'every marked minute that ended rolled up', timeoutMs: 30_000 },
  );
  expect(await deadLetters()).toBe(0);
}

describe('host.metrics: what the contract accepts is stored', () => {
  it('any accepted sample (extreme numbers, odd names, any storable Unicode) is stored, rolled up and acked', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(sampleArb, { minLength: 1, maxLength: 12 }), (samples) =>
        storesAll(samples as HostMetricsPayload[]),
      ),
      { numRuns: Number(process.env.HOST_PROPERTY_RUNS ?? 8), endOnFailure: true },
    );
  });

  it('samples at the maximum sizes (4096 cores, 256 disks and interfaces, 64 GPUs, longest names) are stored', async () => {
    const samples = [maximal('max-host'), maximal('𝄞'.repeat(128))];
    for (const s of samples) expect(hostMetricsPayloadSchema.safeParse(s).success).toBe(true);
    await storesAll(samples);
    const r = await site.pg.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM host_rollups_1m WHERE host_id = 'max-host' AND series = 'disk_used_bytes'",
    );
    expect(r.rows[0].n).toBe(256);
  });
});
