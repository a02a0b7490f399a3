import { redisCheckFields, type CheckInput } from '@fleetwatch/contracts';
import { createTargetPolicy, evaluateConditions } from '@fleetwatch/domain';
import { testEnv } from '@fleetwatch/testing';
import { Redis } from 'ioredis';
import {
  closedPort,
  floodingServer,
  openSockets,
  probeContext,
  silentListener,
  socketsSettle,
} from './probes.int-helpers';
import { MAX_READ_BYTES, parseInfo, redisProbe } from './redis.probe';

jest.setTimeout(60_000);

// Against the shared local Redis. The probe writes no key; the one server-wide thing
// made here is an ACL user named after the run, removed afterwards.

const env = testEnv();
const url = new URL(env.redisUrl);
const host = url.hostname;
const port = Number(url.port || 6379);

type RedisInput = Partial<Extract<CheckInput, { type: 'redis' }>>;
const check = (fields: RedisInput = {}) => redisCheckFields.parse({ name: 'r', type: 'redis', host, port, ...fields });

describe('redis probe against the local server', () => {
  let admin: Redis;
  const aclUser = `fwtest-${env.runId}-probe`;
  const aclPassword = `pw-${env.runId}-s3cret`;
  beforeAll(async () => {
    admin = new Redis(env.redisUrl);
    // PING and QUIT only: the server is up for this user, INFO is not theirs to read.
    await admin.call('ACL', 'SETUSER', aclUser, 'reset', 'on', `>${aclPassword}`, '+ping', '+quit');
  });
  afterAll(async () => {
    await admin.call('ACL', 'DELUSER', aclUser);
    await admin.quit();
  });

  it('is up: PING, then role, clients and memory from INFO, as facts and metrics', async () => {
    const out = await redisProbe(check(), probeContext());
    expect(out.failureReason).toBeUndefined();
    expect(out.ok).toBe(true);
    expect(out.latencyMs).toBeGreaterThan(0);
    const r = out.facts.result as Record<string, unknown>;
    expect(r).toMatchObject({ role: 'master', mode: 'standalone', redisVersion: expect.stringMatching(/^\d+\./) });
    expect(r['connectedClients']).toBeGreaterThanOrEqual(2); // the probe and the admin client
    expect(r['usedMemoryBytes']).toBeGreaterThan(0);
    expect(r['connectedReplicas']).toBeGreaterThanOrEqual(0);
    const metric = (n: string) => out.facts.metrics?.find((m) => m.name === n)?.value;
    expect(metric('connectedClients')).toBe(r['connectedClients']);
    expect(metric('usedMemoryBytes')).toBe(r['usedMemoryBytes']);
    expect(metric('uptimeSeconds')).toBe(r['uptimeSeconds']);
    expect(metric('role')).toBeUndefined(); // text is no metric
    const facts = { ok: out.ok, latencyMs: out.latencyMs, ...out.facts };
    expect(evaluateConditions(['result.role == "master"', 'metric("connectedClients") >= 1'], facts)).toEqual({
      ok: true,
    });
    expect(evaluateConditions(['metric("usedMemoryBytes") < 1'], facts).ok).toBe(false);
  });

  it('the numbers agree with what INFO says to another client', async () => {
    const out = await redisProbe(check(), probeContext());
    const info = parseInfo(await admin.info('memory'));
    const r = out.facts.result as Record<string, number>;
    expect(r['maxmemoryBytes']).toBe(Number(info.get('maxmemory')));
    // used_memory moves between two calls; same order of magnitude is what can be asked.
    expect(r['usedMemoryBytes'] / Number(info.get('used_memory'))).toBeGreaterThan(0.5);
    expect(r['usedMemoryBytes'] / Number(info.get('used_memory'))).toBeLessThan(2);
  });

  it('a closed port is connection refused', async () => {
    const p = await closedPort();
    const out = await redisProbe(check({ port: p }), probeContext());
    expect(out).toMatchObject({ ok: false, latencyMs: null, failureReason: `connect ECONNREFUSED 127.0.0.1:${p}` });
  });

  it('authenticates as the ACL user with the password the variable holds; INFO denied is said, not a failure', async () => {
    const out = await redisProbe(
      check({ username: aclUser, passwordEnv: 'FLEETWATCH_SECRET_REDIS_PASSWORD' }),
      probeContext({ env: { FLEETWATCH_SECRET_REDIS_PASSWORD: aclPassword } }),
    );
    expect(out.failureReason).toBeUndefined();
    expect(out.ok).toBe(true);
    expect(out.facts.result).toEqual({ infoError: expect.stringMatching(/^NOPERM/) });
    expect(JSON.stringify(out)).not.toContain(aclPassword);
    // A database named changes nothing for PING and INFO: this user, without SELECT, is still answered.
    const withDb = await redisProbe(
      check({ username: aclUser, passwordEnv: 'FLEETWATCH_SECRET_REDIS_PASSWORD', db: 3 }),
      probeContext({ env: { FLEETWATCH_SECRET_REDIS_PASSWORD: aclPassword } }),
    );
    expect(withDb).toMatchObject({ ok: true });
  });

  it('a wrong password is refused by the server, and appears nowhere', async () => {
    const wrong = 'not-the-password-4711';
    const out = await redisProbe(
      check({ username: aclUser, passwordEnv: 'FLEETWATCH_SECRET_REDIS_PASSWORD' }),
      probeContext({ env: { FLEETWATCH_SECRET_REDIS_PASSWORD: wrong } }),
    );
    expect(out.ok).toBe(false);
    expect(out.failureReason).toMatch(/^WRONGPASS invalid username-password pair/);
    expect(JSON.stringify(out)).not.toContain(wrong);
  });

  it('a variable that is not set is named', async () => {
    const out = await redisProbe(check({ passwordEnv: 'FLEETWATCH_SECRET_REDIS_UNSET' }), probeContext());
    expect(out).toEqual({
      ok: false,
      latencyMs: null,
      failureReason: 'environment variable FLEETWATCH_SECRET_REDIS_UNSET (passwordEnv) is not set on this collector',
      facts: {},
    });
  });

  it('a server that never answers: the attempt ends at the deadline, socket closed', async () => {
    const silent = await silentListener();
    try {
      const started = performance.now();
      const out = await redisProbe(check({ host: '127.0.0.1', port: silent.port }), probeContext({ timeoutMs: 300 }));
      expect(out).toMatchObject({ ok: false, failureReason: 'timed out after 300 ms' });
      expect(performance.now() - started).toBeLessThan(1000);
      await new Promise((r) => setTimeout(r, 100));
      expect(silent.accepted).toBe(1);
      expect(silent.open()).toBe(0);
    } finally {
      await silent.close();
    }
  });

  it('a denied address is refused without connecting', async () => {
    const listener = await silentListener();
    try {
      const policy = createTargetPolicy(['127.0.0.0/8']);
      const out = await redisProbe(check({ host: '127.0.0.1', port: listener.port }), probeContext({ policy }));
      expect(out).toMatchObject({ ok: false, failureReason: 'address 127.0.0.1 is in denied network 127.0.0.0/8' });
      expect(listener.accepted).toBe(0);
    } finally {
      await listener.close();
    }
  });

  it('leaves no socket behind over 50 runs of success, failure and timeout', async () => {
    const silent = await silentListener();
    const refused = await closedPort();
    try {
      const before = openSockets();
      for (let i = 0; i < 50; i++) {
        const kind = i % 4;
        const c =
          kind === 0
            ? check()
            : kind === 1
              ? check({ username: aclUser, passwordEnv: 'FLEETWATCH_SECRET_P' })
              : kind === 2
                ? check({ port: refused })
                : check({ port: silent.port });
        const out = await redisProbe(
          c,
          probeContext({ timeoutMs: kind === 3 ? 50 : 5000, env: { FLEETWATCH_SECRET_P: 'wrong' } }),
        );
        expect(out.ok).toBe(kind === 0);
      }
      expect(await socketsSettle(before)).toBeLessThanOrEqual(before);
      expect(silent.open()).toBe(0);
    } finally {
      await silent.close();
    }
  });
});

