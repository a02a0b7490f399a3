import {
  checkLifecyclePayloadSchema,
  checkResultPayloadSchema,
  hostMetricsPayloadSchema,
  MAX_CHECK_LATENCY_MS,
  pingReceivedPayloadSchema,
  statusUpdateInputSchema,
  type CheckResultPayload,
  type HostMetricsPayload,
} from './observations.schema';

// What a collector's message may carry is what the aggregator can store: a value Postgres refuses, or one that
// breaks a computation over many targets' rows, is refused by the bus schema, naming the field.

const result: CheckResultPayload = {
  checkId: 'site-a',
  targetId: 'check:site-a',
  location: 'eu-west-1',
  ok: true,
  latencyMs: 12.5,
  attempt: 1,
  startedAt: '2026-12-04T10:00:00.000Z',
};

const sample: HostMetricsPayload = {
  hostId: 'node-1',
  location: 'lab-2',
  sampledAt: '2026-12-04T10:00:00.000Z',
  cpu: { usagePct: 12.5, cores: 4, load1: 1, load5: 1, load15: 1 },
  memory: { totalBytes: 8e9, usedBytes: 2e9 },
  disks: [],
  network: [],
  gpus: [],
  uptimeSeconds: 10,
  system: { hostname: 'node-1.lab' },
};

const refusedAt = (schema: typeof checkResultPayloadSchema | typeof hostMetricsPayloadSchema, input: unknown) => {
  const parsed = schema.safeParse(input);
  return parsed.success ? null : parsed.error.issues.map((i) => i.path.join('.'));
};

describe('checkResultPayloadSchema', () => {
  it('takes a latency up to a day, and refuses more (a float8 sum of squares overflowed: every rollup run failed)', () => {
    expect(refusedAt(checkResultPayloadSchema, result)).toBeNull();
    expect(refusedAt(checkResultPayloadSchema, { ...result, latencyMs: MAX_CHECK_LATENCY_MS })).toBeNull();
    expect(refusedAt(checkResultPayloadSchema, { ...result, latencyMs: null })).toBeNull();
    for (const latencyMs of [MAX_CHECK_LATENCY_MS + 1, 1e200, Number.MAX_VALUE])
      expect(refusedAt(checkResultPayloadSchema, { ...result, latencyMs })).toEqual(['latencyMs']);
  });

  it('refuses a start time Postgres cannot store (zod alone takes year 0000)', () => {
    for (const startedAt of ['0000-01-01T00:00:00Z', '0000-06-01T00:00:00.000+00:00', '1969-12-31T23:59:59Z'])
      expect(refusedAt(checkResultPayloadSchema, { ...result, startedAt })).toEqual(['startedAt']);
    expect(refusedAt(checkResultPayloadSchema, { ...result, startedAt: '9999-12-31T23:59:59Z' })).toBeNull();
  });

  it("refuses a result about another target than the check's own (it was folded into that target)", () => {
    for (const targetId of ['instance:web-1', 'host:node-1', 'check:other', 'check:SITE-A', 'site-a'])
      expect(refusedAt(checkResultPayloadSchema, { ...result, targetId })).toEqual(['targetId']);
  });
});

describe('hostMetricsPayloadSchema', () => {
  it('refuses a sample time Postgres cannot store (zod alone takes year 0000)', () => {
    expect(refusedAt(hostMetricsPayloadSchema, sample)).toBeNull();
    expect(refusedAt(hostMetricsPayloadSchema, { ...sample, sampledAt: '0000-01-01T00:00:00Z' })).toEqual([
      'sampledAt',
    ]);
  });

  describe('missingGpus (GPUs the collector saw and no longer sees)', () => {
    const lost = {
      index: 3,
      uuid: 'GPU-1c9b7e45-6a0f-3d82-b7c1-9e4a2f5d8b03',
      name: 'NVIDIA H100 80GB HBM3',
      busId: '00000000:5D:00.0',
      since: '2026-12-04T09:59:55.000Z',
      problem: 'Unable to determine the device handle for GPU 0000:5D:00.0: GPU is lost.',
    };

    it('is optional: an older collector sends none; [] says none is missing', () => {
      expect(hostMetricsPayloadSchema.parse(sample).missingGpus).toBeUndefined();
      expect(refusedAt(hostMetricsPayloadSchema, { ...sample, missingGpus: [] })).toBeNull();
      expect(refusedAt(hostMetricsPayloadSchema, { ...sample, missingGpus: [lost] })).toBeNull();
      // Only index, uuid and since are required (a GPU never in the inventory has no bus id, no problem line).
      const { name: _n, busId: _b, problem: _p, ...bare } = lost;
      expect(refusedAt(hostMetricsPayloadSchema, { ...sample, missingGpus: [bare] })).toBeNull();
    });

    it('is bounded like the gpus list (64) and refuses what cannot be stored', () => {
      const many = Array.from({ length: 64 }, (_, i) => ({ ...lost, index: i, uuid: `GPU-${i}` }));
      expect(refusedAt(hostMetricsPayloadSchema, { ...sample, missingGpus: many })).toBeNull();
      expect(refusedAt(hostMetricsPayloadSchema, { ...sample, missingGpus: [...many, lost] })).toEqual(['missingGpus']);
      expect(
        refusedAt(hostMetricsPayloadSchema, { ...sample, missingGpus: [{ ...lost, since: '0000-01-01T00:00:00Z' }] }),
      ).toEqual(['missingGpus.0.since']);
      expect(refusedAt(hostMetricsPayloadSchema, { ...sample, missingGpus: [{ ...lost, index: -1 }] })).toEqual([
        'missingGpus.0.index',
      ]);
      expect(
        refusedAt(hostMetricsPayloadSchema, { ...sample, missingGpus: [{ ...lost, problem: 'x'.repeat(301) }] }),
      ).toEqual(['missingGpus.0.problem']);
    });
  });
});