describe('redis probe against a server whose INFO never ends', () => {
  it('stops reading past MAX_READ_BYTES: the connection is dropped, INFO said to be too large, memory bounded', async () => {
    // A RESP2 server (no HELLO) that answers PING and announces a 1 GiB INFO, then streams 32 MiB of it and waits:
    // ioredis holds a reply until its last byte, so without a bound all of it piled up until the timeout.
    const streamed = 32 * 1024 * 1024;
    const flood = await floodingServer((d, s) => {
      const text = d.toString('latin1').toLowerCase();
      if (text.includes('hello')) s.write("-ERR unknown command 'hello'\r\n");
      if (text.includes('ping')) s.write('+PONG\r\n');
      return text.includes('info') ? `$${1024 ** 3}\r\n` : null;
    }, streamed);
    try {
      const out = await redisProbe(check({ host: '127.0.0.1', port: flood.port }), probeContext({ timeoutMs: 3000 }));
      // PING was answered: the server is up; what INFO did is said.
      expect(out.ok).toBe(true);
      expect(out.facts.result?.['infoError']).toBe(`the server's answers exceeded ${MAX_READ_BYTES} bytes`);
      await flood.expectCut();
    } finally {
      await flood.close();
    }
  });
});

describe('redis INFO parsing', () => {
  it('reads key:value lines across sections, values may hold colons', () => {
    const info = parseInfo(
      '# Server\r\nredis_version:7.0.15\r\nexecutable:/usr/bin/redis-server\r\n\r\n# Replication\r\nrole:slave\r\nmaster_host:::1\r\n',
    );
    expect(Object.fromEntries(info)).toEqual({
      redis_version: '7.0.15',
      executable: '/usr/bin/redis-server',
      role: 'slave',
      master_host: '::1',
    });
  });
});