describe('a pushed update names no location "all" (the consensus series of /metrics)', () => {
  const update = { instanceId: 'web-1', kind: 'container', status: 'running' };
  it('is refused at the edge, naming the field', () => {
    const r = statusUpdateInputSchema.safeParse({ ...update, location: 'all' });
    expect(r.success).toBe(false);
    expect(r.error?.issues.map((i) => [i.path.join('.'), i.message])).toEqual([
      ['location', expect.stringMatching(/^"all" is reserved/)],
    ]);
    expect(statusUpdateInputSchema.safeParse({ ...update, location: 'all-eu' }).success).toBe(true);
  });
});

describe("check.lifecycle carries the check's own quorum (downQuorumPct)", () => {
  const lifecycle = {
    checkId: '0191d7a2-0000-7000-8000-000000000001',
    targetId: 'check:0191d7a2-0000-7000-8000-000000000001',
    state: 'active',
    version: 3,
    at: '2026-12-04T10:00:00.000Z',
  };
  it("a percentage, null (none of its own: the site's) or absent (a sender from before); nothing else", () => {
    for (const downQuorumPct of [1, 50, 100, null])
      expect(checkLifecyclePayloadSchema.safeParse({ ...lifecycle, downQuorumPct }).success).toBe(true);
    expect(checkLifecyclePayloadSchema.safeParse(lifecycle).success).toBe(true);
    for (const downQuorumPct of [0, 101, 50.5, '50'])
      expect(checkLifecyclePayloadSchema.safeParse({ ...lifecycle, downQuorumPct }).success).toBe(false);
  });
});

describe('ping.received carries the config version its schedule was read at (configVersion)', () => {
  const ping = {
    monitorId: '0191d7a2-0000-7000-8000-000000000001',
    targetId: 'check:0191d7a2-0000-7000-8000-000000000001',
    signal: 'success',
    receivedAt: '2026-12-07T10:00:00.000Z',
    periodSeconds: 86_340,
    graceSeconds: 60,
    maxRuntimeSeconds: null,
  };
  it('a positive integer or absent (a status-ingest of before); nothing else', () => {
    expect(pingReceivedPayloadSchema.parse({ ...ping, configVersion: 7 }).configVersion).toBe(7);
    expect(pingReceivedPayloadSchema.safeParse(ping).success).toBe(true);
    for (const configVersion of [0, -1, 1.5, '7', null])
      expect(pingReceivedPayloadSchema.safeParse({ ...ping, configVersion }).success).toBe(false);
  });
  it('an aggregator of before (its schema without the field) reads such a ping, dropping the field: no dead letter', () => {
    const before = pingReceivedPayloadSchema.omit({ configVersion: true });
    const read = before.safeParse({ ...ping, configVersion: 7 });
    expect(read.success).toBe(true);
    expect(read.data).toEqual(ping);
  });
});

describe('ping.received carries the exit code of /ping/{token}/{code} (exitCode)', () => {
  const ping = {
    monitorId: '0191d7a2-0000-7000-8000-000000000002',
    targetId: 'check:0191d7a2-0000-7000-8000-000000000002',
    signal: 'fail',
    receivedAt: '2026-12-07T10:00:00.000Z',
    periodSeconds: 3600,
    graceSeconds: 60,
    maxRuntimeSeconds: null,
  };
  it('an integer 0–255 or absent (the other ping URLs, a status-ingest of before); nothing else', () => {
    expect(pingReceivedPayloadSchema.parse({ ...ping, exitCode: 7 }).exitCode).toBe(7);
    for (const exitCode of [0, 255])
      expect(pingReceivedPayloadSchema.safeParse({ ...ping, exitCode }).success).toBe(true);
    expect(pingReceivedPayloadSchema.parse(ping).exitCode).toBeUndefined();
    for (const exitCode of [256, -1, 1.5, '7', null])
      expect(pingReceivedPayloadSchema.safeParse({ ...ping, exitCode }).success).toBe(false);
  });
  it('an aggregator of before (its schema without the field) reads such a ping, dropping the field: no dead letter', () => {
    const before = pingReceivedPayloadSchema.omit({ exitCode: true });
    const read = before.safeParse({ ...ping, exitCode: 3 });
    expect(read.success).toBe(true);
    expect(read.data).toEqual(ping);
  });
});
